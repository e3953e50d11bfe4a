"""Merge a cluster's admin kubeconfig into the operator's kubeconfig under the region's name.

Pure functions over parsed YAML plus one atomic, mode-0600 write. Nothing here prints or logs
credentials: summaries name clusters, users and contexts only.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import KubeconfigError

__all__ = [
    "KubeconfigError",
    "MergeResult",
    "default_kubeconfig_path",
    "merge_kubeconfig",
    "merge_kubeconfig_file",
    "region_kubeconfig",
]


@dataclass(frozen=True)
class MergeResult:
    context: str
    cluster: str
    user: str
    server: str
    replaced: bool  # an entry with the region's name existed and was replaced
    current_context: str | None


def default_kubeconfig_path() -> Path:
    """The operator's kubeconfig: the first entry of $KUBECONFIG, else ~/.kube/config."""
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), None)
    return Path(first) if first else Path.home() / ".kube" / "config"


def _load(text: str, what: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as error:
        raise KubeconfigError(f"{what} is not valid YAML: {error.__class__.__name__}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise KubeconfigError(f"{what} is not a kubeconfig mapping")
    return data


def _named(items: Any, what: str) -> list[dict[str, Any]]:
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) and "name" in i for i in items):
        raise KubeconfigError(f"{what} must be a list of named entries")
    return items


def region_kubeconfig(admin_text: str, region: str, server: str) -> dict[str, Any]:
    """Rename the admin kubeconfig's single cluster/user/context to the region and set its server.

    k3s names everything ``default`` and kubeadm uses ``kubernetes`` / ``kubernetes-admin``; both
    point at a node-local address, which is replaced by the region's reachable API endpoint.
    """
    data = _load(admin_text, "the cluster's admin kubeconfig")
    clusters = _named(data.get("clusters"), "clusters")
    users = _named(data.get("users"), "users")
    contexts = _named(data.get("contexts"), "contexts")
    if len(clusters) != 1 or len(users) != 1:
        raise KubeconfigError(
            f"the admin kubeconfig must hold exactly one cluster and one user "
            f"(found {len(clusters)} and {len(users)})"
        )
    if len(contexts) > 1:
        raise KubeconfigError(f"the admin kubeconfig holds {len(contexts)} contexts; expected one")
    cluster = dict(clusters[0].get("cluster") or {})
    if not cluster.get("certificate-authority-data") and not cluster.get("certificate-authority"):
        raise KubeconfigError("the admin kubeconfig's cluster has no certificate authority")
    cluster["server"] = server
    user_name = f"{region}-admin"
    context: dict[str, Any] = dict(contexts[0].get("context") or {}) if contexts else {}
    context.update({"cluster": region, "user": user_name})
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": region, "cluster": cluster}],
        "users": [{"name": user_name, "user": dict(users[0].get("user") or {})}],
        "contexts": [{"name": region, "context": context}],
        "current-context": region,
    }


def _replace(entries: list[dict[str, Any]], new: dict[str, Any]) -> bool:
    for index, entry in enumerate(entries):
        if entry.get("name") == new["name"]:
            entries[index] = new
            return True
    entries.append(new)
    return False


def merge_kubeconfig(
    operator_text: str | None, admin_text: str, region: str, server: str
) -> tuple[dict[str, Any], MergeResult]:
    """Return the operator's kubeconfig with the region's cluster/user/context added or replaced.

    Other clusters, users and contexts are kept untouched; ``current-context`` is only set when the
    operator's kubeconfig has none.
    """
    incoming = region_kubeconfig(admin_text, region, server)
    merged = _load(operator_text or "", "the operator's kubeconfig")
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    merged.setdefault("preferences", {})
    replaced = False
    for key in ("clusters", "users", "contexts"):
        entries = _named(merged.get(key), key)
        merged[key] = entries
        replaced = _replace(entries, incoming[key][0]) or replaced
    if not merged.get("current-context"):
        merged["current-context"] = region
    result = MergeResult(
        context=region,
        cluster=region,
        user=incoming["users"][0]["name"],
        server=server,
        replaced=replaced,
        current_context=merged["current-context"],
    )
    return merged, result


def merge_kubeconfig_file(path: Path, admin_text: str, region: str, server: str) -> MergeResult:
    """Merge into the kubeconfig file at ``path`` (created if missing), atomically, mode 0600."""
    current = path.read_text() if path.exists() else None
    merged, result = merge_kubeconfig(current, admin_text, region, server)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp_name = tempfile.mkstemp(prefix=".kubeconfig-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump(merged, handle, default_flow_style=False, sort_keys=False)
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return result
