"""A small HTTPS Kubernetes API per region, speaking exactly the paths ``kubevc-gen status`` uses.

One :class:`RegionApi` per region (its own port, like a real edge cluster), TLS with a test CA
(``tests.kubeapi.make_pki``: a self-signed CA made with ``cryptography``), bearer-token auth; the
server, request recording, merge patch and kubeconfig writer are the shared ones in ``tests/kubeapi.py``.
Paths served (anything else is a 404 naming the path, so a new call shows up as a failure):

* ``GET /version``, ``GET /api/v1/nodes`` (nodes may carry device-plugin resources in
  ``status.capacity``/``allocatable``), ``GET /api/v1/pods?fieldSelector=status.phase=Running``
* ``GET /apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories[/NAME]``
* ``GET /apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations[/NAME]``
* ``GET /apis/helm.toolkit.fluxcd.io/v2/helmreleases`` (all namespaces)
* ``GET /apis/apps/v1/namespaces/NS/deployments?labelSelector=...`` (equality selectors)
* ``PATCH`` of a GitRepository/Kustomization: only ``application/merge-patch+json`` (415 otherwise),
  applied as RFC 7386; a ``reconcile.fluxcd.io/requestedAt`` annotation is "handled" like the Flux
  controllers do (``status.lastHandledReconcileAt``) after ``handle_delay`` seconds.

Modes: ``healthy`` (default), ``slow`` (never answers within any client timeout), ``unauthorized``
(401 everywhere), ``forbidden`` (403 except /version, as RBAC's public-info-viewer allows),
``no-flux`` (the Flux API groups are not served: 404).

The objects are shaped like what the Flux controllers write (``status.artifact.revision`` as
``main@sha1:<sha>``, Ready conditions with reason/message, ``lastAppliedRevision``...); the
contract tests validate them against the upstream CRDs in ``../shared/crds``.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..kubeapi import (
    KubeApiServer,
    KubeHandler,
    Pki,
    Recorded,
    Request,
    Router,
    merge_patch,
    write_kubeconfig,
)

SOURCE = "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories"
KUSTOMIZE = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations"
HELM = "/apis/helm.toolkit.fluxcd.io/v2/helmreleases"
FLUX_PREFIXES = (
    "/apis/source.toolkit.fluxcd.io/",
    "/apis/kustomize.toolkit.fluxcd.io/",
    "/apis/helm.toolkit.fluxcd.io/",
)
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
T0 = "2026-11-25T10:00:00Z"


# --------------------------------------------------------------------------- object builders


def _cond(kind: str, ok: bool, reason: str, message: str, generation: int = 1) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": T0,
    }


def git_repository(sha: str, branch: str = "main", ready: bool = True) -> dict[str, Any]:
    revision = f"{branch}@sha1:{sha}"
    path = f"gitrepository/flux-system/flux-system/{sha}.tar.gz"
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "flux-system", "namespace": "flux-system", "generation": 1},
        "spec": {
            "interval": "1m0s",
            "ref": {"branch": branch},
            "secretRef": {"name": "flux-system"},
            "timeout": "60s",
            "url": "https://git.example.com/ops/fleet.git",
        },
        "status": {
            "artifact": {
                "digest": "sha256:" + "ab" * 32,
                "lastUpdateTime": T0,
                "path": path,
                "revision": revision,
                "size": 48213,
                "url": f"http://source-controller.flux-system.svc.cluster.local./{path}",
            },
            "conditions": [
                _cond("Ready", ready, "Succeeded", f"stored artifact for revision '{revision}'"),
                _cond("ArtifactInStorage", True, "Succeeded", f"stored artifact for revision '{revision}'"),
            ],
            "observedGeneration": 1,
        },
    }


def kustomization(
    name: str, path: str, revision: str, ready: bool = True, suspend: bool = False, message: str = ""
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "interval": "10m0s",
        "path": path,
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
    }
    if suspend:
        spec["suspend"] = True
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system", "generation": 1},
        "spec": spec,
        "status": {
            "conditions": [
                _cond(
                    "Ready",
                    ready,
                    "ReconciliationSucceeded" if ready else "ReconciliationFailed",
                    message or (f"Applied revision: {revision}" if ready else "kustomize build failed"),
                )
            ],
            "inventory": {"entries": []},
            "lastAppliedRevision": revision,
            "lastAttemptedRevision": revision,
            "observedGeneration": 1,
        },
    }


def helm_release(
    namespace: str, name: str, ready: bool = True, reason: str = "", message: str = ""
) -> dict[str, Any]:
    chart = f"{name}@0.1.0"
    status: dict[str, Any] = {
        "conditions": [
            _cond(
                "Ready",
                ready,
                reason or ("InstallSucceeded" if ready else "InstallFailed"),
                message or (f"Helm install succeeded for release {namespace}/{name}.v1 with chart {chart}"),
            ),
            _cond("Released", ready, reason or "InstallSucceeded", message or "Helm install succeeded"),
        ],
        "helmChart": f"flux-system/{namespace}-{name}",
        "lastAttemptedGeneration": 1,
        "lastAttemptedReleaseAction": "install",
        "lastAttemptedRevision": "0.1.0",
        "observedGeneration": 1,
        "storageNamespace": namespace,
    }
    if not ready:
        status["installFailures"] = 1
        status["failures"] = 1
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {
            "interval": "10m0s",
            "chart": {
                "spec": {
                    "chart": f"./charts/{name}",
                    "sourceRef": {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"},
                }
            },
        },
        "status": status,
    }


def node(
    name: str,
    arch: str,
    ready: bool = True,
    pressure: str | None = None,
    devices: dict[str, tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """A Node; ``devices`` maps an extended resource to (capacity, allocatable)."""
    conditions = [
        {"type": t, "status": "True" if t == pressure else "False", "reason": f"KubeletHas{t}"}
        for t in ("MemoryPressure", "DiskPressure", "PIDPressure")
    ]
    conditions.append({"type": "Ready", "status": "True" if ready else "Unknown", "reason": "KubeletReady"})
    capacity = {"cpu": "4", "memory": "3882576Ki", "pods": "110"}
    allocatable = dict(capacity)
    for resource, (total, healthy) in (devices or {}).items():
        capacity[resource] = str(total)
        allocatable[resource] = str(healthy)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/arch": arch, "kubernetes.io/os": "linux"}},
        "status": {
            "conditions": conditions,
            "nodeInfo": {"architecture": arch, "kubeletVersion": "v1.32.5+k3s1", "operatingSystem": "linux"},
            "capacity": capacity,
            "allocatable": allocatable,
        },
    }


def pod(
    namespace: str, name: str, node_name: str, limits: dict[str, str], phase: str = "Running"
) -> dict[str, Any]:
    """A pod of one container with these limits, on ``node_name``."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": "main", "image": "example/server:1", "resources": {"limits": limits}}],
        },
        "status": {"phase": phase},
    }


