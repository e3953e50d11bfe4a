"""``kubevc-gen model add/publish/promote/rollback/list`` on real git fleet repos.

Outcomes are read where they matter: the region's values ConfigMaps (what Flux hands to the
HelmReleases), and TF Serving's model config as the vendored serving chart renders it through the
real Helm SDK. Bad input must leave the git state and the store tree exactly as they were.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from .conftest import Gen, git, snapshot
from .model_savedmodels import saved_models, synthetic_saved_model_layout
from .test_model_store import tree

__all__ = ["saved_models"]


def region_values(fleet: Path, region: str, app: str) -> dict[str, Any]:
    cm = yaml.safe_load((fleet / f"apps/{region}/{app}-values.yaml").read_text())
    values = yaml.safe_load(cm["data"]["values.yaml"])
    assert isinstance(values, dict)
    return values


def serving_model_config(fleet: Path, region: str) -> str:
    """``models.config`` of the serving chart vendored in the fleet, rendered with the region's values."""
    chart = helm_python.Chart.load(str(fleet / "charts/kubevc-serving"))
    rendered = chart.render(
        region_values(fleet, region, "kubevc-serving"), name="kubevc-serving", namespace="kubevc"
    )
    cm = yaml.safe_load(rendered["kubevc-serving/templates/configmap.yaml"])
    text = cm["data"]["models.config"]
    assert isinstance(text, str)
    return text


def model_block(config: str, name: str) -> str:
    match = re.search(r'config \{\n    name: "' + re.escape(name) + r'"\n(.*?)\n  \}', config, re.S)
    assert match, config
    return match.group(1)


def labels_of(block: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'key: "(\w+)"\n\s+value: (\d+)', block)}


def last_message(fleet: Path) -> str:
    return git(fleet, "log", "-1", "--format=%s").strip()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    path.mkdir()
    return path


@pytest.fixture
def with_model(gen: Gen, fleet: Path) -> Path:
    result = gen("model", "add", "scale", "--region", "seoul", "--region", "busan", "--profile", "tensor")
    assert result.exit_code == 0, result.output
    return fleet


def test_add_registers_the_model_everywhere_it_matters(gen: Gen, fleet: Path, tmp_path: Path) -> None:
    labels = tmp_path / "coco.txt"
    labels.write_text("person\nbicycle\ncar\n\n")
    head = git(fleet, "rev-parse", "HEAD")
    result = gen(
        "model", "add", "yolo", "--region", "seoul", "--profile", "detection", "--labels", str(labels)
    )
    assert result.exit_code == 0, result.output
    assert git(fleet, "rev-list", "--count", f"{head.strip()}..HEAD").strip() == "1"
    assert last_message(fleet) == "model add yolo (detection, /models/yolo) to seoul"
    assert git(fleet, "status", "--porcelain") == ""
    region = yaml.safe_load((fleet / "regions/seoul/region.yaml").read_text())
    assert region["models"][-1]["labelsFile"] == "models/yolo/labels.txt"
    assert (fleet / "models/yolo/labels.txt").read_text() == "person\nbicycle\ncar\n\n"
    gw = region_values(fleet, "seoul", "kubevc-gateway")["config"]["models"][-1]
    assert gw["name"] == "yolo" and gw["input"]["resize"] == "letterbox" and gw["input"]["width"] == 640
    assert gw["output"] == {
        "postprocess": "yolo",
        "confidenceThreshold": 0.25,
        "iouThreshold": 0.45,
        "maxDetections": 300,
        "labels": ["person", "bicycle", "car"],
    }
    block = model_block(serving_model_config(fleet, "seoul"), "yolo")
    assert 'base_path: "/models/yolo"' in block and "num_versions: 1" in block
    assert "yolo" not in (fleet / "apps/busan/kubevc-serving-values.yaml").read_text()
    assert gen("render", "--check").exit_code == 0


def test_text_profile_mounts_the_store_for_its_vocab(gen: Gen, fleet: Path) -> None:
    assert gen("model", "add", "bert", "--all-regions", "--profile", "text").exit_code == 0
    for region in ("seoul", "busan"):
        values = region_values(fleet, region, "kubevc-gateway")
        assert values["modelStore"] == {"enabled": True}
        assert values["config"]["models"][-1]["input"]["vocabFile"] == "/models/bert/vocab.txt"


