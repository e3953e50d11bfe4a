"""A small HTTPS Kubernetes API per region, speaking exactly the paths ``kubevc-gen status`` uses.

One :class:`RegionApi` per region (its own port, like a real edge cluster), TLS with a test CA
(``tests.nodeprep.kubeapi.make_pki``: a self-signed CA made with ``cryptography``), bearer-token
auth. Paths served (anything else is a 404 naming the path, so a new call shows up as a failure):

* ``GET /version``, ``GET /api/v1/nodes``
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

import base64
import copy
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from ..nodeprep.kubeapi import Pki

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


def node(name: str, arch: str, ready: bool = True, pressure: str | None = None) -> dict[str, Any]:
    conditions = [
        {"type": t, "status": "True" if t == pressure else "False", "reason": f"KubeletHas{t}"}
        for t in ("MemoryPressure", "DiskPressure", "PIDPressure")
    ]
    conditions.append({"type": "Ready", "status": "True" if ready else "Unknown", "reason": "KubeletReady"})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/arch": arch, "kubernetes.io/os": "linux"}},
        "status": {
            "conditions": conditions,
            "nodeInfo": {"architecture": arch, "kubeletVersion": "v1.32.5+k3s1", "operatingSystem": "linux"},
        },
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
class Request:
    method: str
    path: str
    content_type: str | None
    body: Any


@dataclass
class RegionState:
    token: str
    mode: str = "healthy"
    version: str = "v1.32.5+k3s1"
    nodes: list[dict[str, Any]] = field(default_factory=list)
    gitrepositories: dict[str, dict[str, Any]] = field(default_factory=dict)
    kustomizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    helmreleases: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    handle_delay: float = 0.0  # seconds until a requested reconcile shows as handled
    pending: dict[str, tuple[float, str]] = field(default_factory=dict)  # "<plural>/<name>" -> (due, token)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self, objects: dict[str, Any]) -> None:
        for key, value in objects.items():
            setattr(self, key, copy.deepcopy(value))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "message": message,
        "code": code,
    }


class _Handler(BaseHTTPRequestHandler):
    server: RegionApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self, path: str) -> None:
        self._send(
            404, _status(404, "NotFound", f"{self.command} {path} is not part of this contract server")
        )

    def _route(self) -> None:
        state = self.server.state
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query)
        body: Any = None
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            body = json.loads(self.rfile.read(length))
        with state.lock:
            state.requests.append(Request(self.command, self.path, self.headers.get("Content-Type"), body))
        if state.mode == "slow":
            self.server.closing.wait(60)  # never answers within any client timeout
            return
        if self.headers.get("Authorization") != f"Bearer {state.token}" or state.mode == "unauthorized":
            self._send(401, _status(401, "Unauthorized", "Unauthorized"))
            return
        if path in ("/version", "/version/") and self.command == "GET":  # the client asks /version/
            self._send(
                200, {"major": "1", "minor": "32", "gitVersion": state.version, "platform": "linux/arm64"}
            )
            return
        if state.mode == "forbidden":
            self._send(
                403,
                _status(403, "Forbidden", f'User "viewer" cannot access {path}: RBAC: access denied'),
            )
            return
        if state.mode == "no-flux" and path.startswith(FLUX_PREFIXES):
            self._send(404, _status(404, "NotFound", "the server could not find the requested resource"))
            return
        with state.lock:
            self._flux_progress(state)
            if self.command == "GET":
                self._get(state, path, query)
            elif self.command == "PATCH":
                self._patch(state, path, body)
            else:
                self._not_found(path)

    def _flux_progress(self, state: RegionState) -> None:
        now = time.monotonic()
        for key, (due, token) in list(state.pending.items()):
            if now >= due:
                plural, name = key.split("/", 1)
                store = state.gitrepositories if plural == "gitrepositories" else state.kustomizations
                obj = store[name]
                obj.setdefault("status", {})["lastHandledReconcileAt"] = token
                del state.pending[key]

    def _get(self, state: RegionState, path: str, query: dict[str, list[str]]) -> None:
        lists: dict[str, tuple[str, list[dict[str, Any]]]] = {
            "/api/v1/nodes": ("NodeList", state.nodes),
            SOURCE: ("GitRepositoryList", list(state.gitrepositories.values())),
            KUSTOMIZE: ("KustomizationList", list(state.kustomizations.values())),
            HELM: ("HelmReleaseList", state.helmreleases),
        }
        if path in lists:
            kind, items = lists[path]
            self._send(200, {"apiVersion": "v1", "kind": kind, "metadata": {}, "items": items})
            return
        for prefix, store in ((SOURCE + "/", state.gitrepositories), (KUSTOMIZE + "/", state.kustomizations)):
            if path.startswith(prefix):
                name = path[len(prefix) :]
                if name in store:
                    self._send(200, store[name])
                else:
                    self._send(404, _status(404, "NotFound", f'"{name}" not found'))
                return
        if path.startswith("/apis/apps/v1/namespaces/") and path.endswith("/deployments"):
            namespace = path.split("/")[5]
            selector = dict(
                part.split("=", 1)
                for s in query.get("labelSelector", [])
                for part in s.split(",")
                if "=" in part
            )
            items = [
                d
                for d in state.deployments
                if d["metadata"]["namespace"] == namespace
                and all(d["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
            ]
            self._send(
                200, {"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {}, "items": items}
            )
            return
        self._not_found(path)

    def _patch(self, state: RegionState, path: str, body: Any) -> None:
        if self.headers.get("Content-Type") != "application/merge-patch+json":
            self._send(415, _status(415, "UnsupportedMediaType", "this contract accepts merge-patch only"))
            return
        for prefix, plural, store in (
            (SOURCE + "/", "gitrepositories", state.gitrepositories),
            (KUSTOMIZE + "/", "kustomizations", state.kustomizations),
        ):
            if path.startswith(prefix):
                name = path[len(prefix) :]
                if name not in store:
                    self._send(404, _status(404, "NotFound", f'"{name}" not found'))
                    return
                obj = merge_patch(store[name], body)
                token = (obj["metadata"].get("annotations") or {}).get(REQUESTED_AT)
                if token and token != (obj.get("status") or {}).get("lastHandledReconcileAt"):
                    state.pending[f"{plural}/{name}"] = (time.monotonic() + state.handle_delay, token)
                store[name] = obj
                self._send(200, obj)
                return
        self._not_found(path)

    def do_GET(self) -> None:
        self._route()

    def do_PATCH(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def do_DELETE(self) -> None:
        self._route()


class RegionApi(ThreadingHTTPServer):
    """One region's API server on 127.0.0.1 (a random port), TLS with the test CA."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, pki: Pki, state: RegionState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.closing = threading.Event()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server_cert, pki.server_key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"

    def start(self) -> RegionApi:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()

    def patches(self) -> list[Request]:
        with self.state.lock:
            return [r for r in self.state.requests if r.method == "PATCH"]


def write_kubeconfig(path: Path, ca_pem: bytes, contexts: dict[str, tuple[str, str]]) -> Path:
    """A kubeconfig with one context per region: ``{context: (server url, bearer token)}``."""
    ca = base64.b64encode(ca_pem).decode()
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": n, "cluster": {"server": url, "certificate-authority-data": ca}}
            for n, (url, _) in contexts.items()
        ],
        "users": [{"name": f"{n}-admin", "user": {"token": token}} for n, (_, token) in contexts.items()],
        "contexts": [{"name": n, "context": {"cluster": n, "user": f"{n}-admin"}} for n in contexts],
        "current-context": next(iter(contexts)),
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


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