def deployment(namespace: str, name: str, component: str, ready: int, desired: int) -> dict[str, Any]:
    status: dict[str, Any] = {"replicas": desired, "observedGeneration": 1}
    if ready:
        status["readyReplicas"] = ready
        status["availableReplicas"] = ready
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/component": component, "app.kubernetes.io/part-of": "kubevc"},
        },
        "spec": {"replicas": desired},
        "status": status,
    }


def healthy_objects(sha: str, region: str, archs: tuple[str, ...] = ("arm64",)) -> dict[str, Any]:
    """Everything a healthy kubevc region serves, at fleet revision ``sha``."""
    revision = f"main@sha1:{sha}"
    return {
        "nodes": [node(f"{region}-{i}", arch) for i, arch in enumerate(archs)],
        "gitrepositories": {"flux-system": git_repository(sha)},
        "kustomizations": {
            k["metadata"]["name"]: k
            for k in (
                kustomization("flux-system", f"./clusters/{region}", revision),
                kustomization("infra-controllers", "./infrastructure/controllers", revision),
                kustomization("infra-configs", "./infrastructure/configs", revision),
                kustomization("apps", f"./apps/{region}", revision),
            )
        },
        "helmreleases": [
            helm_release("monitoring", "kube-prometheus-stack"),
            helm_release("kubevc", "kubevc-model-store"),
            helm_release("kubevc", "kubevc-serving"),
            helm_release("kubevc", "kubevc-gateway"),
        ],
        "deployments": [
            deployment("kubevc", "kubevc-serving", "model-server", 1, 1),
            deployment("kubevc", "kubevc-gateway", "gateway", 2, 2),
        ],
    }


