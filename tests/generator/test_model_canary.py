"""The canary traffic share: ``model promote --label canary --canary-percent P`` and ``model canary``.

Outcomes are read from the region spec, the gateway's values ConfigMap and the gateway config the
vendored gateway chart renders through the real Helm SDK (which also checks the chart's values
schema), parsed by the gateway's own config loader. Bad input must leave the git state as it was.
Version checks against the store are skipped (``--skip-store-check``): the store side is covered in
test_model_cli.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from pydantic import ValidationError

from kubevc.gateway import parse_config
from kubevc.generator.errors import SpecError
from kubevc.generator.repo import parse_region, region_to_yaml
from kubevc.generator.spec import ModelSpec, RegionSpec

from .conftest import Gen, git, snapshot
from .test_model_cli import last_message, region_values


def promote(gen: Gen, version: int, label: str, *extra: str) -> str:
    args = ["model", "promote", "scale", "--version", str(version), "--label", label, "--skip-store-check"]
    result = gen(*args, *extra)
    assert result.exit_code == 0, result.output
    return result.output


def canary(gen: Gen, percent: int, *extra: str) -> str:
    result = gen("model", "canary", "scale", "--percent", str(percent), *extra)
    assert result.exit_code == 0, result.output
    return result.output


def gateway_model(fleet: Path, region: str) -> dict[str, Any]:
    """MODEL in the gateway config the vendored gateway chart renders with the region's values."""
    chart = helm_python.Chart.load(str(fleet / "charts/kubevc-gateway"))
    rendered = chart.render(
        region_values(fleet, region, "kubevc-gateway"), name="kubevc-gateway", namespace="kubevc"
    )
    cm = yaml.safe_load(rendered["kubevc-gateway/templates/configmap.yaml"])
    config = yaml.safe_load(cm["data"]["gateway.yaml"])
    parsed = parse_config(config, env={})  # the gateway itself accepts it
    entry = next(m for m in config["models"] if m["name"] == "scale")
    got = parsed.model("scale")
    assert got is not None
    if entry.get("canary") is None:
        assert got.canary is None
    else:
        assert got.canary is not None and got.canary.percent == entry["canary"]["percent"]
    assert isinstance(entry, dict)
    return entry


def values_canary(fleet: Path, region: str) -> Any:
    return region_values(fleet, region, "kubevc-gateway")["config"]["models"][0].get("canary")


def spec_model(fleet: Path, region: str) -> dict[str, Any]:
    model = yaml.safe_load((fleet / f"regions/{region}/region.yaml").read_text())["models"][0]
    assert isinstance(model, dict)
    return model


def commits(fleet: Path) -> int:
    return int(git(fleet, "rev-list", "--count", "HEAD").strip())


def changed_in_last_commit(fleet: Path) -> set[str]:
    return set(git(fleet, "show", "--name-only", "--format=", "HEAD").split())


@pytest.fixture
def with_model(gen: Gen, fleet: Path) -> Path:
    result = gen("model", "add", "scale", "--region", "seoul", "--region", "busan", "--profile", "tensor")
    assert result.exit_code == 0, result.output
    promote(gen, 1, "stable")
    return fleet


