"""``apps/<region>/notifications.yaml``: a Flux ``Provider`` + ``Alert`` per notification target.

Targets come from the fleet config (every region) and the region spec; each Alert takes the
events of every Kustomization (flux-system) and every HelmRelease (the kubevc namespace and the
monitoring stack's) at the target's severity (``error`` by default). A target's secret part is a
region Secret in flux-system (``kubevc-gen secret set REGION NAME --namespace flux-system``): a
target naming a Secret the region does not list is refused here, naming the command.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import SpecError
from ..spec import NOTIFICATIONS_NS, FleetConfig, NotificationTarget, RegionSpec
from ._common import MONITORING_NS, generated, generated_docs

NOTIFICATION_V1BETA3 = "notification.toolkit.fluxcd.io/v1beta3"
NOTIFICATIONS_FILE = "notifications.yaml"


def region_targets(region: RegionSpec, cfg: FleetConfig) -> list[NotificationTarget]:
    """The fleet's targets, then the region's (a region target replaces a fleet one of its name)."""
    own = {t.name for t in region.notifications}
    return [*(t for t in cfg.notifications if t.name not in own), *region.notifications]


def _provider(target: NotificationTarget) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": target.type}
    if target.channel:
        spec["channel"] = target.channel
    if target.address:
        spec["address"] = target.address
    if target.secret:
        spec["secretRef"] = {"name": target.secret}
    return {
        "apiVersion": NOTIFICATION_V1BETA3,
        "kind": "Provider",
        "metadata": {"name": target.name, "namespace": NOTIFICATIONS_NS},
        "spec": spec,
    }


def _alert(target: NotificationTarget, region: RegionSpec, cfg: FleetConfig) -> dict[str, Any]:
    namespaces = sorted({cfg.namespace, *([MONITORING_NS] if region.monitoring else [])})
    sources: list[dict[str, Any]] = [{"kind": "Kustomization", "name": "*", "namespace": NOTIFICATIONS_NS}]
    sources += [{"kind": "HelmRelease", "name": "*", "namespace": ns} for ns in namespaces]
    return {
        "apiVersion": NOTIFICATION_V1BETA3,
        "kind": "Alert",
        "metadata": {"name": target.name, "namespace": NOTIFICATIONS_NS},
        "spec": {
            "providerRef": {"name": target.name},
            "eventSeverity": target.severity,
            "eventSources": sources,
            "eventMetadata": {"region": region.name},
            "summary": f"kubevc region {region.name}",
        },
    }


def add_notifications(files: dict[str, bytes], region: RegionSpec, cfg: FleetConfig) -> None:
    """Add ``apps/<region>/notifications.yaml`` to ``files`` and list it in the region's kustomization."""
    targets = region_targets(region, cfg)
    if not targets:
        return
    where = f"regions/{region.name}/region.yaml"
    for target in targets:
        if target.secret and target.secret not in region.secrets:
            raise SpecError(
                f"{where}: notification {target.name!r} needs Secret {target.secret!r} in flux-system: "
                f"`kubevc-gen secret set {region.name} {target.secret} --namespace flux-system "
                "--from-literal address=URL`"
            )
        if not (target.secret or target.address):
            raise SpecError(
                f"{where}: notification {target.name!r} ({target.type}) needs an address: "
                "set `secret` (key address) or `address`"
            )
    docs: list[dict[str, Any]] = []
    for target in targets:
        docs += [_provider(target), _alert(target, region, cfg)]
    base = f"apps/{region.name}"
    files[f"{base}/{NOTIFICATIONS_FILE}"] = generated_docs(docs)
    kust_rel = f"{base}/kustomization.yaml"
    kust = yaml.safe_load(files[kust_rel])
    kust["resources"].append(NOTIFICATIONS_FILE)
    files[kust_rel] = generated(kust)
