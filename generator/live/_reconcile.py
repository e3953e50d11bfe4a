"""Asking Flux to act now: reconcile requests and live suspend/resume (merge-patches on Flux objects)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import RegionFault
from ._kube import FLUX_NS, KUSTOMIZE, SOURCE, SYNC_NAME, KubeApi, condition, shorten

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


def requested_at_now() -> str:
    """The annotation value, as ``flux reconcile`` writes it (RFC 3339 with nanoseconds, UTC)."""
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond * 1000:09d}Z"


def reconcile_patch(token: str) -> dict[str, Any]:
    return {"metadata": {"annotations": {REQUESTED_AT: token}}}


@dataclass(frozen=True)
class ReconcileEvent:
    """One line of ``reconcile`` progress for a region."""

    region: str
    kind: str
    name: str
    state: Literal["requested", "ready", "failed", "skipped", "timeout"]
    detail: str = ""


def _is_handled(obj: dict[str, Any], token: str) -> bool:
    status = obj.get("status") or {}
    meta = obj.get("metadata") or {}
    if status.get("lastHandledReconcileAt") != token:
        return False
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    return generation is None or observed is None or int(observed) >= int(generation)


def reconcile_region(
    api: KubeApi,
    region: str,
    wait: bool,
    timeout: float,
    emit: Callable[[ReconcileEvent], None],
    poll_interval: float = 1.0,
    token: str | None = None,
) -> bool:
    """Request a reconcile of the GitRepository then every Kustomization; with ``wait`` follow them.

    Returns True when every requested object became Ready (or, without ``wait``, was requested).
    Suspended Kustomizations are skipped (Flux ignores requests for them), as ``flux reconcile`` does.
    """
    token = token or requested_at_now()
    body = reconcile_patch(token)
    targets: list[tuple[tuple[str, str, str], str, str]] = []
    try:
        repo = api.flux_get(SOURCE, SYNC_NAME)
    except RegionFault as fault:
        if fault.status == 404:
            raise RegionFault(
                f"no GitRepository {FLUX_NS}/{SYNC_NAME} (Flux not installed or not bootstrapped)",
                unreachable=False,
            ) from None
        raise
    if (repo.get("spec") or {}).get("suspend"):
        emit(ReconcileEvent(region, "GitRepository", SYNC_NAME, "skipped", "suspended"))
    else:
        api.flux_merge_patch(SOURCE, SYNC_NAME, body)
        emit(ReconcileEvent(region, "GitRepository", SYNC_NAME, "requested", token))
        targets.append((SOURCE, "GitRepository", SYNC_NAME))
    kustomizations = sorted(
        api.flux_list(KUSTOMIZE),
        key=lambda o: (str(o["metadata"].get("name")) != SYNC_NAME, str(o["metadata"].get("name"))),
    )
    for obj in kustomizations:
        name = str(obj["metadata"]["name"])
        if (obj.get("spec") or {}).get("suspend"):
            emit(ReconcileEvent(region, "Kustomization", name, "skipped", "suspended"))
            continue
        api.flux_merge_patch(KUSTOMIZE, name, body)
        emit(ReconcileEvent(region, "Kustomization", name, "requested", token))
        targets.append((KUSTOMIZE, "Kustomization", name))
    if not wait:
        return True
    pending = list(targets)
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    ok = True
    while pending:
        for item in list(pending):
            kind_api, kind, name = item
            obj = api.flux_get(kind_api, name)
            ready = condition(obj)
            last[name] = ": ".join(
                p for p in (str(ready.get("reason", "")), str(ready.get("message", ""))) if p
            )
            if not _is_handled(obj, token):
                continue
            if ready.get("status") == "True":
                revision = ((obj.get("status") or {}).get("artifact") or {}).get("revision") or (
                    obj.get("status") or {}
                ).get("lastAppliedRevision", "")
                emit(ReconcileEvent(region, kind, name, "ready", str(revision or "")))
                pending.remove(item)
            elif ready.get("status") == "False" and ready.get("reason") not in (
                "Progressing",
                "DependencyNotReady",
            ):
                emit(ReconcileEvent(region, kind, name, "failed", shorten(last[name])))
                pending.remove(item)
                ok = False
        if not pending:
            break
        if time.monotonic() >= deadline:
            for _, kind, name in pending:
                emit(ReconcileEvent(region, kind, name, "timeout", shorten(last.get(name, ""))))
            return False
        time.sleep(min(poll_interval, max(0.0, deadline - time.monotonic())))
    return ok


def set_live_suspend(api: KubeApi, suspend: bool) -> list[str]:
    """Merge-patch ``spec.suspend`` on every Kustomization of the region except the flux-system sync.

    The sync Kustomization stays live so that the git commit (resume) still reaches the region.
    Resuming also requests a reconcile, as ``flux resume`` does. Returns the patched names.
    """
    patched: list[str] = []
    for obj in api.flux_list(KUSTOMIZE):
        name = str(obj["metadata"]["name"])
        if name == SYNC_NAME:
            continue
        body: dict[str, Any] = {"spec": {"suspend": suspend}}
        if not suspend:
            body["metadata"] = {"annotations": {REQUESTED_AT: requested_at_now()}}
        api.flux_merge_patch(KUSTOMIZE, name, body)
        patched.append(name)
    return patched
