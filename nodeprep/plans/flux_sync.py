"""The Flux manifests ``cluster init --flux-sync`` applies, parsed and checked before any API call.

The sync manifests (``clusters/<region>/flux-system/gotk-sync.yaml``): a GitRepository and a
Kustomization, Flux v1 APIs. The controllers (``flux install --export``): the kinds of
:data:`MANIFEST_KINDS`, with at least one CustomResourceDefinition. One YAML reader for both.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import FluxSyncError

__all__ = ["FLUX_KINDS", "MANIFEST_KINDS", "parse_flux_manifests", "parse_sync_manifests"]

# kind -> (group, version, plural) for the objects a gotk-sync.yaml holds
FLUX_KINDS: dict[str, tuple[str, str, str]] = {
    "GitRepository": ("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
}


# kind -> (API path prefix, plural, namespaced) for what `flux install --export` prints
MANIFEST_KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("/api/v1", "namespaces", False),
    "CustomResourceDefinition": ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Service": ("/api/v1", "services", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "ResourceQuota": ("/api/v1", "resourcequotas", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies", True),
}


def _load_docs(text: str, what: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of ``text``, each a mapping (FluxSyncError naming ``what``)."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as exc:
        raise FluxSyncError(f"the {what} are not YAML: {exc}") from None
    if not docs or not all(isinstance(d, dict) for d in docs):
        raise FluxSyncError(f"the {what} are empty or not Kubernetes objects")
    return docs


def parse_flux_manifests(text: str) -> list[dict[str, Any]]:
    """``flux install --export``'s objects; FluxSyncError when it holds no CRD."""
    docs = _load_docs(text, "Flux manifests")
    if not any(d.get("kind") == "CustomResourceDefinition" for d in docs):
        raise FluxSyncError(
            "the Flux manifests hold no CustomResourceDefinition (not `flux install --export`?)"
        )
    return docs


def parse_sync_manifests(text: str) -> list[dict[str, Any]]:
    docs = _load_docs(text, "Flux sync manifests")
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
    return docs
