"""Hand a new cluster to Flux: apply the fleet's ``clusters/<region>/flux-system/gotk-sync.yaml``.

The manifests (a GitRepository and a Kustomization, Flux v1 APIs) are applied with the kubernetes
client as create-or-replace; the Flux controllers and CRDs must already be on the cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from .errors import FluxSyncError

__all__ = ["FLUX_KINDS", "FluxSyncError", "FluxSyncResult", "apply_flux_sync", "parse_sync_manifests"]

# kind -> (group, version, plural) for the objects a gotk-sync.yaml holds
FLUX_KINDS: dict[str, tuple[str, str, str]] = {
    "GitRepository": ("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
}


@dataclass(frozen=True)
class FluxSyncResult:
    applied: tuple[str, ...]  # "Kind namespace/name (created|replaced)"


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


def apply_flux_sync(
    api_client: Any, text: str, *, progress: Callable[[str], None] | None = None
) -> FluxSyncResult:
    """Create the namespace(s) and create-or-replace each Flux object."""
    from kubernetes.client import CoreV1Api, CustomObjectsApi
    from kubernetes.client.exceptions import ApiException

    say = progress or (lambda message: None)
    docs = parse_sync_manifests(text)
    core: Any = CoreV1Api(api_client)
    custom: Any = CustomObjectsApi(api_client)
    for namespace in sorted({d["metadata"]["namespace"] for d in docs}):
        try:
            core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            say(f"namespace {namespace} created")
        except ApiException as error:
            if error.status != 409:
                raise FluxSyncError(f"cannot create namespace {namespace} (HTTP {error.status})") from None
    applied: list[str] = []
    for doc in docs:
        group, version, plural = FLUX_KINDS[doc["kind"]]
        name, namespace = doc["metadata"]["name"], doc["metadata"]["namespace"]
        label = f"{doc['kind']} {namespace}/{name}"
        try:
            custom.create_namespaced_custom_object(group, version, namespace, plural, doc)
            applied.append(f"{label} (created)")
        except ApiException as error:
            if error.status == 404:
                raise FluxSyncError(
                    f"the cluster does not serve {group}/{version} {plural}: install the Flux controllers "
                    "first (e.g. `flux install`), then run this again"
                ) from None
            if error.status != 409:
                raise FluxSyncError(f"cannot create {label} (HTTP {error.status})") from None
            current = custom.get_namespaced_custom_object(group, version, namespace, plural, name)
            body = dict(doc)
            body["metadata"] = {**doc["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}
            custom.replace_namespaced_custom_object(group, version, namespace, plural, name, body)
            applied.append(f"{label} (replaced)")
        say(applied[-1])
    return FluxSyncResult(tuple(applied))
