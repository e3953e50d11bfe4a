"""Per-region configuration: images per architecture, values overrides, labels and selectors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubevc.generator.errors import SpecError
from kubevc.generator.spec import (
    KPS_ALLOWED_KEYS,
    ImageCatalogue,
    ImageSpec,
    RegionImages,
    image_problems,
    kps_key_allowed,
    parse_image_reference,
    parse_label_changes,
    parse_selector,
    pick_image,
)

from .conftest import Gen, git, snapshot
from .test_kps_values import _missing, upstream  # noqa: F401  (the fixture)


def _values(fleet: Path, region: str, app: str) -> dict[str, Any]:
    doc = yaml.safe_load((fleet / f"apps/{region}/{app}-values.yaml").read_text())
    values: dict[str, Any] = yaml.safe_load(doc["data"]["values.yaml"])
    return values


def _kps_release(fleet: Path, folder: str) -> dict[str, Any]:
    docs = yaml.safe_load_all((fleet / folder / "kube-prometheus-stack.yaml").read_text())
    release: dict[str, Any] = next(d for d in docs if d and d["kind"] == "HelmRelease")
    return release


# --------------------------------------------------------------------------- images (pure)

ARM64 = ImageSpec(repository="example.com/tfs-arm", tag="2.18.0", platforms=["linux/arm64"])


def test_pick_image_first_covering_all_architectures() -> None:
    catalogue = ImageCatalogue(serving=[ARM64])
    assert pick_image("serving", ["arm64"], catalogue) == ARM64
    assert pick_image("serving", ["amd64"], catalogue).reference == "tensorflow/serving:2.18.0"  # type: ignore[union-attr]
    assert pick_image("serving", ["amd64", "arm64"], catalogue) is None  # no single image covers both
    assert pick_image("gateway", ["arm64"], catalogue).repository == "ghcr.io/kubevc/kubevc-gateway"  # type: ignore[union-attr]
    assert pick_image("gateway", ["armhf"], catalogue) is None
    own = ImageSpec(repository="mine/tfs", tag="1", platforms=["linux/amd64"])
    assert pick_image("serving", ["amd64"], catalogue, RegionImages(serving=own)) == own
    assert pick_image("serving", ["arm64"], catalogue, RegionImages(serving=own)) is None


def test_image_problems_name_region_workload_platform_and_fix() -> None:
    problems = image_problems("seoul", ["arm64"], ImageCatalogue())
    assert len(problems) == 1
    line = problems[0]
    assert line.startswith("region seoul: serving: ")
    assert "linux/arm64" in line and "tensorflow/serving:2.18.0" in line
    assert "kubevc-gen image add serving REPOSITORY:TAG --platform linux/arm64" in line
    assert image_problems("seoul", ["arm64"], ImageCatalogue(serving=[ARM64])) == []


@pytest.mark.parametrize("text", ["tfs", "tfs:latest", "tfs:1 2", "a/b@sha256:00", ":1"])
def test_bad_image_references(text: str) -> None:
    with pytest.raises(SpecError, match="REPOSITORY:TAG"):
        parse_image_reference(text)


def test_image_reference_with_registry_port_and_digest() -> None:
    digest = "sha256:" + "a" * 64
    assert parse_image_reference(f"reg:5000/x/y:1.2@{digest}") == ("reg:5000/x/y", "1.2", digest)


# --------------------------------------------------------------------------- selectors (pure)


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("tier=canary", {"tier": "canary"}, True),
        ("tier==canary", {"tier": "canary"}, True),
        ("tier=canary", {"tier": "edge"}, False),
        ("tier!=canary", {}, True),
        ("tier!=canary", {"tier": "canary"}, False),
        ("zone in (a,b)", {"zone": "b"}, True),
        ("zone in (a, b)", {"zone": "c"}, False),
        ("zone in (a,b)", {}, False),
        ("zone notin (a,b)", {}, True),
        ("zone notin (a,b)", {"zone": "a"}, False),
        ("gpu", {"gpu": ""}, True),
        ("gpu", {}, False),
        ("!gpu", {}, True),
        ("!gpu", {"gpu": "yes"}, False),
        ("a=b,c!=d,e in (f,g),!h", {"a": "b", "e": "g"}, True),
        ("a=b,c!=d,e in (f,g),!h", {"a": "b", "e": "g", "h": "x"}, False),
        ("kubevc.io/site=factory", {"kubevc.io/site": "factory"}, True),
    ],
)
def test_selector_matches(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_selector(selector).matches(labels) is matches


@pytest.mark.parametrize(
    ("selector", "why"),
    [
        ("", "empty selector"),
        ("a=b,", "stray comma"),
        ("zone in (a,b", "without ')'"),
        ("zone in ((a))", "nested"),
        ("zone in ()", "lists no values"),
        ("a=b=c", "cannot read"),
        ("a b", "cannot read"),
        ("-x=1", "not a label key"),
        ("a=-x-", "not a label value"),
    ],
)
def test_bad_selectors(selector: str, why: str) -> None:
    with pytest.raises(SpecError, match="syntax: a=b") as err:
        parse_selector(selector)
    assert why in str(err.value)


def test_label_changes() -> None:
    assert parse_label_changes(["tier=canary", "site-"]) == ({"tier": "canary"}, ["site"])
    for bad in (["tier"], ["tier=a b"], ["tier=x", "tier-"], ["Bad Key=1"]):
        with pytest.raises(SpecError):
            parse_label_changes(bad)


# --------------------------------------------------------------------------- images through the CLI


def test_arm64_region_renders_its_own_serving_image(fleet: Path) -> None:
    # the base fleet has the demo's arm64 image (kubevc-gen image add serving emacski/...)
    seoul = _values(fleet, "seoul", "kubevc-serving")
    busan = _values(fleet, "busan", "kubevc-serving")
    assert seoul["image"] == {"repository": "emacski/tensorflow-serving", "tag": "2.6.0"}
    assert busan["image"] == {"repository": "tensorflow/serving", "tag": "2.18.0"}
    gateway = _values(fleet, "seoul", "kubevc-gateway")["image"]
    assert gateway["repository"] == "ghcr.io/kubevc/kubevc-gateway"
    assert (
        _values(fleet, "busan", "kubevc-model-store")["publisher"]["job"]["image"]["repository"] == "busybox"
    )


def test_validate_refuses_a_region_no_image_covers(gen: Gen, fleet: Path) -> None:
    add = gen(
        "region", "add", "pi", "--api-endpoint", "https://10.1.0.1:6443", "--arch", "armhf",
        "--nfs-server", "nas", "--nfs-path", "/m", "--no-monitoring",
    )  # fmt: skip
    assert add.exit_code == 0, add.output
    before = snapshot(fleet)
    result = gen("validate", "--no-checkov", "--region", "pi")
    assert result.exit_code == 1, result.output
    flat = " ".join(result.output.split())
    assert "region pi: gateway: no image in the catalogue runs on linux/arm/v7" in flat
    assert "kubevc-gen image add gateway REPOSITORY:TAG --platform linux/arm/v7" in flat
    assert snapshot(fleet) == before
    fixed = gen("image", "add", "gateway", "example.com/gw:0.1.0", "--platform", "linux/arm/v7")
    assert fixed.exit_code == 0, fixed.output
    assert _values(fleet, "pi", "kubevc-gateway")["image"] == {"repository": "example.com/gw", "tag": "0.1.0"}
    assert _values(fleet, "seoul", "kubevc-gateway")["image"]["repository"] == "ghcr.io/kubevc/kubevc-gateway"
    assert gen("validate", "--no-checkov", "--region", "pi").exit_code == 0


def test_region_image_override_that_does_not_fit_fails_validate(gen: Gen, fleet: Path) -> None:
    own = "images.serving={repository: mine/tfs, tag: '1.0', platforms: [linux/amd64]}"
    assert gen("region", "set", "seoul", own).exit_code == 0
    result = gen("validate", "--no-checkov", "--region", "seoul")
    assert result.exit_code == 1
    assert "images.serving of regions/seoul/region.yaml" in " ".join(result.output.split())
    ok = "images.serving={repository: mine/tfs, tag: '1.0', platforms: [linux/arm64]}"
    assert gen("region", "set", "seoul", ok).exit_code == 0
    assert _values(fleet, "seoul", "kubevc-serving")["image"] == {"repository": "mine/tfs", "tag": "1.0"}


def test_image_list(gen: Gen) -> None:
    result = gen("image", "list")
    assert result.exit_code == 0, result.output
    assert "emacski/tensorflow-serving:2.6.0" in result.output and "built-in" in result.output


@pytest.mark.parametrize(
    ("args", "needle", "code"),
    [
        (["image", "add", "serving", "x:latest", "--platform", "linux/arm64"], "pinned tag", 5),
        (["image", "add", "serving", "x:1"], "--platform", 2),
        (["image", "add", "nope", "x:1", "--platform", "linux/arm64"], "nope", 2),
        (["image", "add", "serving", "x:1", "--platform", "linux/s390x"], "s390x", 2),
        (
            ["image", "add", "serving", "emacski/tensorflow-serving:2.6.0", "--platform", "linux/arm64"],
            "already lists",
            5,
        ),
    ],
)
def test_bad_image_add_changes_nothing(
    gen: Gen, fleet: Path, args: list[str], needle: str, code: int
) -> None:
    # 2: click's usage errors (a missing option, a value outside a choice); 5: bad input
    before = snapshot(fleet)
    result = gen(*args)
    assert result.exit_code == code, result.output
    assert needle in result.output and "Traceback" not in result.output
    assert snapshot(fleet) == before


# --------------------------------------------------------------------------- values overrides


def test_cpu_limit_and_retention_land_only_in_that_region(gen: Gen, fleet: Path) -> None:
    shared_before = (fleet / "infrastructure/controllers/kube-prometheus-stack.yaml").read_bytes()
    busan_before = _values(fleet, "busan", "kubevc-serving")
    result = gen(
        "region",
        "set",
        "seoul",
        "values.kubevc-serving.resources.limits.cpu=2",
        "values.kube-prometheus-stack.prometheus.prometheusSpec.retention=3d",
    )
    assert result.exit_code == 0, result.output
    assert _values(fleet, "seoul", "kubevc-serving")["resources"]["limits"]["cpu"] == 2
    assert _values(fleet, "busan", "kubevc-serving") == busan_before
    assert (fleet / "infrastructure/controllers/kube-prometheus-stack.yaml").read_bytes() == shared_before
    own = _kps_release(fleet, "infrastructure/regions/seoul")
    assert own["spec"]["values"]["prometheus"]["prometheusSpec"]["retention"] == "3d"
    assert own["spec"]["values"]["prometheus"]["prometheusSpec"]["retentionSize"] == "8GB"  # shared rest kept
    infra = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all((fleet / "clusters/seoul/infrastructure.yaml").read_text())
    }
    assert infra["infra-controllers"]["spec"]["path"] == "./infrastructure/regions/seoul"
    busan = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all((fleet / "clusters/busan/infrastructure.yaml").read_text())
    }
    assert busan["infra-controllers"]["spec"]["path"] == "./infrastructure/controllers"
    assert git(fleet, "status", "--porcelain") == ""
    # dropping the override deletes the region's own stack again
    assert gen("region", "set", "seoul", "values.kube-prometheus-stack=").exit_code == 0
    assert not (fleet / "infrastructure/regions/seoul").exists()
    assert gen("render", "--check").exit_code == 0


def test_values_file(gen: Gen, fleet: Path, tmp_path: Path) -> None:
    values = tmp_path / "gw.yaml"
    values.write_text("replicaCount: 2\nresources:\n  limits:\n    memory: 1Gi\n")
    result = gen("region", "set", "busan", "--values-file", f"kubevc-gateway={values}")
    assert result.exit_code == 0, result.output
    gateway = _values(fleet, "busan", "kubevc-gateway")
    assert gateway["replicaCount"] == 2 and gateway["resources"]["limits"]["memory"] == "1Gi"
    assert "replicaCount" not in _values(fleet, "seoul", "kubevc-gateway")
    spec = yaml.safe_load((fleet / "regions/busan/region.yaml").read_text())
    assert spec["values"] == {
        "kubevc-gateway": {"replicaCount": 2, "resources": {"limits": {"memory": "1Gi"}}}
    }


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["values.kubevc-serving.resources.limits.cpux=2"],
            "values.kubevc-serving.resources.limits.cpux: unknown key (did you mean 'cpu'?)",
        ),
        (["values.kubevc-serving.replicaCont=2"], "did you mean 'replicaCount'?"),
        (
            ["values.kubevc-serving.replicaCount=many"],
            "values.kubevc-serving.replicaCount: 'many' is not of type",
        ),
        (["values.kubevc-serving.image.tag=latest"], "values.kubevc-serving.image.tag"),
        (
            ["values.kube-prometheus-stack.prometheus.prometheusSpec.retentoin=3d"],
            "did you mean 'prometheus.prometheusSpec.retention'?",
        ),
        (["values.kubevc-servin.replicaCount=2"], "unknown chart 'kubevc-servin'"),
        (["--values-file", "kubevc-serving"], "CHART=FILE"),
        (["--values-file", "kubevc-servng=x.yaml"], "did you mean 'kubevc-serving'?"),
        (["--values-file", "kubevc-serving=/nonexistent.yaml"], "cannot read"),
    ],
)
def test_bad_values_change_nothing(gen: Gen, fleet: Path, args: list[str], needle: str) -> None:
    before = snapshot(fleet)
    result = gen("region", "set", "seoul", *args)
    assert result.exit_code == 5, result.output
    assert needle in " ".join(result.output.split()), result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert snapshot(fleet) == before


def test_kps_allow_list_keys_exist_upstream(upstream: tuple[dict[str, Any], dict[str, Any]]) -> None:  # noqa: F811
    main, subs = upstream
    for key in KPS_ALLOWED_KEYS:
        parts = key.rstrip(".").split(".")
        nested: Any = "x"
        for part in reversed(parts):
            nested = {part: nested}
        assert _missing(nested, main, "", subs) == [], key
    assert kps_key_allowed("prometheus.prometheusSpec.resources.limits.memory")
    assert not kps_key_allowed("prometheus.prometheusSpec.retentionSizes")


# --------------------------------------------------------------------------- labels and selectors


def test_region_label_and_selectors(gen: Gen, fleet: Path) -> None:
    result = gen("region", "label", "seoul", "tier=canary", "site=factory")
    assert result.exit_code == 0, result.output
    assert git(fleet, "log", "-1", "--format=%s").strip() == "region label seoul tier=canary site=factory"
    assert yaml.safe_load((fleet / "regions/seoul/region.yaml").read_text())["labels"] == {
        "tier": "canary",
        "site": "factory",
    }
    assert gen("region", "label", "busan", "tier=edge").exit_code == 0
    # -l on a mutating multi-region command: only the matching region changes
    add = gen("model", "add", "bert", "-l", "tier in (canary)", "--profile", "text")
    assert add.exit_code == 0, add.output

    def names(region: str) -> list[str]:
        spec = yaml.safe_load((fleet / f"regions/{region}/region.yaml").read_text())
        return [m["name"] for m in spec.get("models", [])]

    assert names("seoul") == ["bert"] and names("busan") == []
    canary = gen("model", "canary", "bert", "--percent", "5", "--selector", "tier!=canary")
    assert canary.exit_code == 5 and "bert" in canary.output  # busan has no bert
    valid = gen("validate", "--no-checkov", "-l", "site=factory")
    assert valid.exit_code == 0, valid.output
    assert "busan" not in valid.output
    assert gen("region", "label", "seoul", "site-").exit_code == 0
    assert "site" not in yaml.safe_load((fleet / "regions/seoul/region.yaml").read_text())["labels"]


@pytest.mark.parametrize(
    "args",
    [
        ["render", "-l", "tier=nowhere"],
        ["validate", "-l", "tier=nowhere"],
        ["status", "-l", "tier=nowhere"],
        ["reconcile", "-l", "tier=nowhere"],
        ["suspend", "-l", "tier=nowhere", "--no-live"],
        ["resume", "-l", "tier=nowhere", "--no-live"],
        ["model", "add", "bert", "-l", "tier=nowhere"],
        ["model", "promote", "bert", "--version", "1", "--label", "stable", "-l", "tier=nowhere"],
        ["model", "rollback", "bert", "-l", "tier=nowhere"],
        ["model", "canary", "bert", "--percent", "1", "-l", "tier=nowhere"],
        ["model", "remove", "bert", "-l", "tier=nowhere"],
        ["region", "label", "-l", "tier=nowhere", "x=y"],
        ["image", "list", "-l", "tier=nowhere"],
    ],
)
def test_selector_matching_nothing_is_an_error(gen: Gen, fleet: Path, args: list[str]) -> None:
    before = snapshot(fleet)
    result = gen(*args)
    assert result.exit_code == 5, result.output
    assert "selector 'tier=nowhere' matches no region" in " ".join(result.output.split())
    assert snapshot(fleet) == before


@pytest.mark.parametrize(
    ("args", "needle", "code"),
    [
        (["validate", "-l", "a in (b"], "without ')'", 2),
        (["status", "seoul", "-l", "a=b"], "not both", 5),
        (["region", "label", "seoul", "tier"], "KEY=VALUE", 2),
        (["region", "label", "seoul", "tier=a b"], "not a label value", 5),
        (["region", "set", "seoul", "labels.tier=-x"], "not a label value", 5),
    ],
)
def test_bad_selector_and_label_input(gen: Gen, fleet: Path, args: list[str], needle: str, code: int) -> None:
    # 2: click's usage errors (a malformed option value); 5: bad input
    before = snapshot(fleet)
    result = gen(*args)
    assert result.exit_code == code, result.output
    assert needle in result.output
    assert snapshot(fleet) == before


def test_render_with_selector_writes_only_those_regions(gen: Gen, fleet: Path) -> None:
    assert gen("region", "label", "seoul", "tier=canary").exit_code == 0
    region = fleet / "regions/busan/region.yaml"
    seoul = fleet / "regions/seoul/region.yaml"
    region.write_text(region.read_text().replace("monitoring: true", "monitoring: false"))
    seoul.write_text(seoul.read_text().replace("monitoring: true", "monitoring: false"))
    git(fleet, "commit", "-qam", "monitoring off by hand")
    result = gen("render", "-l", "tier=canary")
    assert result.exit_code == 0, result.output
    changed = set(git(fleet, "show", "--name-only", "--format=", "HEAD").split())
    assert changed and all(p.startswith(("clusters/seoul/", "apps/seoul/")) for p in changed), changed
    assert gen("render", "--check").exit_code == 1  # busan still waits


def test_kps_override_with_a_hub_goes_into_the_agent_folder(gen: Gen, fleet: Path) -> None:
    from .test_hub import HUB

    assert gen(*HUB).exit_code == 0
    override = "values.kube-prometheus-stack.prometheus.prometheusSpec.resources.limits.memory=300Mi"
    result = gen("region", "set", "seoul", override)
    assert result.exit_code == 0, result.output
    agent = _kps_release(fleet, "infrastructure/agents/seoul")["spec"]["values"]["prometheus"][
        "prometheusSpec"
    ]
    assert agent["resources"]["limits"]["memory"] == "300Mi"
    assert "remoteWrite" in agent  # the agent-mode values stay
    other = _kps_release(fleet, "infrastructure/agents/busan")["spec"]["values"]["prometheus"][
        "prometheusSpec"
    ]
    assert other["resources"]["limits"]["memory"] != "300Mi"
    assert not (fleet / "infrastructure/regions/seoul").exists()
    infra = list(yaml.safe_load_all((fleet / "clusters/seoul/infrastructure.yaml").read_text()))
    assert next(d for d in infra if d["metadata"]["name"] == "infra-controllers")["spec"]["path"] == (
        "./infrastructure/agents/seoul"
    )


def test_suspend_by_selector_is_one_commit(gen: Gen, fleet: Path) -> None:
    assert gen("region", "label", "seoul", "tier=edge").exit_code == 0
    assert gen("region", "label", "busan", "tier=edge").exit_code == 0
    result = gen("suspend", "-l", "tier=edge", "--no-live")
    assert result.exit_code == 0, result.output
    assert git(fleet, "log", "-1", "--format=%s").strip() == (
        "suspend busan, seoul: Flux Kustomizations suspended (maintenance window)"
    )
    for region in ("seoul", "busan"):
        assert yaml.safe_load((fleet / f"regions/{region}/region.yaml").read_text())["suspended"] is True
    assert gen("suspend").exit_code == 5


# --------------------------------------------------------------------------- model remove / node remove


def test_model_remove_refuses_the_stable_model_unless_forced(gen: Gen, fleet: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    models = "models=[{name: resnet50, basePath: /models/resnet50, versionLabels: {stable: 1}}]"
    assert gen("region", "set", "busan", models).exit_code == 0
    assert gen("model", "add", "bert", "--region", "seoul", "--labels", str(labels)).exit_code == 0
    assert (fleet / "models/bert/labels.txt").is_file()
    before = snapshot(fleet)
    refused = gen("model", "remove", "resnet50")
    assert refused.exit_code == 5
    assert "region busan: model 'resnet50' is the stable version (1)" in " ".join(refused.output.split())
    assert "--force" in refused.output
    assert snapshot(fleet) == before
    assert gen("model", "remove", "nothere").exit_code == 5
    assert snapshot(fleet) == before
    # no stable label: removed without --force, its label file with it
    removed = gen("model", "remove", "bert")
    assert removed.exit_code == 0, removed.output
    assert git(fleet, "log", "-1", "--format=%s").strip() == "model remove bert from seoul"
    assert not (fleet / "models/bert/labels.txt").exists()
    assert "bert" not in (fleet / "apps/seoul/kubevc-gateway-values.yaml").read_text()
    forced = gen("model", "remove", "resnet50", "--force")
    assert forced.exit_code == 0, forced.output
    assert "resnet50" not in (fleet / "regions/busan/region.yaml").read_text()


def test_node_remove_prints_what_to_drain(gen: Gen, fleet: Path) -> None:
    assert (
        gen("region", "set", "seoul", "nodes=[{host: 10.8.0.2, role: server}, {host: 10.8.0.3}]").exit_code
        == 0
    )
    before = snapshot(fleet)
    missing = gen("node", "remove", "seoul", "10.8.0.9")
    assert missing.exit_code == 5 and "no node '10.8.0.9' (nodes: 10.8.0.2, 10.8.0.3)" in missing.output
    assert snapshot(fleet) == before
    result = gen("node", "remove", "seoul", "10.8.0.3")
    assert result.exit_code == 0, result.output
    assert "kubectl --context seoul drain <node> --ignore-daemonsets --delete-emptydir-data" in result.output
    assert "kubectl --context seoul delete node <node>" in result.output
    assert git(fleet, "log", "-1", "--format=%s").strip() == "node remove seoul 10.8.0.3"
    hosts = [n["host"] for n in yaml.safe_load((fleet / "regions/seoul/region.yaml").read_text())["nodes"]]
    assert hosts == ["10.8.0.2"]
    server = gen("node", "remove", "seoul", "10.8.0.2")
    assert server.exit_code == 0 and "was a server node" in server.output
