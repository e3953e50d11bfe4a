"""Per-region chart values (``values.<chart>`` in a region file): which charts take them, which
kube-prometheus-stack keys kubevc lets a region change, and how an override is merged. Pure."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

KPS_CHART = "kube-prometheus-stack"
# The charts a region may override values of: kubevc's own four, and the monitoring stack.
VALUES_CHARTS: tuple[str, ...] = (
    "kubevc-model-store",
    "kubevc-serving",
    "kubevc-gateway",
    "kubevc-monitoring",
    KPS_CHART,
)

# kube-prometheus-stack ships no values schema and kubevc does not vendor its values: a region may
# override only these keys (the sizing and retention kubevc itself sets). A key ending in "." is a
# free-form map (anything below it goes); the others are leaves. Each exists in the chart's own
# values.yaml of KPS_CHART_VERSION (tests/generator/test_region_values.py checks it).
KPS_ALLOWED_KEYS: tuple[str, ...] = (
    "alertmanager.enabled",
    "alertmanager.alertmanagerSpec.retention",
    "alertmanager.alertmanagerSpec.resources.",
    "alertmanager.alertmanagerSpec.storage.",
    "defaultRules.create",
    "grafana.enabled",
    "grafana.resources.",
    "grafana.persistence.",
    "kube-state-metrics.resources.",
    "prometheus-node-exporter.resources.",
    "prometheusOperator.resources.",
    "prometheus.prometheusSpec.retention",
    "prometheus.prometheusSpec.retentionSize",
    "prometheus.prometheusSpec.scrapeInterval",
    "prometheus.prometheusSpec.evaluationInterval",
    "prometheus.prometheusSpec.resources.",
    "prometheus.prometheusSpec.storageSpec.",
    "prometheus.prometheusSpec.nodeSelector.",
    "prometheus.prometheusSpec.externalLabels.",
)


def kps_key_allowed(path: str) -> bool:
    """``path`` (dotted, below ``values.kube-prometheus-stack``) is one kubevc lets a region set."""
    for key in KPS_ALLOWED_KEYS:
        if key.endswith("."):
            if path == key[:-1] or path.startswith(key):
                return True
        elif path == key:
            return True
    return False


def leaf_paths(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the leaves of a nested mapping (an empty map counts as a leaf)."""
    paths: list[str] = []
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            paths.extend(leaf_paths(value, f"{prefix}{key}."))
        else:
            paths.append(f"{prefix}{key}")
    return paths


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in (maps merge key by key; anything else, lists too, replaces)."""
    merged = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