# --------------------------------------------------------------------------- the server


@dataclass
class RegionState(Recorded):
    token: str
    mode: str = "healthy"
    version: str = "v1.32.5+k3s1"
    nodes: list[dict[str, Any]] = field(default_factory=list)
    gitrepositories: dict[str, dict[str, Any]] = field(default_factory=dict)
    kustomizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    helmreleases: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    handle_delay: float = 0.0  # seconds until a requested reconcile shows as handled
    pending: dict[str, tuple[float, str]] = field(default_factory=dict)  # "<plural>/<name>" -> (due, token)

    def load(self, objects: dict[str, Any]) -> None:
        for key, value in objects.items():
            setattr(self, key, copy.deepcopy(value))

    def store(self, plural: str) -> dict[str, dict[str, Any]]:
        return self.gitrepositories if plural == "gitrepositories" else self.kustomizations

    def flux_progress(self) -> None:
        """Requested reconciles whose time has come show as handled, as the Flux controllers do."""
        now = time.monotonic()
        for key, (due, token) in list(self.pending.items()):
            if now >= due:
                plural, name = key.split("/", 1)
                obj = self.store(plural)[name]
                obj.setdefault("status", {})["lastHandledReconcileAt"] = token
                del self.pending[key]


route: Router[RegionState] = Router()
Match = re.Match[str]


def _list(h: KubeHandler, kind: str, items: list[dict[str, Any]]) -> None:
    h.send(200, {"apiVersion": "v1", "kind": kind, "metadata": {}, "items": items})


@route("GET", "/api/v1/nodes")
def _nodes(h: KubeHandler, state: RegionState, _: Match) -> None:
    _list(h, "NodeList", state.nodes)


@route("GET", "/api/v1/pods")
def _pods(h: KubeHandler, state: RegionState, _: Match) -> None:
    phases = [s.split("=", 1)[1] for s in h.query.get("fieldSelector", []) if s.startswith("status.phase=")]
    _list(h, "PodList", [p for p in state.pods if not phases or p["status"]["phase"] in phases])


@route("GET", SOURCE)
def _gitrepositories(h: KubeHandler, state: RegionState, _: Match) -> None:
    _list(h, "GitRepositoryList", list(state.gitrepositories.values()))


@route("GET", KUSTOMIZE)
def _kustomizations(h: KubeHandler, state: RegionState, _: Match) -> None:
    _list(h, "KustomizationList", list(state.kustomizations.values()))


@route("GET", HELM)
def _helmreleases(h: KubeHandler, state: RegionState, _: Match) -> None:
    _list(h, "HelmReleaseList", state.helmreleases)


FLUX_OBJECT = f"(?:{re.escape(SOURCE)}|{re.escape(KUSTOMIZE)})/(.*)"


def _flux_object(state: RegionState, m: Match) -> tuple[str, str, dict[str, dict[str, Any]]]:
    """``(plural, name, store)`` for a GitRepository or Kustomization path."""
    plural = "gitrepositories" if m.group(0).startswith(SOURCE + "/") else "kustomizations"
    return plural, m.group(1), state.store(plural)


