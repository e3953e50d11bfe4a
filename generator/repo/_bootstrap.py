"""Folders ``flux bootstrap`` owns: ``clusters/<name>/flux-system/`` once it holds ``gotk-components.yaml``.

``flux bootstrap git --path=clusters/<name>`` commits ``gotk-components.yaml`` (the controllers,
the output of ``flux install --export``), ``gotk-sync.yaml`` and a ``kustomization.yaml`` listing
both into ``clusters/<name>/flux-system/``. From then on that folder is bootstrap's: a render
neither rewrites nor deletes anything in it (``RenderInputs.bootstrap_owned`` in the render layer).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

BOOTSTRAP_COMPONENTS = "gotk-components.yaml"


def flux_system_folder(cluster: str) -> str:
    """``clusters/<cluster>/flux-system``: where the Flux sync of a cluster (region or hub) lives."""
    return f"clusters/{cluster}/flux-system"


def bootstrap_owned_folders(root: Path, clusters: Iterable[str]) -> frozenset[str]:
    """The ``flux-system`` folders of ``clusters`` that ``flux bootstrap`` has committed into."""
    return frozenset(
        flux_system_folder(c)
        for c in clusters
        if (root / flux_system_folder(c) / BOOTSTRAP_COMPONENTS).is_file()
    )


def under_folders(rel: str, folders: Iterable[str]) -> bool:
    """True when the repo path ``rel`` lies inside one of ``folders``."""
    return any(rel.startswith(folder.rstrip("/") + "/") for folder in folders)
