"""``model remove`` and ``node remove``: take something out of region specs (one commit)."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import SpecError
from ..models import model_in, regions_for
from ..render import plan_with_regions
from ..repo import ChangeOptions, ChangeResult, Fleet, apply_change
from ..spec import NodeSpec, RegionSpec


def remove_model(
    fleet: Fleet, name: str, regions: Sequence[str], *, force: bool, options: ChangeOptions
) -> ChangeResult:
    """Unregister model ``name`` from ``regions`` (default: every region that has it).

    Refused, unless ``force``, where the model holds the ``stable`` version label: in that
    region the gateway's route for ``name`` (``/v1/models/<name>``, no version or label named)
    depends on that stable version and on nothing else, so its clients would get 404.
    """
    specs = regions_for(fleet, name, regions)
    updated: list[RegionSpec] = []
    problems: list[str] = []
    for spec in specs:
        model = model_in(spec, name)
        stable = model.version_labels.get("stable")
        if stable is not None and not force:
            problems.append(
                f"region {spec.name}: model {name!r} is the stable version ({stable}) the gateway's "
                f"route for {name} depends on; remove it anyway with --force"
            )
        remaining = [m for m in spec.models if m.name != name]
        updated.append(
            RegionSpec.model_validate(
                {**spec.to_yaml_data(), "models": [m.to_yaml_data() for m in remaining]}
            )
        )
    if problems:
        raise SpecError(problems)
    change = plan_with_regions(fleet, updated, f"model remove {name} from {', '.join(s.name for s in specs)}")
    # the model's label file goes when no region refers to it any more
    by_name = {s.name: s for s in fleet.load_all()} | {s.name: s for s in updated}
    still_used = {m.labels_file for s in by_name.values() for m in s.models if m.labels_file}
    for spec in specs:
        labels = model_in(spec, name).labels_file
        if labels and labels not in still_used and (fleet.root / labels).is_file():
            change.files[labels] = None
    return apply_change(fleet, change, options)


def remove_node(
    fleet: Fleet, region: str, host: str, options: ChangeOptions
) -> tuple[NodeSpec, ChangeResult]:
    """Take node ``host`` out of ``region``'s spec (the cluster is not touched), one commit."""
    if region not in fleet.region_names():
        raise SpecError(f"region {region!r} not found (no regions/{region}/region.yaml)")
    spec = fleet.load(region)
    node = next((n for n in spec.nodes if n.host == host), None)
    if node is None:
        hosts = ", ".join(n.host for n in spec.nodes) or "none"
        raise SpecError(f"region {region}: no node {host!r} (nodes: {hosts})")
    nodes = [n.to_yaml_data() for n in spec.nodes if n.host != host]
    updated = RegionSpec.model_validate({**spec.to_yaml_data(), "nodes": nodes})
    change = plan_with_regions(fleet, [updated], f"node remove {region} {host}")
    return node, apply_change(fleet, change, options)