def test_canary_share_from_promote_to_graduation(gen: Gen, with_model: Path) -> None:
    fleet = with_model
    for region in ("seoul", "busan"):
        assert "canary" not in gateway_model(fleet, region)  # no canary label: no routing
        assert values_canary(fleet, region) is None

    n = commits(fleet)
    promote(gen, 2, "canary", "--canary-percent", "10", "--region", "busan")
    assert commits(fleet) == n + 1
    assert last_message(fleet) == (
        "model promote scale: canary -> 2 (busan: canary -> 2 (stable stays 1, share 10%))"
    )
    assert spec_model(fleet, "busan")["canaryPercent"] == 10
    assert gateway_model(fleet, "busan")["canary"] == {"label": "canary", "percent": 10}
    assert "canary" not in gateway_model(fleet, "seoul")

    # a canary promoted without a share renders percent 0 (stable stays the default) and no key
    promote(gen, 2, "canary", "--region", "seoul")
    assert last_message(fleet) == (
        "model promote scale: canary -> 2 (seoul: canary -> 2 (stable stays 1, share 0%))"
    )
    assert "canaryPercent" not in spec_model(fleet, "seoul")
    assert "canaryPercent" not in (fleet / "regions/seoul/region.yaml").read_text()
    assert gateway_model(fleet, "seoul")["canary"] == {"label": "canary", "percent": 0}

    # `model canary` changes only the share, one commit, only the region that changes
    n = commits(fleet)
    canary(gen, 25, "--region", "busan")
    assert commits(fleet) == n + 1
    assert last_message(fleet) == "model canary scale: busan: 10% -> 25%"
    assert changed_in_last_commit(fleet) == {
        "regions/busan/region.yaml",
        "apps/busan/kubevc-gateway-values.yaml",
    }
    assert gateway_model(fleet, "busan")["canary"] == {"label": "canary", "percent": 25}
    assert spec_model(fleet, "busan")["versionLabels"] == {"stable": 1, "canary": 2}
    listing = gen("model", "list")
    assert listing.exit_code == 0, listing.output
    row = next(line for line in listing.output.splitlines() if "busan" in line and "scale" in line)
    assert "canary=2, stable=1 (canary share 25%)" in row, listing.output

    canary(gen, 25)  # every region with the model
    assert last_message(fleet) == "model canary scale: busan: 25% (unchanged); seoul: 0% -> 25%"
    assert "apps/busan/kubevc-gateway-values.yaml" not in changed_in_last_commit(fleet)
    n = commits(fleet)
    out = canary(gen, 25)
    assert "nothing to change" in out and commits(fleet) == n

    # a new canary version starts again at the share given (none: 0%), not at the old one's
    promote(gen, 3, "canary", "--region", "busan")
    assert last_message(fleet) == (
        "model promote scale: canary -> 3 (busan: canary 2 -> 3 (stable stays 1, share 25% -> 0%))"
    )
    assert gateway_model(fleet, "busan")["canary"] == {"label": "canary", "percent": 0}
    promote(gen, 3, "canary", "--canary-percent", "5", "--region", "busan")
    assert last_message(fleet) == (
        "model promote scale: canary -> 3 (busan: canary stays 3 (stable stays 1, share 0% -> 5%))"
    )
    assert gateway_model(fleet, "busan")["canary"] == {"label": "canary", "percent": 5}

    # graduating the canary ends the split: no canary label, no share, no gateway block
    promote(gen, 3, "stable", "--region", "busan")
    assert last_message(fleet) == (
        "model promote scale: stable -> 3 (busan: stable 1 -> 3 (canary 3 graduated, share 5% -> off))"
    )
    busan = spec_model(fleet, "busan")
    assert busan["versionLabels"] == {"stable": 3} and "canaryPercent" not in busan
    assert "canary" not in gateway_model(fleet, "busan")
    assert gen("render", "--check").exit_code == 0


def test_rollback_stops_the_canary_traffic(gen: Gen, with_model: Path) -> None:
    fleet = with_model
    promote(gen, 2, "canary", "--canary-percent", "30")
    promote(gen, 3, "stable", "--region", "seoul")  # seoul: stable 3, canary 2 keeps its 30%
    assert gateway_model(fleet, "seoul")["canary"] == {"label": "canary", "percent": 30}
    result = gen("model", "rollback", "scale", "--region", "seoul")
    assert result.exit_code == 0, result.output
    assert last_message(fleet) == "model rollback scale: seoul: stable 3 -> 1 (canary 2 share 30% -> 0%)"
    seoul = spec_model(fleet, "seoul")
    assert seoul["versionLabels"] == {"stable": 1, "canary": 2} and "canaryPercent" not in seoul
    assert gateway_model(fleet, "seoul")["canary"] == {"label": "canary", "percent": 0}
    # busan is untouched
    assert gateway_model(fleet, "busan")["canary"] == {"label": "canary", "percent": 30}

    # a rollback onto the canary's own version ends the canary
    promote(gen, 3, "stable", "--region", "busan")  # busan: stable 1 -> 3, canary 2 at 30%
    promote(gen, 1, "canary", "--canary-percent", "20", "--region", "busan")
    result = gen("model", "rollback", "scale", "--region", "busan")
    assert result.exit_code == 0, result.output
    assert (
        last_message(fleet) == "model rollback scale: busan: stable 3 -> 1 (canary 1 ended, share 20% -> off)"
    )
    busan = spec_model(fleet, "busan")
    assert busan["versionLabels"] == {"stable": 1} and "canaryPercent" not in busan
    assert "canary" not in gateway_model(fleet, "busan")
    assert gen("render", "--check").exit_code == 0


