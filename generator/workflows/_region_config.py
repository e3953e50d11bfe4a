"""Workflows of per-region configuration: the image catalogue (``image add``) and region labels
(``region label``)."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import SpecError
from ..render import plan_render, plan_with_regions
from ..repo import ChangeOptions, ChangeResult, Fleet, add_catalogue_image, apply_change
from ..spec import FLEET_MARKER, PLATFORMS, ImageSpec, RegionSpec, parse_image_reference, parse_label_changes


def add_image(
    fleet: Fleet,
    workload: str,
    reference: str,
    platforms: Sequence[str],
    options: ChangeOptions,
    *,
    first: bool = False,
) -> ChangeResult:
    """``image add``: an image for ``workload`` in ``kubevc-fleet.yaml`` and the re-render, one commit."""
    if not platforms:
        raise SpecError(f"image add: name the platforms {reference} runs on (--platform {PLATFORMS[1]} ...)")
    unknown = [p for p in platforms if p not in PLATFORMS]
    if unknown:
        raise SpecError(f"image add: unknown platform {unknown[0]!r} (platforms: {', '.join(PLATFORMS)})")
    repository, tag, digest = parse_image_reference(reference)
    image = ImageSpec.model_validate(
        {"repository": repository, "tag": tag, "digest": digest, "platforms": list(dict.fromkeys(platforms))}
    )
    text = (fleet.root / FLEET_MARKER).read_text(encoding="utf-8")
    new = add_catalogue_image(text, workload, image, first=first).encode()
    change = plan_render(
        fleet,
        f"image add {workload} {image.reference} ({', '.join(image.platforms)})",
        pending={FLEET_MARKER: new},
    )
    change.files[FLEET_MARKER] = new
    return apply_change(fleet, change, options)


def label_regions(
    fleet: Fleet, names: Sequence[str], changes: list[str], options: ChangeOptions
) -> ChangeResult:
    """``region label``: ``k=v`` sets and ``k-`` removes labels of the regions ``names``, one commit."""
    to_set, to_remove = parse_label_changes(changes)
    updated: list[RegionSpec] = []
    for name in dict.fromkeys(names):
        if name not in fleet.region_names():
            raise SpecError(f"region {name!r} not found (no regions/{name}/region.yaml)")
        spec = fleet.load(name)
        labels = {k: v for k, v in spec.labels.items() if k not in to_remove}
        labels.update(to_set)
        if labels != spec.labels:
            updated.append(RegionSpec.model_validate({**spec.to_yaml_data(), "labels": labels}))
    if not updated:
        raise SpecError("region label: nothing to change (the labels are already so)")
    change = plan_with_regions(fleet, updated, f"region label {' '.join(names)} {' '.join(changes)}")
    return apply_change(fleet, change, options)


def set_suspended_regions(
    fleet: Fleet, names: Sequence[str], suspend: bool, options: ChangeOptions
) -> tuple[list[RegionSpec], ChangeResult]:
    """``suspend``/``resume`` of several regions (``--selector``) in git: one commit for all."""
    specs: list[RegionSpec] = []
    for name in dict.fromkeys(names):
        if name not in fleet.region_names():
            raise SpecError(f"region {name!r} not found (no regions/{name}/region.yaml)")
        specs.append(fleet.load(name))
    updated = [RegionSpec.model_validate({**s.to_yaml_data(), "suspended": suspend}) for s in specs]
    verb = "suspend" if suspend else "resume"
    what = "suspended (maintenance window)" if suspend else "resumed"
    message = f"{verb} {', '.join(s.name for s in specs)}: Flux Kustomizations {what}"
    return specs, apply_change(fleet, plan_with_regions(fleet, updated, message), options)
