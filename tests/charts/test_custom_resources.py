"""ServiceMonitor / PrometheusRule objects against the upstream prometheus-operator CRDs, strictly."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import pytest
import yaml

from tests.charts.rendering import CRD_KINDS, CiCase, Manifest, case_manifests, ci_cases

CASES_WITH_CRS = [
    case for case in ci_cases() if any(obj["kind"] in CRD_KINDS for obj in case_manifests(case))
]


def strict(schema: Any) -> Any:
    """Copy of an openAPIV3Schema where unknown fields are errors (as `kubectl apply --validate=strict`)."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items()}
    open_ended = "additionalProperties" in schema or schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in schema and not open_ended:
        result["additionalProperties"] = False
    return result


@functools.cache
def crd_validator(crd_file: Path, version: str) -> jsonschema.Draft7Validator:
    crd = yaml.safe_load(crd_file.read_text())
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    schema = strict(copy.deepcopy(served[version]["schema"]["openAPIV3Schema"]))
    return jsonschema.Draft7Validator(schema)


def crd_errors(shared_dir: Path, obj: Manifest) -> list[str]:
    group, _, version = obj["apiVersion"].partition("/")
    crd_file = shared_dir / "crds" / f"{group}_{CRD_KINDS[obj['kind']]}.yaml"
    validator = crd_validator(crd_file, version)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


def test_some_cases_render_custom_resources() -> None:
    kinds = {obj["kind"] for case in CASES_WITH_CRS for obj in case_manifests(case)}
    assert set(CRD_KINDS) <= kinds


@pytest.mark.parametrize("case", CASES_WITH_CRS, ids=lambda case: case.id)
def test_custom_resources_match_upstream_crds(case: CiCase, shared_dir: Path) -> None:
    for obj in case_manifests(case):
        if obj["kind"] in CRD_KINDS:
            assert obj["apiVersion"] == "monitoring.coreos.com/v1"
            assert not crd_errors(shared_dir, obj), (obj["metadata"]["name"], crd_errors(shared_dir, obj))


def test_unknown_field_in_a_servicemonitor_is_an_error(shared_dir: Path) -> None:
    monitor = next(
        obj for case in CASES_WITH_CRS for obj in case_manifests(case) if obj["kind"] == "ServiceMonitor"
    )
    broken = copy.deepcopy(monitor)
    broken["spec"]["endpoints"][0]["scrapeIntervall"] = "30s"
    assert any("scrapeIntervall" in error for error in crd_errors(shared_dir, broken))


@pytest.mark.parametrize("case", CASES_WITH_CRS, ids=lambda case: case.id)
def test_selector_labels_reach_the_custom_resources(case: CiCase) -> None:
    # kube-prometheus-stack only picks up objects whose labels match its selectors.
    values = case.values()
    wanted = {
        "ServiceMonitor": values.get("serviceMonitor", {}).get("labels", {}),
        "PrometheusRule": values.get("rules", {}).get("labels", {"release": "kube-prometheus-stack"}),
    }
    for obj in case_manifests(case):
        if obj["kind"] in wanted:
            labels = obj["metadata"]["labels"]
            assert wanted[obj["kind"]].items() <= labels.items(), (obj["kind"], labels)