def test_publish_promote_rollback_walkthrough(
    gen: Gen, with_model: Path, store: Path, saved_models: Path
) -> None:
    fleet = with_model
    for v in (1, 2, 3):
        result = gen(
            "model",
            "publish",
            "scale",
            str(saved_models / f"v{v}"),
            "--version",
            str(v),
            "--store",
            str(store),
        )
        assert result.exit_code == 0, result.output
        assert f"published scale version {v} to local:{store}/scale/{v}" in result.output
        assert re.search(r"^[0-9a-f]{64}  saved_model\.pb$", result.output, re.M)
    assert git(fleet, "status", "--porcelain") == ""  # publishing touches the store, not git

    def promote(version: int, label: str, *extra: str) -> None:
        result = gen(
            "model",
            "promote",
            "scale",
            "--version",
            str(version),
            "--label",
            label,
            "--store",
            str(store),
            *extra,
        )
        assert result.exit_code == 0, result.output

    promote(1, "stable")
    promote(2, "canary")
    assert last_message(fleet) == (
        "model promote scale: canary -> 2 "
        "(busan: canary -> 2 (stable stays 1, share 0%); seoul: canary -> 2 (stable stays 1, share 0%))"
    )
    for region in ("seoul", "busan"):
        serving = region_values(fleet, region, "kubevc-serving")["models"][0]
        assert serving == {
            "name": "scale",
            "basePath": "/models/scale",
            "versionPolicy": "specific",
            "versions": [1, 2],
            "versionLabels": {"stable": 1, "canary": 2},
        }
        block = model_block(serving_model_config(fleet, region), "scale")
        assert re.findall(r"versions: (\d+)", block) == ["1", "2"]
        assert labels_of(block) == {"canary": 2, "stable": 1}

    for region in ("seoul", "busan"):  # a canary without a share: the gateway keeps everyone on stable
        gw = region_values(fleet, region, "kubevc-gateway")["config"]["models"][0]
        assert gw["canary"] == {"label": "canary", "percent": 0}

    promote(2, "stable")
    assert "canary" not in region_values(fleet, "busan", "kubevc-gateway")["config"]["models"][0]
    assert labels_of(model_block(serving_model_config(fleet, "busan"), "scale")) == {"stable": 2}
    promote(3, "stable", "--region", "busan")
    busan = yaml.safe_load((fleet / "regions/busan/region.yaml").read_text())["models"][0]
    assert busan["stableHistory"] == [1, 2] and busan["versionLabels"] == {"stable": 3}

    result = gen("model", "rollback", "scale", "--region", "busan")
    assert result.exit_code == 0, result.output
    assert last_message(fleet) == "model rollback scale: busan: stable 3 -> 2"
    block = model_block(serving_model_config(fleet, "busan"), "scale")
    assert labels_of(block) == {"stable": 2} and re.findall(r"versions: (\d+)", block) == ["2"]
    assert gen("model", "rollback", "scale").exit_code == 0  # both regions: 2 -> 1
    assert last_message(fleet) == "model rollback scale: busan: stable 2 -> 1; seoul: stable 2 -> 1"
    for region in ("seoul", "busan"):
        assert labels_of(model_block(serving_model_config(fleet, region), "scale")) == {"stable": 1}
    before = snapshot(fleet)
    result = gen("model", "rollback", "scale")
    assert result.exit_code == 5 and "no earlier stable version" in result.output
    assert snapshot(fleet) == before

    listing = gen("model", "list", "--store", str(store))
    assert listing.exit_code == 0, listing.output
    row = next(line for line in listing.output.splitlines() if "busan" in line and "scale" in line)
    assert "stable=1" in row and "1, 2, 3" in row
    assert gen("render", "--check").exit_code == 0


