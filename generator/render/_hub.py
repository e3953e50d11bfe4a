"""The central monitoring hub: regions ship their metrics, one hub stores and shows them.

``hub/hub.yaml`` (a :class:`HubSpec`, written by ``kubevc-gen hub set``) records one central
cluster. When it exists, rendering changes in two places:

* **the hub** gets its own tree: ``clusters/hub/`` (Flux sync, infrastructure, apps),
  ``infrastructure/hub/controllers/`` (the full kube-prometheus-stack: Prometheus with the
  remote-write receiver behind an https Ingress, Grafana, Alertmanager) and ``apps/hub/``
  (the ``kubevc-monitoring`` chart: fleet dashboards and region-labelled alert rules);
* **every region with monitoring** gets a light stack instead of the shared full one:
  ``infrastructure/agents/<region>/`` holds a kube-prometheus-stack release in agent mode
  (scrape and forward only) that remote-writes to the hub with ``externalLabels: {region: <name>}``;
  node-exporter and kube-state-metrics stay, Grafana and Alertmanager are off, and the region no
  longer installs ``kubevc-monitoring`` (dashboards and rules live on the hub).

Without a hub nothing here runs and every region keeps its own full stack.

Remote-write credentials are never in the values: the regions' ``remoteWrite`` refers to a
Secret by name (:attr:`HubSpec.credentials_secret`, keys ``username`` and ``password``), which
``hub set --remote-write-username/--remote-write-password-file`` encrypts with SOPS into every
agent folder (``infrastructure/agents/<region>/``); the Ingress's own credentials and the hub
Alertmanager's receiver Secrets are committed SOPS-encrypted in ``infrastructure/hub/controllers/``.
The generated ``kustomization.yaml`` lists every ``*.sops.yaml`` file it finds there and Flux
decrypts them (see docs/monitoring.md).
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from ..errors import SpecError
from ..spec import (
    HUB_NAME,
    KPS_CHART,
    FleetConfig,
    HubSpec,
    RegionSpec,
    check_hub_against_regions,
    check_label_value,
    deep_merge,
    flux,
)
from ._alertmanager import hub_alertmanager_values
from ._clusters import SOPS_DECRYPTION, cluster_tree, flux_kustomization
from ._common import (
    HUB_HEADER,
    controllers_folder,
    generated,
    generated_docs,
    kustomization,
    values_configmap,
)
from ._infrastructure import KPS_VALUES
from ._region_values import region_kps_folder

TLS_SECRET = "kubevc-hub-tls"  # noqa: S105  (a Secret *name*)
KPS_RELEASE = "kube-prometheus-stack"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- values

# Requests/limits of every component (per-region full stack, agent mode, hub); docs/monitoring.md
# sums them. Each key exists in kube-prometheus-stack 88.5.3's values (tests/generator/test_kps_values.py).
OPERATOR_RESOURCES = {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
KSM_RESOURCES = {"requests": {"cpu": "10m", "memory": "48Mi"}, "limits": {"memory": "96Mi"}}
NODE_EXPORTER_RESOURCES = {"requests": {"cpu": "10m", "memory": "24Mi"}, "limits": {"memory": "48Mi"}}
AGENT_RESOURCES = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "320Mi"}}
HUB_PROMETHEUS_RESOURCES = {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}}
GRAFANA_RESOURCES = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
ALERTMANAGER_RESOURCES = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
_EDGE_OFF = {
    # Edge distributions (k3s, single-node kubeadm) do not expose these components' metrics.
    "kubeEtcd": {"enabled": False},
    "kubeControllerManager": {"enabled": False},
    "kubeScheduler": {"enabled": False},
    "kubeProxy": {"enabled": False},
}

# Everything of a region's agent-mode values except the per-region parts (externalLabels, remoteWrite).
AGENT_VALUES_BASE: dict[str, Any] = {
    "crds": {"enabled": True},
    # An agent evaluates no rules: the hub does.
    "defaultRules": {"create": False},
    "alertmanager": {"enabled": False},
    "grafana": {"enabled": False},
    "kubeStateMetrics": {"enabled": True},
    "nodeExporter": {"enabled": True},
    "prometheusOperator": {"resources": OPERATOR_RESOURCES},
    "kube-state-metrics": {"resources": KSM_RESOURCES},
    "prometheus-node-exporter": {"resources": NODE_EXPORTER_RESOURCES},
    "prometheus": {
        "agentMode": True,
        "prometheusSpec": {
            "serviceMonitorSelectorNilUsesHelmValues": False,
            "podMonitorSelectorNilUsesHelmValues": False,
            "resources": AGENT_RESOURCES,
        },
    },
    **_EDGE_OFF,
}


def remote_write_entry(hub: HubSpec) -> dict[str, Any]:
    """One prometheus-operator RemoteWriteSpec: the hub URL, credentials by Secret reference only."""
    return {
        "name": "kubevc-hub",
        "url": hub.effective_remote_write_url,
        "basicAuth": {
            "username": {"name": hub.credentials_secret, "key": "username"},
            "password": {"name": hub.credentials_secret, "key": "password"},
        },
        # Edge links drop: keep retrying, in batches small enough for a Raspberry Pi's uplink.
        "queueConfig": {"maxSamplesPerSend": 500, "batchSendDeadline": "10s", "maxBackoff": "30s"},
    }


def region_kps_values(region: RegionSpec, hub: HubSpec) -> dict[str, Any]:
    """kube-prometheus-stack values of ``region`` when the fleet has a hub (agent mode)."""
    check_label_value(region.name)
    values = copy.deepcopy(AGENT_VALUES_BASE)
    spec = values["prometheus"]["prometheusSpec"]
    spec["externalLabels"] = {"region": region.name}
    spec["remoteWrite"] = [remote_write_entry(hub)]
    return values


def hub_kps_values(hub: HubSpec) -> dict[str, Any]:
    """kube-prometheus-stack values of the hub: the full stack with the remote-write receiver."""
    ingress: dict[str, Any] = {"enabled": True, "paths": [hub.ingress_path]}
    if _is_ip(hub.ingress_host):
        # An Ingress rule cannot name an IP address: one rule for any host, the certificate has the IP SAN.
        ingress["tls"] = [{"secretName": TLS_SECRET}]
    else:
        ingress["hosts"] = [hub.ingress_host]
        ingress["tls"] = [{"secretName": TLS_SECRET, "hosts": [hub.ingress_host]}]
    if hub.ingress_class_name:
        ingress["ingressClassName"] = hub.ingress_class_name
    return {
        "crds": {"enabled": True},
        "defaultRules": {"create": True},
        "alertmanager": {
            "enabled": True,
            "alertmanagerSpec": {"retention": "120h", "resources": ALERTMANAGER_RESOURCES},
        },
        "grafana": {
            "enabled": True,
            "resources": GRAFANA_RESOURCES,
            "sidecar": {
                "dashboards": {"enabled": True, "label": "grafana_dashboard", "searchNamespace": "ALL"}
            },
        },
        "prometheusOperator": {"resources": OPERATOR_RESOURCES},
        "kube-state-metrics": {"resources": KSM_RESOURCES},
        "prometheus-node-exporter": {"resources": NODE_EXPORTER_RESOURCES},
        "prometheus": {
            "ingress": ingress,
            "prometheusSpec": {
                "enableRemoteWriteReceiver": True,
                "retention": hub.retention,
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "resources": HUB_PROMETHEUS_RESOURCES,
            },
        },
        **_EDGE_OFF,
    }


def hub_monitoring_values(regions: Sequence[RegionSpec]) -> dict[str, Any]:
    """``kubevc-monitoring`` on the hub: every dashboard, rules for every region."""
    return {
        "commonLabels": {"kubevc.io/region": HUB_NAME},
        "region": "",
        "regions": sorted(r.name for r in regions if r.monitoring),
    }


# --------------------------------------------------------------------------- footprint

_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def _mib(quantity: str) -> float:
    for suffix, factor in _UNITS.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor / 2**20
    return float(quantity) / 2**20


def _millicores(quantity: str) -> float:
    return float(quantity[:-1]) if quantity.endswith("m") else float(quantity) * 1000


def footprint(values: dict[str, Any]) -> list[tuple[str, str, float, float, float | None]]:
    """(component, kind, CPU request m, memory request MiB, memory limit MiB) per running pod.

    Read from kube-prometheus-stack values as rendered; a component without resources in the
    values has no requests (0) and no limit (None). The node-exporter runs once per node.
    """
    rows: list[tuple[str, str, float, float, float | None]] = []

    def add(name: str, kind: str, res: dict[str, Any] | None) -> None:
        res = res or {}
        req = res.get("requests") or {}
        lim = res.get("limits") or {}
        rows.append(
            (
                name,
                kind,
                _millicores(str(req.get("cpu", "0"))),
                _mib(str(req.get("memory", "0"))),
                _mib(str(lim["memory"])) if "memory" in lim else None,
            )
        )

    prom = values.get("prometheus", {})
    agent = bool(prom.get("agentMode"))
    add(
        "prometheus-agent" if agent else "prometheus",
        "per cluster",
        prom.get("prometheusSpec", {}).get("resources"),
    )
    add("prometheus-operator", "per cluster", values.get("prometheusOperator", {}).get("resources"))
    add("kube-state-metrics", "per cluster", values.get("kube-state-metrics", {}).get("resources"))
    add("node-exporter", "per node", values.get("prometheus-node-exporter", {}).get("resources"))
    if values.get("grafana", {}).get("enabled", True):
        add("grafana", "per cluster", values.get("grafana", {}).get("resources"))
    if values.get("alertmanager", {}).get("enabled", True):
        add(
            "alertmanager",
            "per cluster",
            values.get("alertmanager", {}).get("alertmanagerSpec", {}).get("resources"),
        )
    return rows


def hub_cluster_files(cfg: FleetConfig) -> dict[str, bytes]:
    controllers = flux_kustomization(
        "infra-controllers",
        f"./infrastructure/{HUB_NAME}/controllers",
        "10m0s",
        wait=True,
        decryption=SOPS_DECRYPTION,
    )
    configs = flux_kustomization(
        "infra-configs",
        "./infrastructure/configs",
        "5m0s",
        wait=True,
        dependsOn=[flux.DependsOn(name="infra-controllers")],
    )
    apps = flux_kustomization(
        "apps",
        f"./apps/{HUB_NAME}",
        "15m0s",
        interval="10m0s",
        wait=True,
        dependsOn=[flux.DependsOn(name="infra-configs")],
        decryption=SOPS_DECRYPTION,
    )
    return cluster_tree(
        f"clusters/{HUB_NAME}", cfg.git_url, cfg.branch, [controllers, configs], apps, HUB_HEADER
    )


def hub_app_files(cfg: FleetConfig, regions: Sequence[RegionSpec]) -> dict[str, bytes]:
    app = "kubevc-monitoring"
    cm = values_configmap(app, cfg.namespace, HUB_NAME, hub_monitoring_values(regions))
    return {
        f"apps/{HUB_NAME}/{app}-values.yaml": generated(cm, HUB_HEADER),
        f"apps/{HUB_NAME}/kustomization.yaml": generated(
            kustomization([f"../base/{app}", f"{app}-values.yaml"]), HUB_HEADER
        ),
    }


def agent_folder(region: RegionSpec) -> str:
    """Where ``region``'s agent-mode kube-prometheus-stack lives when the fleet has a hub."""
    return f"infrastructure/agents/{region.name}"


