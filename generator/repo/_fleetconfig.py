"""``kubevc-fleet.yaml`` edits: the image catalogue (``kubevc-gen image add``), comments kept."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..errors import SpecError, YamlError
from ..spec import FLEET_MARKER, WORKLOADS, FleetConfig, ImageSpec
from . import _yamlio as yamlio
from ._problems import format_validation_error

M = TypeVar("M", bound=BaseModel)


def parse_document(text: str, filename: str, model: type[M]) -> M:
    """Validate the YAML ``text`` of ``filename`` as ``model``; problems name the file and line."""
    try:
        raw = yamlio.load_roundtrip(text, filename)
    except YamlError as exc:
        raise SpecError(str(exc)) from None
    try:
        return model.model_validate(yamlio.to_plain(raw or {}))
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, filename, raw)) from None


def parse_fleet_config(text: str) -> FleetConfig:
    """Validate the text of ``kubevc-fleet.yaml``; problems name the file and line."""
    return parse_document(text, FLEET_MARKER, FleetConfig)


def add_catalogue_image(text: str, workload: str, image: ImageSpec, *, first: bool = False) -> str:
    """``kubevc-fleet.yaml`` text with ``image`` added to ``images.<workload>`` (last, or first).

    The same repository and tag listed again is refused: change its platforms by hand instead.
    """
    if workload not in WORKLOADS:
        raise SpecError(f"unknown workload {workload!r} (workloads: {', '.join(WORKLOADS)})")
    parse_fleet_config(text)  # start from a valid file
    doc = yamlio.load_roundtrip(text, FLEET_MARKER)
    images = doc.get("images")
    if not isinstance(images, CommentedMap):
        images = doc["images"] = CommentedMap()
    entries = images.get(workload)
    if not isinstance(entries, CommentedSeq):
        entries = images[workload] = CommentedSeq()
    for entry in entries:
        if isinstance(entry, dict) and (entry.get("repository"), entry.get("tag")) == (
            image.repository,
            image.tag,
        ):
            raise SpecError(
                f"{FLEET_MARKER}: images.{workload} already lists {image.repository}:{image.tag} "
                f"(platforms: {', '.join(entry.get('platforms') or [])})"
            )
    data = image.model_dump(by_alias=True, exclude_none=True)
    if first:
        entries.insert(0, data)
    else:
        entries.append(data)
    new = yamlio.dump_roundtrip(doc)
    parse_fleet_config(new)
    return new
