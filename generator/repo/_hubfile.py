"""``hub/hub.yaml`` on disk, and the operator's encrypted remote-write credentials next to the tree."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from ..errors import SpecError, YamlError
from ..spec import HUB_FILE, HubSpec, RegionSpec
from . import _yamlio as yamlio
from ._bounded import read_yaml_file
from ._fleet import Fleet, merge_into
from ._problems import format_validation_error

HUB_HEADER = (
    "Monitoring hub: the one cluster every region remote-writes its metrics to.\n"
    "Edit it by hand or with `kubevc-gen hub set`, then run `kubevc-gen render`."
)


def parse_hub(text: str, filename: str = HUB_FILE) -> HubSpec:
    try:
        raw = yamlio.load_roundtrip(text, filename)
    except YamlError as exc:
        raise SpecError(str(exc)) from None
    if not isinstance(raw, dict):
        raise SpecError(f"{filename}:1: the hub file must be a mapping of keys to values")
    try:
        return HubSpec.model_validate(yamlio.to_plain(raw))
    except ValidationError as exc:
        problems = format_validation_error(exc, filename, raw)
        raise SpecError([p.replace("region spec", "hub spec") for p in problems]) from None


def load_hub(root: Path) -> HubSpec | None:
    """The hub of the fleet at ``root``, or None when there is none."""
    path = root / HUB_FILE
    if not path.is_file():
        return None
    try:
        text = read_yaml_file(path, HUB_FILE)
    except YamlError as exc:
        raise SpecError(str(exc)) from None
    return parse_hub(text)


def hub_to_yaml(spec: HubSpec, previous_text: str | None = None) -> str:
    """Serialise ``spec``; comments of ``previous_text`` on keys that stay are kept."""
    data = spec.to_yaml_data()
    if previous_text is None:
        return yamlio.dump_roundtrip(yamlio.load_roundtrip(yamlio.dump_generated(data, HUB_HEADER)))
    doc = yamlio.load_roundtrip(previous_text, HUB_FILE)
    return yamlio.dump_roundtrip(merge_into(doc, data))


def sops_files(root: Path, folder: str) -> list[str]:
    """The operator's SOPS-encrypted files in ``folder`` (kubevc-gen lists them, never writes them)."""
    base = root / folder
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.glob("*.sops.yaml") if p.is_file())


def missing_credentials(fleet: Fleet, regions: Sequence[RegionSpec]) -> list[str]:
    """Agent folders with no SOPS-encrypted credentials file yet (remote write will be refused)."""
    return [
        f"infrastructure/agents/{r.name}/"
        for r in regions
        if r.monitoring and not sops_files(fleet.root, f"infrastructure/agents/{r.name}")
    ]


def hub_notes(fleet: Fleet) -> list[tuple[str, str]]:
    """(folder, problem) for every agent folder without encrypted credentials (``validate`` findings)."""
    hub = load_hub(fleet.root)
    if hub is None:
        return []
    try:
        regions = fleet.load_all()
    except SpecError:
        return []
    return [
        (
            folder,
            f"no *.sops.yaml with Secret {hub.credentials_secret!r} yet: this region's remote write is "
            "refused; run `kubevc-gen hub set --remote-write-username USER "
            "--remote-write-password-file FILE`",
        )
        for folder in missing_credentials(fleet, regions)
    ]