def test_bad_canary_input_changes_nothing(gen: Gen, fleet: Path) -> None:
    assert gen("model", "add", "scale", "--region", "seoul", "--region", "busan").exit_code == 0
    promote(gen, 1, "stable", "--region", "busan")
    promote(gen, 2, "canary", "--region", "seoul")  # seoul: a canary, but no stable version
    cases: list[tuple[str, str]] = [
        ("model canary scale --percent 101", "101 is not in the range 0<=x<=100"),
        ("model canary scale --percent -1", "-1 is not in the range 0<=x<=100"),
        ("model canary scale --percent ten", "'ten' is not a valid integer"),
        ("model canary scale", "Missing option '--percent'"),
        ("model canary scale --percent 10", "region busan: scale has no canary version"),
        ("model canary scale --percent 10 --region seoul", "region seoul: scale has no stable version"),
        ("model canary nope --percent 10", "model 'nope' is not registered"),
        ("model canary scale --percent 10 --region daegu", "region 'daegu' not found"),
        (
            "model promote scale --version 2 --label canary --canary-percent 150 --skip-store-check",
            "150 is not in the range 0<=x<=100",
        ),
        (
            "model promote scale --version 2 --label stable --canary-percent 10 --skip-store-check",
            "--canary-percent goes with --label canary",
        ),
        (
            "model promote scale --version 3 --label canary --canary-percent 10 --region seoul "
            "--skip-store-check",
            "region seoul: scale has no stable version",
        ),
        (
            "region set busan models.0.canaryPercent=120",
            "canaryPercent: Input should be less than or equal to 100",
        ),
        ("region set busan models.0.canaryPercent=12.5", "canaryPercent: Input should be a valid integer"),
        ("region set busan models.0.canaryPercent=10", "canaryPercent needs both a 'stable' and a 'canary'"),
    ]
    for args, message in cases:
        before = snapshot(fleet)
        result = gen(*args.split())
        assert result.exit_code != 0, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
        assert snapshot(fleet) == before, args


def test_canary_percent_in_the_region_spec() -> None:
    base = {"name": "m", "basePath": "/models/m", "versionPolicy": "specific", "versions": [1, 2]}
    running = {**base, "versionLabels": {"stable": 1, "canary": 2}}
    assert ModelSpec.model_validate({**running, "canaryPercent": 0}).canary_percent == 0
    assert ModelSpec.model_validate({**running, "canaryPercent": 100}).canary_percent == 100
    assert ModelSpec.model_validate(running).has_canary
    assert not ModelSpec.model_validate({**base, "versionLabels": {"canary": 2}}).has_canary
    for bad in (-1, 101, 2.5, "10", True):
        with pytest.raises(ValidationError):
            ModelSpec.model_validate({**running, "canaryPercent": bad})
    with pytest.raises(ValidationError, match="canaryPercent needs both"):
        ModelSpec.model_validate({**base, "versionLabels": {"canary": 2}, "canaryPercent": 5})

    text = """name: busan
apiEndpoint: https://10.9.0.1:6443
storage: {nfs: {server: 10.9.0.20, path: /export/models}}
git: {url: https://git.example.com/ops/fleet.git}
models:
  - name: m
    basePath: /models/m
    versionPolicy: specific
    versions: [1, 2]
    versionLabels: {stable: 1, canary: 2}
    canaryPercent: 140
"""
    with pytest.raises(SpecError) as err:
        parse_region(text, "regions/busan/region.yaml")
    assert "regions/busan/region.yaml:11: models[0].canaryPercent: Input should be less than" in str(
        err.value
    )
    spec, _ = parse_region(text.replace("canaryPercent: 140\n", ""), "region.yaml")
    assert "canaryPercent" not in region_to_yaml(spec)  # unset: not written
    model = spec.models[0].model_copy(update={"canary_percent": 15})
    out = region_to_yaml(RegionSpec.model_validate(spec.model_copy(update={"models": [model]}).model_dump()))
    assert "canaryPercent: 15" in out
