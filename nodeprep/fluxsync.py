"""Hand a new cluster to Flux: apply the fleet's ``clusters/<region>/flux-system/gotk-sync.yaml``.

The sync manifests (a GitRepository and a Kustomization, Flux v1 APIs, checked by
:mod:`~kubevc.nodeprep.plans.flux_sync`) are applied through :mod:`~kubevc.nodeprep.kubeapi` with
server-side apply (field manager ``kubevc``); the Flux controllers and CRDs must already be on the
cluster, or be applied first from the output of ``flux install --export`` (:func:`apply_flux_manifests`, which
waits until the CRDs are established). :func:`apply_secret` creates the Secrets Flux needs in
flux-system: the git credentials (:func:`git_credentials_secret`, from a deploy key or a token)
and the age key SOPS files are decrypted with (:func:`age_key_secret`). Secret values are never
part of an error message or a progress line.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import kubeapi
from .errors import FluxSyncError
from .plans.flux_sync import FLUX_KINDS, MANIFEST_KINDS, parse_flux_manifests, parse_sync_manifests

__all__ = [
    "AGE_KEY_SECRET",
    "DEFAULT_CRD_TIMEOUT",
    "FLUX_KINDS",
    "FLUX_NAMESPACE",
    "GIT_SECRET",
    "MANIFEST_KINDS",
    "FluxSyncError",
    "FluxSyncResult",
    "age_key_secret",
    "apply_flux_manifests",
    "apply_flux_sync",
    "apply_secret",
    "git_credentials_secret",
    "parse_sync_manifests",
]

FLUX_NAMESPACE = "flux-system"
GIT_SECRET = "flux-system"  # the GitRepository's secretRef in gotk-sync.yaml  # noqa: S105
AGE_KEY_SECRET = "sops-age"  # the Kustomizations' decryption.secretRef  # noqa: S105
DEFAULT_CRD_TIMEOUT = 120.0  # seconds `cluster init --flux-manifests` waits for the CRDs (--crd-timeout)


@dataclass(frozen=True)
class FluxSyncResult:
    applied: tuple[str, ...]  # "Kind namespace/name (created|configured)"


def apply_flux_sync(
    api_client: Any, text: str, *, progress: Callable[[str], None] | None = None
) -> FluxSyncResult:
    """Create the namespace(s) and server-side apply each Flux object."""
    say = progress or (lambda message: None)
    docs = parse_sync_manifests(text)
    core = kubeapi.core_api(api_client)
    for namespace in sorted({d["metadata"]["namespace"] for d in docs}):
        if kubeapi.ensure_namespace(core, namespace):
            say(f"namespace {namespace} created")
    applied: list[str] = []
    for doc in docs:
        group, version, plural = FLUX_KINDS[doc["kind"]]
        outcome = kubeapi.apply_flux_object(api_client, doc, group, version, plural)
        applied.append(f"{doc['kind']} {doc['metadata']['namespace']}/{doc['metadata']['name']} ({outcome})")
        say(applied[-1])
    return FluxSyncResult(tuple(applied))


def _secret(name: str, data: dict[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": FLUX_NAMESPACE},
        "type": "Opaque",
        "data": {k: base64.b64encode(v).decode("ascii") for k, v in data.items()},
    }


def git_credentials_secret(
    *, ssh_key: bytes | None = None, known_hosts: bytes | None = None, token: bytes | None = None
) -> dict[str, Any]:
    """The ``flux-system`` Secret source-controller clones the fleet repo with.

    SSH (``identity`` + ``known_hosts``, both required: Flux does not trust unknown hosts) or a
    token for https (``username: git`` + ``password``); exactly one of the two.
    """
    if (ssh_key is None) == (token is None):
        raise FluxSyncError("give the git credentials as either an SSH deploy key or a token file")
    if ssh_key is not None:
        if not known_hosts or not known_hosts.strip():
            raise FluxSyncError("an SSH deploy key needs the git host's known_hosts (--git-known-hosts)")
        if b"PRIVATE KEY" not in ssh_key:
            raise FluxSyncError("the SSH deploy key file does not hold a private key")
        return _secret(GIT_SECRET, {"identity": ssh_key, "known_hosts": known_hosts})
    assert token is not None
    token = token.strip()
    if not token:
        raise FluxSyncError("the git token file is empty")
    return _secret(GIT_SECRET, {"username": b"git", "password": token})


def age_key_secret(key_file_text: bytes) -> dict[str, Any]:
    """The ``sops-age`` Secret (key ``age.agekey``) kustomize-controller decrypts SOPS files with."""
    if b"AGE-SECRET-KEY-1" not in key_file_text:
        raise FluxSyncError("the age key file holds no AGE-SECRET-KEY-1... line")
    return _secret(AGE_KEY_SECRET, {"age.agekey": key_file_text})


def apply_secret(
    api_client: Any, secret: dict[str, Any], *, progress: Callable[[str], None] | None = None
) -> str:
    """Server-side apply ``secret`` (its namespace created if needed); returns what was done."""
    say = progress or (lambda message: None)
    name, namespace = secret["metadata"]["name"], secret["metadata"]["namespace"]
    if kubeapi.ensure_namespace(kubeapi.core_api(api_client), namespace):
        say(f"namespace {namespace} created")
    done = f"Secret {namespace}/{name} ({kubeapi.apply_secret_object(api_client, secret)})"
    say(done)
    return done


def _object_path(doc: dict[str, Any]) -> tuple[str, str]:
    """(collection path, object path) of ``doc`` in the API."""
    kind = doc.get("kind")
    if kind not in MANIFEST_KINDS:
        raise FluxSyncError(
            f"unexpected kind {kind!r} in the Flux manifests (not `flux install --export` output?)"
        )
    prefix, plural, namespaced = MANIFEST_KINDS[str(kind)]
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise FluxSyncError(f"a {kind} in the Flux manifests has no metadata.name")
    if namespaced:
        collection = f"{prefix}/namespaces/{meta.get('namespace') or FLUX_NAMESPACE}/{plural}"
    else:
        collection = f"{prefix}/{plural}"
    return collection, f"{collection}/{name}"


def _established(crd: Any) -> bool:
    conditions = ((crd or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def apply_flux_manifests(
    api_client: Any,
    text: str,
    *,
    timeout: float = DEFAULT_CRD_TIMEOUT,
    poll: float = 1.0,
    progress: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> FluxSyncResult:
    """Server-side apply every object of ``flux install --export``'s output, namespaces and CRDs
    first, then wait up to ``timeout`` seconds until every CRD is established (so the sync objects
    can be applied); the error names the CRDs still missing. ``clock``/``sleep``: for tests."""
    say = progress or (lambda message: None)
    docs = parse_flux_manifests(text)
    first = ("Namespace", "CustomResourceDefinition")
    ordered = sorted(docs, key=lambda d: first.index(d["kind"]) if d.get("kind") in first else len(first))
    paths = [_object_path(d) for d in ordered]  # every kind checked before anything is applied
    applied: list[str] = []
    for doc, (_, path) in zip(ordered, paths, strict=True):
        meta = doc["metadata"]
        where = f"{meta.get('namespace') or FLUX_NAMESPACE}/" if "/namespaces/" in path else ""
        label = f"{doc['kind']} {where}{meta['name']}"
        body = doc
        if where and not meta.get("namespace"):  # the path's namespace and the body's must agree
            body = {**doc, "metadata": {**meta, "namespace": FLUX_NAMESPACE}}
        try:
            outcome = kubeapi.server_side_apply(api_client, path, body)
        except kubeapi.HttpStatusError as error:
            raise FluxSyncError(f"cannot apply {label} (HTTP {error.status})") from None
        applied.append(f"{label} ({outcome})")
        say(applied[-1])
    crds = [p for d, (_, p) in zip(ordered, paths, strict=True) if d["kind"] == "CustomResourceDefinition"]
    deadline = clock() + timeout
    waiting = list(crds)
    while waiting:
        waiting = [p for p in waiting if not _established(kubeapi.call_path(api_client, p, "GET"))]
        if not waiting:
            break
        left = deadline - clock()
        if left <= 0:
            names = ", ".join(p.rsplit("/", 1)[1] for p in waiting)
            raise FluxSyncError(f"CRDs not established after {timeout:g} s: {names}")
        sleep(min(poll, left))
    say(f"{len(crds)} Flux CRD(s) established")
    return FluxSyncResult(tuple(applied))
