"""Every chart x every ci/*-values.yaml: Helm lint, render, strict Kubernetes schema, hardening."""

from __future__ import annotations

import helm_python
import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version

from tests.charts.hardening import is_helm_test, workload_problems
from tests.charts.rendering import (
    CRD_KINDS,
    NAMESPACE,
    WORKLOAD_KINDS,
    CiCase,
    case_manifests,
    ci_cases,
    pod_specs,
)

CASES = ci_cases()
# The newest Kubernetes schema kubernetes-validate ships (1.37 with 1.37.0 of the package).
KUBERNETES_VERSION = latest_version()
LINT_KUBE_VERSION = "1.32.0"
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)


def test_every_chart_has_several_ci_cases() -> None:
    for chart in {case.chart for case in CASES} | {
        "kubevc-serving",
        "kubevc-model-store",
        "kubevc-gateway",
        "kubevc-monitoring",
    }:
        assert sum(case.chart == chart for case in CASES) >= 2, f"{chart} needs at least two ci/*-values.yaml"


def test_schema_version_is_current() -> None:
    major, minor = (int(part) for part in KUBERNETES_VERSION.split(".")[:2])
    assert (major, minor) >= (1, 31)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_lint_reports_no_warning_or_error(case: CiCase) -> None:
    result = helm_python.lint(
        case.chart_dir, case.values(), strict=True, namespace=NAMESPACE, kube_version=LINT_KUBE_VERSION
    )
    assert result.get("total_charts_linted") == 1, result
    problems = [m for m in result.get("messages", []) if m.get("severity", 0) >= 2]
    assert not problems and not result.get("errors"), (problems, result.get("errors"))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_core_objects_pass_strict_kubernetes_schema(case: CiCase) -> None:
    objects = case_manifests(case)
    assert objects, "the chart rendered nothing"
    for obj in objects:
        if obj["kind"] in CRD_KINDS:
            continue  # checked against the prometheus-operator CRDs in test_custom_resources.py
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(part) for part in error.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} at {path}: {error.message}")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_workloads_are_hardened(case: CiCase) -> None:
    for obj in case_manifests(case):
        for pod_spec in pod_specs(obj):
            problems = workload_problems(obj["kind"], pod_spec, runs_to_completion=is_helm_test(obj))
            assert not problems, f"{obj['kind']}/{obj['metadata']['name']}: {problems}"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_objects_carry_standard_and_common_labels(case: CiCase) -> None:
    common = case.values().get("commonLabels", {})
    for obj in case_manifests(case):
        labels = obj["metadata"].get("labels", {})
        missing = [key for key in STANDARD_LABELS if key not in labels]
        wrong = {key: labels.get(key) for key, value in common.items() if labels.get(key) != value}
        assert not missing and not wrong, (
            f"{obj['kind']}/{obj['metadata']['name']}: missing {missing}, wrong {wrong}"
        )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_namespaced_objects_live_in_the_release_namespace(case: CiCase) -> None:
    # PersistentVolumes are cluster-scoped; everything else must land in the release namespace.
    for obj in case_manifests(case):
        expected = None if obj["kind"] == "PersistentVolume" else NAMESPACE
        assert obj["metadata"].get("namespace") == expected, f"{obj['kind']}/{obj['metadata']['name']}"


def test_workloads_exist_where_expected() -> None:
    # Guards the hardening test against passing vacuously.
    charts_with_pods = {
        case.chart for case in CASES for obj in case_manifests(case) if obj["kind"] in WORKLOAD_KINDS
    }
    assert {"kubevc-serving", "kubevc-gateway", "kubevc-model-store"} <= charts_with_pods
