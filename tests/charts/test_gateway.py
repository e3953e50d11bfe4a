"""kubevc-gateway: gateway.yaml follows the contract in docs/gateway-config.md; pod wiring."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.charts.hardening import is_helm_test
from tests.charts.rendering import CHARTS_DIR, CiCase, Manifest, ci_cases, manifests, render, render_case

GATEWAY_CASES = [case for case in ci_cases() if case.chart == "kubevc-gateway"]
CHART_DIR = CHARTS_DIR / "kubevc-gateway"
CONTRACT_DOC = CHART_DIR.parents[1] / "docs" / "gateway-config.md"


def by_kind(objects: list[Manifest], kind: str) -> Manifest:
    """The first release object of ``kind`` (helm test hooks left out: see test_helm_tests.py)."""
    return next(obj for obj in objects if obj["kind"] == kind and not is_helm_test(obj))


def merged(defaults: Any, override: Any) -> Any:
    # Helm's values merge: maps merge key by key, anything else replaces.
    if isinstance(defaults, dict) and isinstance(override, dict):
        return {**defaults, **{key: merged(defaults.get(key), value) for key, value in override.items()}}
    return override


def contract_example() -> dict[str, Any]:
    block = re.search(r"```yaml\n(.*?)```", CONTRACT_DOC.read_text(), re.S)
    assert block, f"no yaml block in {CONTRACT_DOC}"
    example: dict[str, Any] = yaml.safe_load(block.group(1))
    return example


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Dotted key paths of a YAML value; list items share one path (`models[]`)."""
    if isinstance(value, dict):
        paths = set()
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths |= {path} | key_paths(item, path)
        return paths
    if isinstance(value, list):
        return set().union(*(key_paths(item, f"{prefix}[]") for item in value)) if value else set()
    return set()


def schema_paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        paths.add(path)
        paths |= schema_paths(sub, path)
        paths |= schema_paths(sub.get("items", {}), f"{path}[]")
    return paths


def test_schema_accepts_exactly_the_contract_keys() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())["properties"]["config"]
    assert schema_paths(schema) == key_paths(contract_example())


def test_contract_example_renders_verbatim() -> None:
    example = contract_example()
    rendered = render("kubevc-gateway", {"config": example})
    gateway_yaml = yaml.safe_load(by_kind(manifests(rendered), "ConfigMap")["data"]["gateway.yaml"])
    assert gateway_yaml == example


@pytest.mark.parametrize("case", GATEWAY_CASES, ids=lambda case: case.id)
def test_config_map_holds_the_values_config(case: CiCase) -> None:
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["config"]
    expected = merged(defaults, case.values().get("config", {}))
    config_map = by_kind(manifests(render_case(case)), "ConfigMap")
    assert list(config_map["data"]) == ["gateway.yaml"]
    assert yaml.safe_load(config_map["data"]["gateway.yaml"]) == expected


@pytest.mark.parametrize("case", GATEWAY_CASES, ids=lambda case: case.id)
def test_container_runs_the_gateway_on_its_config(case: CiCase) -> None:
    pod = by_kind(manifests(render_case(case)), "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert [*container["command"], *container["args"]] == [
        "kubevc-gateway",
        "--config",
        "/etc/kubevc-gateway/gateway.yaml",
    ]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    config_volume = next(v for v in pod["volumes"] if v["name"] == "config")
    config_map = by_kind(manifests(render_case(case)), "ConfigMap")
    assert config_volume["configMap"]["name"] == config_map["metadata"]["name"]


def checksum(values: dict[str, Any]) -> str:
    deployment = by_kind(manifests(render("kubevc-gateway", values)), "Deployment")
    value: str = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    return value


def test_config_change_rolls_the_pods() -> None:
    debug = {"config": {"server": {"logLevel": "debug"}}}
    assert checksum({}) == checksum({})
    assert checksum({}) != checksum(debug)
    assert checksum({"replicaCount": 3}) == checksum({}), "only config changes should roll the pods"


def test_all_toggles_render_every_optional_object() -> None:
    case = next(case for case in GATEWAY_CASES if case.values_file.stem == "all-toggles-values")
    objects = manifests(render_case(case))
    kinds = sorted(obj["kind"] for obj in objects if not is_helm_test(obj))
    expected = ["ConfigMap", "Deployment", "Service", "Ingress", "ServiceMonitor", "HorizontalPodAutoscaler"]
    assert kinds == sorted([*expected, "PodDisruptionBudget", "NetworkPolicy"])
    # and the helm test hooks: the test Pod, its own NetworkPolicy and the one admitting it
    assert sorted(obj["kind"] for obj in objects if is_helm_test(obj)) == [
        "NetworkPolicy",
        "NetworkPolicy",
        "Pod",
    ]
    policy = by_kind(manifests(render_case(case)), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    egress_ports = {port["port"] for rule in policy["egress"] for port in rule["ports"]}
    assert egress_ports == {53, 8500, 9000}


def test_defaults_render_no_optional_network_exposure() -> None:
    kinds = {obj["kind"] for obj in manifests(render("kubevc-gateway", {}))}
    assert "Ingress" not in kinds and "ServiceMonitor" not in kinds and "HorizontalPodAutoscaler" not in kinds


def test_model_store_mount_is_read_only() -> None:
    values = {"modelStore": {"enabled": True, "claimName": "seoul-models", "mountPath": "/models"}}
    pod = by_kind(manifests(render("kubevc-gateway", values)), "Deployment")["spec"]["template"]["spec"]
    assert {
        "name": "models",
        "persistentVolumeClaim": {"claimName": "seoul-models", "readOnly": True},
    } in pod["volumes"]
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in pod["containers"][0][
        "volumeMounts"
    ]
