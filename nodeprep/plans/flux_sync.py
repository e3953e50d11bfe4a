"""The Flux sync manifests (``clusters/<region>/flux-system/gotk-sync.yaml``), parsed and checked.

A GitRepository and a Kustomization, Flux v1 APIs; anything else is refused before any API call.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import FluxSyncError

__all__ = ["FLUX_KINDS", "parse_sync_manifests"]

# kind -> (group, version, plural) for the objects a gotk-sync.yaml holds
FLUX_KINDS: dict[str, tuple[str, str, str]] = {
    "GitRepository": ("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
}


def parse_sync_manifests(text: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        kind = doc.get("kind")
        if kind not in FLUX_KINDS:
            raise FluxSyncError(f"unexpected kind {kind!r} in the Flux sync manifests")
        group, version, _ = FLUX_KINDS[kind]
        if doc.get("apiVersion") != f"{group}/{version}":
            raise FluxSyncError(
                f"{kind} has apiVersion {doc.get('apiVersion')!r}; expected {group}/{version}"
            )
        if not doc.get("metadata", {}).get("name") or not doc.get("metadata", {}).get("namespace"):
            raise FluxSyncError(f"{kind} needs metadata.name and metadata.namespace")
    if not docs:
        raise FluxSyncError("the Flux sync manifests are empty")
    return docs
