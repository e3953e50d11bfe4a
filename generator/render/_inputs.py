"""What a render depends on, as one value (:class:`RenderInputs`), and how it is read from a fleet repo."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import charts_dir
from ..repo import (
    Fleet,
    bootstrap_owned_folders,
    load_hub,
    load_profiles,
    parse_fleet_config,
    read_label_files,
    sops_files,
)
from ..spec import FLEET_MARKER, HUB_NAME, FleetConfig, HubSpec, Profile, RegionSpec
from ._charts import read_chart_files
from ._hub import agent_folder, hub_controllers_folder


class FromRepo(enum.Enum):
    """Marks an input that :func:`read_inputs` reads from the fleet repo (the default)."""

    FROM_REPO = "from-repo"


FROM_REPO = FromRepo.FROM_REPO


@dataclass(frozen=True)
class RenderInputs:
    """Everything the rendered tree is a function of; :func:`kubevc.generator.render.render_tree`
    reads nothing else (no files, no environment).

    ``labels``: model label files by path in the fleet repo (missing ones absent: reported by the
    render); ``sops_files``: the operator's ``*.sops.yaml`` names by generated folder (the hub's);
    ``charts``: the vendored chart files by path (``charts/...``);
    ``bootstrap_owned``: the ``clusters/<name>/flux-system`` folders ``flux bootstrap`` committed
    into (they hold ``gotk-components.yaml``): nothing in them is rendered.
    """

    config: FleetConfig
    regions: tuple[RegionSpec, ...]
    profiles: Mapping[str, Profile]
    charts: Mapping[str, bytes]
    hub: HubSpec | None = None
    labels: Mapping[str, bytes] = field(default_factory=dict)
    sops_files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    bootstrap_owned: frozenset[str] = frozenset()


def read_inputs(
    fleet: Fleet,
    regions: Sequence[RegionSpec],
    *,
    hub: HubSpec | FromRepo | None = FROM_REPO,
    pending: Mapping[str, bytes] | None = None,
    charts: Path | None = None,
) -> RenderInputs:
    """The inputs to render ``regions`` of ``fleet``, read from the repo and the installed package.

    ``hub``: render as if ``hub/hub.yaml`` held this spec (None: as if there were no hub);
    ``pending``: files about to be written in the same commit, read before the disk;
    ``charts``: another charts folder than the package's.
    """
    ordered = tuple(sorted(regions, key=lambda r: r.name))
    the_hub = load_hub(fleet.root) if hub is FROM_REPO else hub
    sops: dict[str, tuple[str, ...]] = {}
    if the_hub is not None:
        folders: Iterable[str] = [
            hub_controllers_folder(),
            *(agent_folder(r) for r in ordered if r.monitoring),
        ]
        # the operator's files on disk and those about to be written (`hub set` credentials)
        sops = {
            folder: tuple(
                sorted(
                    {
                        *sops_files(fleet.root, folder),
                        *(
                            rel.rsplit("/", 1)[1]
                            for rel in pending or {}
                            if rel.rsplit("/", 1)[0] == folder and rel.endswith(".sops.yaml")
                        ),
                    }
                )
            )
            for folder in folders
        }
    wanted = [m.labels_file for r in ordered for m in r.models if m.labels_file]
    return RenderInputs(
        # `image add`: the fleet config about to be written in the same commit
        config=parse_fleet_config(pending[FLEET_MARKER].decode())
        if pending and FLEET_MARKER in pending
        else fleet.config,
        regions=ordered,
        profiles=load_profiles(),
        charts=read_chart_files(charts or charts_dir()),
        hub=the_hub,
        labels=read_label_files(fleet.root, wanted, pending),
        sops_files=sops,
        bootstrap_owned=bootstrap_owned_folders(
            fleet.root, [*(r.name for r in ordered), *([HUB_NAME] if the_hub is not None else [])]
        ),
    )
