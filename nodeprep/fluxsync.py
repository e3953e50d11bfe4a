"""Hand a new cluster to Flux: apply the fleet's ``clusters/<region>/flux-system/gotk-sync.yaml``.

The manifests (a GitRepository and a Kustomization, Flux v1 APIs, checked by
:mod:`~kubevc.nodeprep.plans.flux_sync`) are applied through :mod:`~kubevc.nodeprep.kubeapi` as
create-or-replace; the Flux controllers and CRDs must already be on the cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import kubeapi
from .errors import FluxSyncError
from .plans.flux_sync import FLUX_KINDS, parse_sync_manifests

# FLUX_KINDS and parse_sync_manifests stay importable from here, where they have always been.
__all__ = ["FLUX_KINDS", "FluxSyncError", "FluxSyncResult", "apply_flux_sync", "parse_sync_manifests"]


@dataclass(frozen=True)
class FluxSyncResult:
    applied: tuple[str, ...]  # "Kind namespace/name (created|replaced)"


def apply_flux_sync(
    api_client: Any, text: str, *, progress: Callable[[str], None] | None = None
) -> FluxSyncResult:
    """Create the namespace(s) and create-or-replace each Flux object."""
    say = progress or (lambda message: None)
    docs = parse_sync_manifests(text)
    core, custom = kubeapi.flux_apis(api_client)
    for namespace in sorted({d["metadata"]["namespace"] for d in docs}):
        if kubeapi.ensure_namespace(core, namespace):
            say(f"namespace {namespace} created")
    applied: list[str] = []
    for doc in docs:
        group, version, plural = FLUX_KINDS[doc["kind"]]
        outcome = kubeapi.apply_flux_object(custom, doc, group, version, plural)
        applied.append(f"{doc['kind']} {doc['metadata']['namespace']}/{doc['metadata']['name']} ({outcome})")
        say(applied[-1])
    return FluxSyncResult(tuple(applied))
