"""What makes one region's rendered values differ from another's beyond its spec's core keys:
the image each workload runs (picked from the fleet's image catalogue by the region's
architectures) and the region's own chart values (``values.<chart>`` in its region file)."""

from __future__ import annotations

from typing import Any

from ..spec import (
    KPS_CHART,
    RUNTIME_WORKLOADS,
    WORKLOAD_CHART,
    WORKLOADS,
    FleetConfig,
    RegionSpec,
    deep_merge,
    pick_image,
)
from ._alertmanager import alertmanager_config, region_routed
from ._common import controllers_folder
from ._infrastructure import KPS_VALUES
from ._notifications import region_targets


def with_region_values(
    region: RegionSpec, app: str, cfg: FleetConfig, values: dict[str, Any]
) -> dict[str, Any]:
    """``values`` of chart ``app`` plus the region's image choice and, last, its own overrides.

    A workload no image covers keeps the chart's default image; ``validate`` reports it.
    """
    result = dict(values)
    runtimes = {m.serving_runtime for m in region.models}
    for workload in WORKLOADS:
        chart, path = WORKLOAD_CHART[workload]
        if chart != app or (workload in RUNTIME_WORKLOADS and workload not in runtimes):
            continue
        image = pick_image(workload, region.architectures, cfg.images, region.images)
        if image is None:
            continue
        nested: dict[str, Any] = image.chart_values()
        for key in reversed(path):
            nested = {key: nested}
        result = deep_merge(result, nested)
    overrides = region.values.get(app)
    return deep_merge(result, overrides) if overrides else result


def region_kps_folder(region: RegionSpec) -> str | None:
    """``infrastructure/regions/<r>``, where a region with kube-prometheus-stack overrides gets its
    own release (the others share ``infrastructure/controllers``); None without overrides.

    Alertmanager receivers of the region's own notification targets count as overrides.
    """
    own_receivers = any(t.alertmanager for t in region.notifications)
    if region.monitoring and (region.values.get(KPS_CHART) or own_receivers):
        return f"infrastructure/regions/{region.name}"
    return None


def region_infrastructure_files(region: RegionSpec, cfg: FleetConfig) -> dict[str, bytes]:
    """The region's own kube-prometheus-stack folder (shared values, its Alertmanager receivers,
    its overrides), if it has one."""
    folder = region_kps_folder(region)
    if folder is None:
        return {}
    receivers = alertmanager_config(region_routed(region_targets(region, cfg), region.name)).values()
    values = deep_merge(KPS_VALUES, receivers)
    return controllers_folder(folder, deep_merge(values, region.values.get(KPS_CHART) or {}))
