"""Rendering the project's charts through the real Helm v4 SDK, shared by the chart tests."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

CHARTS_DIR = Path(__file__).resolve().parents[2] / "charts"
CHART_NAMES = ("kubevc-serving", "kubevc-model-store", "kubevc-gateway", "kubevc-monitoring")
RELEASE = "seoul"
NAMESPACE = "kubevc"
# prometheus-operator kinds are checked against their CRDs, everything else against Kubernetes.
CRD_KINDS = {"ServiceMonitor": "servicemonitors", "PrometheusRule": "prometheusrules"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}

Manifest = dict[str, Any]


@dataclass(frozen=True)
class CiCase:
    """One chart rendered with one of its ``ci/*-values.yaml`` files."""

    chart: str
    values_file: Path

    @property
    def id(self) -> str:
        return f"{self.chart}:{self.values_file.stem}"

    @property
    def chart_dir(self) -> Path:
        return CHARTS_DIR / self.chart

    def values(self) -> dict[str, Any]:
        return load_values(self.values_file)


def ci_cases() -> list[CiCase]:
    return [
        CiCase(chart, values_file)
        for chart in CHART_NAMES
        for values_file in sorted((CHARTS_DIR / chart / "ci").glob("*-values.yaml"))
    ]


def load_values(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    return loaded if isinstance(loaded, dict) else {}


def render(chart: str, values: dict[str, Any], namespace: str = NAMESPACE) -> dict[str, str]:
    """Render one chart; raises helm_python.HelmValuesError / HelmError when Helm refuses."""
    loaded = helm_python.Chart.load(str(CHARTS_DIR / chart))
    return loaded.render(values, name=RELEASE, namespace=namespace)


@functools.cache
def render_case(case: CiCase) -> dict[str, str]:
    # Cached: every test of a case reuses one render (the SDK call dominates the run time).
    return render(case.chart, case.values())


def manifests(rendered: dict[str, str]) -> list[Manifest]:
    """Every Kubernetes object in the rendered templates (NOTES.txt and empty documents left out)."""
    objects: list[Manifest] = []
    for template, text in sorted(rendered.items()):
        if not template.endswith((".yaml", ".yml")):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def case_manifests(case: CiCase) -> list[Manifest]:
    return manifests(render_case(case))


def pod_specs(obj: Manifest) -> Iterator[Manifest]:
    """The pod spec(s) inside a workload object."""
    kind = obj.get("kind")
    spec = obj.get("spec", {})
    if kind == "Pod":
        yield spec
    elif kind == "CronJob":
        yield spec["jobTemplate"]["spec"]["template"]["spec"]
    elif kind in WORKLOAD_KINDS:
        yield spec["template"]["spec"]


def containers(pod_spec: Manifest) -> list[Manifest]:
    return [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]