def hub_controllers_folder() -> str:
    return f"infrastructure/{HUB_NAME}/controllers"


def to_agent_mode(
    files: dict[str, bytes], region: RegionSpec, hub: HubSpec, sops_files: Sequence[str]
) -> None:
    """Point ``region``'s infra-controllers at its agent folder; drop its kubevc-monitoring app."""
    folder = agent_folder(region)
    infra_rel = f"clusters/{region.name}/infrastructure.yaml"
    if infra_rel in files:
        docs = [d for d in yaml.safe_load_all(files[infra_rel]) if d]
        for doc in docs:
            if doc.get("kind") == "Kustomization" and doc["metadata"]["name"] == "infra-controllers":
                doc["spec"]["path"] = f"./{folder}"
                doc["spec"]["decryption"] = {"provider": "sops", "secretRef": {"name": "sops-age"}}
        files[infra_rel] = generated_docs(docs)
    own = region_kps_folder(region)  # agent mode replaces the region's own full stack
    for rel in [r for r in files if own and r.startswith(f"{own}/")]:
        del files[rel]
    values = region_kps_values(region, hub)
    if region.values.get(KPS_CHART):
        values = deep_merge(values, region.values[KPS_CHART])
    files.update(controllers_folder(folder, values, sops_files, HUB_HEADER))
    apps = f"apps/{region.name}"
    files.pop(f"{apps}/kubevc-monitoring-values.yaml", None)
    kust_rel = f"{apps}/kustomization.yaml"
    if kust_rel in files:
        kust = yaml.safe_load(files[kust_rel])
        dropped = {"../base/kubevc-monitoring", "kubevc-monitoring-values.yaml"}
        kust["resources"] = [r for r in kust["resources"] if r not in dropped]
        files[kust_rel] = generated(kust)