@route("GET", FLUX_OBJECT)
def _flux_get(h: KubeHandler, state: RegionState, m: Match) -> None:
    _, name, store = _flux_object(state, m)
    if name in store:
        h.send(200, store[name])
    else:
        h.fail(404, "NotFound", f'"{name}" not found')


@route("PATCH", FLUX_OBJECT)
def _flux_patch(h: KubeHandler, state: RegionState, m: Match) -> None:
    if h.headers.get("Content-Type") != "application/merge-patch+json":
        h.fail(415, "UnsupportedMediaType", "this contract accepts merge-patch only")
        return
    plural, name, store = _flux_object(state, m)
    if name not in store:
        h.fail(404, "NotFound", f'"{name}" not found')
        return
    obj = merge_patch(store[name], h.body)
    token = (obj["metadata"].get("annotations") or {}).get(REQUESTED_AT)
    if token and token != (obj.get("status") or {}).get("lastHandledReconcileAt"):
        state.pending[f"{plural}/{name}"] = (time.monotonic() + state.handle_delay, token)
    store[name] = obj
    h.send(200, obj)


@route("GET", r"/apis/apps/v1/namespaces/([^/]+)/deployments")
def _deployments(h: KubeHandler, state: RegionState, m: Match) -> None:
    namespace = m.group(1)
    selector = dict(
        part.split("=", 1) for s in h.query.get("labelSelector", []) for part in s.split(",") if "=" in part
    )
    items = [
        d
        for d in state.deployments
        if d["metadata"]["namespace"] == namespace
        and all(d["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
    ]
    h.send(200, {"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {}, "items": items})


class _Handler(KubeHandler):
    protocol_version = "HTTP/1.1"


class RegionApi(KubeApiServer[RegionState]):
    """One region's API server on 127.0.0.1 (a random port), TLS with the test CA."""

    handler = _Handler
    routes = route

    def respond(self, handler: KubeHandler, path: str) -> None:
        state = self.state
        if state.mode == "slow":
            self.closing.wait(60)  # never answers within any client timeout
            return
        if not handler.bearer(state.token):
            return
        if state.mode == "unauthorized":
            handler.fail(401, "Unauthorized", "Unauthorized")
            return
        if path in ("/version", "/version/") and handler.command == "GET":  # the client asks /version/
            handler.send(
                200, {"major": "1", "minor": "32", "gitVersion": state.version, "platform": "linux/arm64"}
            )
            return
        if state.mode == "forbidden":
            handler.fail(403, "Forbidden", f'User "viewer" cannot access {path}: RBAC: access denied')
            return
        if state.mode == "no-flux" and path.startswith(FLUX_PREFIXES):
            handler.fail(404, "NotFound", "the server could not find the requested resource")
            return
        with state.lock:
            state.flux_progress()
            super().respond(handler, path)

    def patches(self) -> list[Request]:
        with self.state.lock:
            return [r for r in self.state.requests if r.method == "PATCH"]


class Fleetside:
    """The running region servers and the kubeconfig that points at them."""

    def __init__(self, pki: Pki, directory: Path) -> None:
        self.pki = pki
        self.directory = directory
        self.servers: dict[str, RegionApi] = {}

    def add(self, context: str, objects: dict[str, Any] | None = None, mode: str = "healthy") -> RegionApi:
        state = RegionState(token=f"token-{context}-not-secret-in-tests", mode=mode)
        if objects:
            state.load(objects)
        server = RegionApi(self.pki, state).start()
        self.servers[context] = server
        return server

    def kubeconfig(self, skip: tuple[str, ...] = ()) -> Path:
        contexts = {c: (s.url, s.state.token) for c, s in self.servers.items() if c not in skip}
        return write_kubeconfig(self.directory / "kubeconfig", self.pki.ca_pem, contexts)

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
