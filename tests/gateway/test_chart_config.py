"""The kubevc-gateway chart renders exactly the file the gateway reads (docs/gateway-config.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubevc.gateway import GatewayConfig, parse_config

CHART = Path(__file__).resolve().parents[2] / "charts" / "kubevc-gateway"


def _chart() -> Path:
    if not (CHART / "Chart.yaml").exists():
        pytest.skip(f"{CHART} does not exist yet (the chart is written separately)")
    return CHART


def _ci_values() -> list[Path]:
    return sorted((CHART / "ci").glob("*-values.yaml")) if CHART.exists() else []


@pytest.mark.parametrize("values_file", _ci_values() or [None], ids=lambda p: p.name if p else "no-chart")
def test_rendered_configmap_loads_through_the_config_model(values_file: Path | None) -> None:
    chart = _chart()
    import helm_python  # helm-python-sdk, installed with the gen extra

    assert values_file is not None, f"{chart}/ci has no *-values.yaml"
    values = yaml.safe_load(values_file.read_text()) or {}
    rendered = helm_python.Chart.load(chart).render(values, name="edge", namespace="kubevc")
    configmaps = [
        doc
        for path, text in rendered.items()
        if path.endswith((".yaml", ".yml"))
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict)
        and doc.get("kind") == "ConfigMap"
        and "gateway.yaml" in (doc.get("data") or {})
    ]
    assert len(configmaps) == 1, f"expected one ConfigMap with gateway.yaml, got {len(configmaps)}"
    config = parse_config(yaml.safe_load(configmaps[0]["data"]["gateway.yaml"]), env={})
    given = values.get("config") or {}
    # what the values set is what the gateway reads (lists replace the chart defaults)
    if "models" in given:
        assert [m.name for m in config.models] == [m["name"] for m in given["models"]]
    if "backends" in given:
        assert [b.address for b in config.backends] == [b["address"] for b in given["backends"]]
    for section in ("server", "limits"):
        for key, value in (given.get(section) or {}).items():
            assert getattr(config, section).model_dump(by_alias=True)[key] == value, f"{section}.{key}"


def _keys(schema: dict[str, Any], defs: dict[str, Any], path: str = "") -> dict[str, set[str]]:
    """Object key sets by path, following $ref/anyOf (pydantic) and array items."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[1]]
    for combo in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(combo, []):
            if sub.get("type") != "null":
                found = _keys(sub, defs, path)
                if found:
                    return found
    out: dict[str, set[str]] = {}
    if "properties" in schema:
        out[path or "."] = set(schema["properties"])
        for key, sub in schema["properties"].items():
            out.update(_keys(sub, defs, f"{path}.{key}"))
    if "items" in schema and isinstance(schema["items"], dict):
        out.update(_keys(schema["items"], defs, f"{path}[]"))
    return out


def test_chart_schema_accepts_exactly_the_config_keys() -> None:
    import json

    chart = _chart()
    schema = json.loads((chart / "values.schema.json").read_text())
    chart_config = schema["properties"]["config"]
    ours = GatewayConfig.model_json_schema(by_alias=True)
    ours_keys = _keys(ours, ours.get("$defs", {}))
    chart_keys = _keys(chart_config, schema.get("$defs", schema.get("definitions", {})))
    assert chart_keys == ours_keys