def apply_hub(
    hub: HubSpec,
    cfg: FleetConfig,
    regions: Sequence[RegionSpec],
    sops_files: Mapping[str, Sequence[str]],
    files: dict[str, bytes],
) -> None:
    """Add the hub's tree to ``files`` and switch the regions with monitoring to agent mode.

    ``sops_files`` lists the operator's encrypted files by folder (hub controllers, agent folders).
    """
    problems = check_hub_against_regions(hub, regions)
    if problems:
        raise SpecError(problems)
    files.update(hub_cluster_files(cfg))
    folder = hub_controllers_folder()
    hub_sops = sops_files.get(folder, ())
    values = deep_merge(hub_kps_values(hub), hub_alertmanager_values(cfg, regions, hub_sops))
    files.update(controllers_folder(folder, values, hub_sops, HUB_HEADER))
    files.update(hub_app_files(cfg, regions))
    for region in regions:
        if region.monitoring:
            to_agent_mode(files, region, hub, sops_files.get(agent_folder(region), ()))


def footprint_markdown(region: RegionSpec, hub: HubSpec) -> str:
    """The footprint table of docs/monitoring.md (tests check the document still says this)."""

    def fmt(v: float | None) -> str:
        return "none" if v is None else f"{v:g}"

    lines = [
        "| component | runs | full stack: CPU req (m) | mem req (MiB) | mem limit (MiB) "
        "| agent mode: CPU req (m) | mem req (MiB) | mem limit (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    full = {r[0].removesuffix("-agent"): r for r in footprint(KPS_VALUES)}
    agent = {r[0].removesuffix("-agent"): r for r in footprint(region_kps_values(region, hub))}
    for name in full:
        f, a = full[name], agent.get(name)
        right = f"{fmt(a[2])} | {fmt(a[3])} | {fmt(a[4])}" if a else "off | off | off"
        label = "prometheus (agent in agent mode)" if name == "prometheus" else name
        lines.append(f"| {label} | {f[1]} | {fmt(f[2])} | {fmt(f[3])} | {fmt(f[4])} | {right} |")
    for kind in ("per cluster", "per node"):
        fs = [r for r in full.values() if r[1] == kind]
        ags = [r for r in agent.values() if r[1] == kind]
        lines.append(
            f"| **sum {kind}** | | **{sum(r[2] for r in fs):g}** | **{sum(r[3] for r in fs):g}** "
            f"| **{sum(r[4] or 0 for r in fs):g}** | **{sum(r[2] for r in ags):g}** "
            f"| **{sum(r[3] for r in ags):g}** | **{sum(r[4] or 0 for r in ags):g}** |"
        )
    return "\n".join(lines) + "\n"
