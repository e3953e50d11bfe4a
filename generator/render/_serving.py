"""Per-model serving: the serving chart's ``deployments`` (one per serving group) and the gateway
backends that route each model to its group's Service.

A region's models are grouped by ``servingGroup`` (unset: the model's own name); each group is one
Deployment/Service/HPA/PDB of ``kubevc-serving`` named ``kubevc-serving-<group>`` and one gateway
backend of that name. ``resources``, ``nodeSelector`` and ``tolerations`` are written for every
Deployment (empty: the chart's defaults) so placement can fill them in.
"""

from __future__ import annotations

import posixpath
from typing import Any

from ..spec import RUNTIME_GRPC_PORT, RUNTIME_PROTOCOL, ModelSpec, RegionSpec, ServingGroup, serving_groups
from ._placement import serving_placement

CANARY_LABEL = "canary"  # the version label `kubevc-gen model promote --label canary` sets
SERVING_RELEASE = "kubevc-serving"  # the HelmRelease (and so the fullname) of the serving chart
# The gateway chart's default egress ports (charts/kubevc-gateway networkPolicy.backendPorts).
GATEWAY_DEFAULT_BACKEND_PORTS = (8500, 9000)


def region_serving_groups(region: RegionSpec) -> list[ServingGroup]:
    return serving_groups(region.models, f"regions/{region.name}/region.yaml")


def service_name(group: str) -> str:
    """The Service of a serving group: ``<fullname>-<group>``, cut to 63 characters like the chart."""
    return f"{SERVING_RELEASE}-{group}"[:63].rstrip("-")


def serving_deployments(region: RegionSpec) -> list[dict[str, Any]]:
    """``deployments`` of the serving chart's values, one per serving group, in model order, each
    placed where its models can run (accelerator, memory floor: :func:`serving_placement`)."""
    deployments: list[dict[str, Any]] = []
    for group in region_serving_groups(region):
        placement = serving_placement(region, group.models)
        deployments.append(
            {
                "name": group.name,
                "runtime": group.runtime,
                "models": list(group.models),
                "resources": placement.get("resources", {}),
                "nodeSelector": placement.get("nodeSelector", {}),
                "tolerations": placement.get("tolerations", []),
            }
        )
    return deployments


def gateway_backends(region: RegionSpec) -> list[dict[str, Any]]:
    """``config.backends`` of the gateway: one per serving group, at its Service's gRPC port."""
    return [
        {
            "name": group.name,
            "protocol": RUNTIME_PROTOCOL[group.runtime],
            "address": f"{service_name(group.name)}:{RUNTIME_GRPC_PORT[group.runtime]}",
        }
        for group in region_serving_groups(region)
    ]


def gateway_backend_ports(region: RegionSpec) -> list[int] | None:
    """The gateway's egress ports when a runtime needs more than the chart's defaults; else None."""
    ports = {RUNTIME_GRPC_PORT[g.runtime] for g in region_serving_groups(region)}
    if ports <= set(GATEWAY_DEFAULT_BACKEND_PORTS):
        return None
    return sorted(ports | set(GATEWAY_DEFAULT_BACKEND_PORTS))


def gateway_route(model: ModelSpec) -> dict[str, Any]:
    """The gateway model's ``backend`` (its serving group) and, for Triton, the repository name."""
    route: dict[str, Any] = {"backend": model.group}
    folder = posixpath.basename(posixpath.normpath(model.base_path))
    if model.serving_runtime == "triton" and folder != model.name:
        route["backendModel"] = folder  # Triton names a model by its repository folder
    return route


def gateway_canary(model: ModelSpec) -> dict[str, Any]:
    """The gateway model's ``canary`` (for a model with a stable and a canary label): requests naming
    no version or label go ``canaryPercent`` % to the canary, the rest to stable. A v2 runtime
    (Triton, MLServer) has no version labels: ``versions`` says which version each label is."""
    canary: dict[str, Any] = {"label": CANARY_LABEL, "percent": model.canary_percent or 0}
    if RUNTIME_PROTOCOL[model.serving_runtime] == "v2":
        labels = model.version_labels
        canary["versions"] = {"stable": labels["stable"], CANARY_LABEL: labels[CANARY_LABEL]}
    return canary
