"""Workflows that change one region's spec: ``node add``, ``suspend`` and ``resume`` (git side)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..errors import SpecError
from ..render import plan_with_regions
from ..repo import ChangeOptions, ChangeResult, Fleet, apply_change, format_validation_error
from ..spec import RegionSpec


def add_node(
    fleet: Fleet, spec: RegionSpec, node_data: dict[str, Any], options: ChangeOptions
) -> ChangeResult:
    """``node add``: ``node_data`` (camelCase keys) appended to the region's nodes, one commit."""
    region = spec.name
    data = spec.to_yaml_data()
    data.setdefault("nodes", []).append(node_data)
    try:
        updated = RegionSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, f"regions/{region}/region.yaml")) from None
    change = plan_with_regions(
        fleet, [updated], f"node add {region} {node_data['host']} ({node_data['role']})"
    )
    return apply_change(fleet, change, options)


def set_suspended(
    fleet: Fleet, region: str, suspend: bool, options: ChangeOptions
) -> tuple[RegionSpec, ChangeResult]:
    """``suspend``/``resume`` in git: ``suspended`` in region.yaml and the re-rendered Kustomizations."""
    if region not in fleet.region_names():
        raise SpecError(f"region {region!r} not found (no regions/{region}/region.yaml)")
    spec = fleet.load(region)
    updated = RegionSpec.model_validate({**spec.to_yaml_data(), "suspended": suspend})
    message = (
        f"suspend {region}: Flux Kustomizations suspended (maintenance window)"
        if suspend
        else f"resume {region}: Flux Kustomizations resumed"
    )
    change = plan_with_regions(fleet, [updated], message)
    return spec, apply_change(fleet, change, options)


def record_inventory(
    fleet: Fleet, spec: RegionSpec, inventories: dict[str, dict[str, Any]], options: ChangeOptions
) -> ChangeResult:
    """``node prepare``: each prepared node's ``inventory`` (camelCase data by host), one commit
    with the re-render it causes (device plugins follow the inventory); nothing when unchanged."""
    region = spec.name
    data = spec.to_yaml_data()
    for node in data.get("nodes", []):
        if node["host"] in inventories:
            node["inventory"] = inventories[node["host"]]
    try:
        updated = RegionSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, f"regions/{region}/region.yaml")) from None
    hosts = ", ".join(sorted(inventories))
    change = plan_with_regions(fleet, [updated], f"node prepare {region}: inventory of {hosts}")
    return apply_change(fleet, change, options)
