"""``infrastructure/``: the shared kube-prometheus-stack (controllers) and the kubevc namespace (configs)."""

from __future__ import annotations

from typing import Any

from ..spec import FleetConfig, deep_merge
from ._alertmanager import Routed, alertmanager_config
from ._common import controllers_folder, generated, kustomization, namespace

# Values of kube-prometheus-stack; every key exists in the chart's own values.yaml (tested).
KPS_VALUES: dict[str, Any] = {
    "crds": {"enabled": True},
    "defaultRules": {"create": True},
    "alertmanager": {
        "enabled": True,
        "alertmanagerSpec": {
            "retention": "120h",
            "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        },
    },
    "grafana": {
        "enabled": True,
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard", "searchNamespace": "ALL"}},
    },
    # Requests and limits on every pod (docs/monitoring.md sums them; render/_hub.py uses the same numbers).
    "prometheusOperator": {
        "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
    },
    "kube-state-metrics": {
        "resources": {"requests": {"cpu": "10m", "memory": "48Mi"}, "limits": {"memory": "96Mi"}}
    },
    "prometheus-node-exporter": {
        "resources": {"requests": {"cpu": "10m", "memory": "24Mi"}, "limits": {"memory": "48Mi"}}
    },
    "prometheus": {
        "prometheusSpec": {
            "retention": "7d",
            "retentionSize": "8GB",
            "serviceMonitorSelectorNilUsesHelmValues": False,
            "podMonitorSelectorNilUsesHelmValues": False,
            "ruleSelectorNilUsesHelmValues": False,
            "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "1536Mi"}},
        }
    },
    # Edge distributions (k3s, single-node kubeadm) do not expose these components' metrics.
    "kubeEtcd": {"enabled": False},
    "kubeControllerManager": {"enabled": False},
    "kubeScheduler": {"enabled": False},
    "kubeProxy": {"enabled": False},
}


def infrastructure_files(cfg: FleetConfig) -> dict[str, bytes]:
    # the shared stack's Alertmanager: the fleet's targets (each region has their Secrets)
    fleet_targets = [Routed(t, t.name, "kubevc-fleet.yaml") for t in cfg.notifications]
    values = deep_merge(KPS_VALUES, alertmanager_config(fleet_targets).values())
    files = controllers_folder("infrastructure/controllers", values)
    files["infrastructure/configs/kustomization.yaml"] = generated(kustomization(["namespaces.yaml"]))
    files["infrastructure/configs/namespaces.yaml"] = generated(namespace(cfg.namespace, "baseline"))
    return files