def test_promote_dry_run_and_branch(gen: Gen, with_model: Path, store: Path, saved_models: Path) -> None:
    fleet = with_model
    assert (
        gen(
            "model", "publish", "scale", str(saved_models / "v1"), "--version", "1", "--store", str(store)
        ).exit_code
        == 0
    )
    before = snapshot(fleet)
    result = gen(
        "model", "promote", "scale", "--version", "1", "--label", "stable", "--store", str(store), "--dry-run"
    )
    assert result.exit_code == 0 and "+      stable: 1" in result.output and "dry run" in result.output
    assert snapshot(fleet) == before
    result = gen(
        "model",
        "promote",
        "scale",
        "--version",
        "1",
        "--label",
        "stable",
        "--store",
        str(store),
        "--branch",
        "scale-v1",
    )
    assert result.exit_code == 0, result.output
    assert git(fleet, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"  # back where it started
    assert git(fleet, "log", "-1", "--format=%s", "scale-v1").startswith("model promote")


def test_publish_via_host_defaults_to_the_region_export(
    gen: Gen, with_model: Path, tmp_path: Path, saved_models: Path
) -> None:
    """--via-host: pyinfra (@local connector) into the region's storage.nfs.path; list reads it too."""
    export = tmp_path / "export"
    export.mkdir()
    assert gen("region", "set", "seoul", f"storage.nfs.path={export}").exit_code == 0
    before = snapshot(with_model)
    v1 = str(saved_models / "v1")
    dry = gen(
        "model",
        "publish",
        "scale",
        v1,
        "--version",
        "1",
        "--region",
        "seoul",
        "--via-host",
        "@local",
        "--dry-run",
    )
    assert dry.exit_code == 0 and "dry run: would publish scale version 1" in dry.output, dry.output
    assert list(export.iterdir()) == []
    result = gen(
        "model", "publish", "scale", v1, "--version", "1", "--region", "seoul", "--via-host", "@local"
    )
    assert result.exit_code == 0, result.output
    assert f"published scale version 1 to @local:{export}/scale/1" in result.output
    assert tree(export / "scale" / "1") == tree(saved_models / "v1")
    assert snapshot(with_model) == before  # the store changed, git did not
    listing = gen("model", "list", "--region", "seoul", "--via-host", "@local")
    assert listing.exit_code == 0 and re.search(r"seoul .*scale .*│ 1 ", listing.output), listing.output


def _bad(gen: Gen, fleet: Path, store: Path, args: list[str], message: str) -> None:
    before, before_store = snapshot(fleet), tree(store)
    result = gen(*args)
    assert result.exit_code != 0, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert snapshot(fleet) == before
    assert tree(store) == before_store


def test_bad_input_changes_nothing(
    gen: Gen, with_model: Path, store: Path, saved_models: Path, tmp_path: Path
) -> None:
    fleet = with_model
    assert (
        gen(
            "model", "publish", "scale", str(saved_models / "v1"), "--version", "1", "--store", str(store)
        ).exit_code
        == 0
    )
    v1 = str(saved_models / "v1")
    synthetic = synthetic_saved_model_layout(tmp_path / "synthetic")
    (synthetic / "variables" / "variables.index").unlink()
    (synthetic / "variables").rename(tmp_path / "moved-variables")
    st = f"--store {store}"
    cases: list[tuple[str, str]] = [  # (arguments after `model`, expected message); paths have no spaces
        (f"publish nope {v1} --version 2 {st}", "model 'nope' is not registered"),
        (f"publish scale {v1} --version 2 --region daegu {st}", "region 'daegu' not found"),
        (f"publish scale {v1} --version 1 {st}", "version 1 of scale already exists"),
        (f"publish scale {synthetic} --version 2 {st}", "variables/ folder is missing"),
        (
            f"publish scale {v1} --version 2 --region seoul --via-host @local {st}",
            "outside the region's model store export /export/models",
        ),
        (f"promote scale --version 2 --label canary {st}", "version 2 of scale is not published"),
        (f"promote nope --version 1 --label stable {st}", "model 'nope' is not registered"),
        (f"promote scale --version 1 --label stable --region daegu {st}", "region 'daegu' not found"),
        ("promote scale --version 1 --label stable", "pass --store PATH"),
        ("add scale --region seoul", "already registered in region seoul"),
        ("add other --region seoul --profile nope", "unknown model profile 'nope'"),
        ("add other --region seoul --base-path /data/other", "not inside the model store mount"),
        ("add Bad_Name --region seoul", "model name 'Bad_Name' is not a DNS-1123 label"),
        ("add other", "--region R (repeatable) or --all-regions"),
    ]
    for args, message in cases:
        _bad(gen, fleet, store, ["model", *args.split()], message)
    # the store-outside-root case really reached no host: nothing under /export either
    assert not Path("/export/models/scale/2").exists()
    # a symlinked model folder escaping the store root
    escape = tmp_path / "escape"
    escape.mkdir()
    other_store = tmp_path / "store2"
    other_store.mkdir()
    (other_store / "scale").symlink_to(escape)
    escaping = ["model", "publish", "scale", v1, "--version", "1", "--store", str(other_store)]
    _bad(gen, fleet, other_store, escaping, "outside the model store root")
    assert list(escape.iterdir()) == []


def test_help_has_examples(gen: Gen) -> None:
    for sub in ("add", "publish", "promote", "canary", "rollback", "list"):
        result = gen("model", sub, "--help")
        assert (
            result.exit_code == 0
            and "Example:" in result.output
            and f"kubevc-gen model {sub}" in result.output
        )
