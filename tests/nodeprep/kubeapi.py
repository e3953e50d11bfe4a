"""A small HTTPS server speaking the few Kubernetes API paths the join uses, plus a test PKI.

Paths: Secret create/get/delete in kube-system, ConfigMap ``kube-public/cluster-info``, Node get,
and the Flux hand-over's objects (Flux kinds, `flux install --export` kinds, flux-system Secrets)
through server-side apply only.
It stores what it receives verbatim so tests can assert on the exact Secret the client sent.
The server, the PKI and the kubeconfig writer are the shared ones in ``tests/kubeapi.py``.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..kubeapi import KubeApiServer, KubeHandler, Pki, Recorded, Router, write_kubeconfig

BEARER = "operator-test-token-not-a-bootstrap-token"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass
class ApiState(Recorded):
    ca_pem: bytes
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)  # every Secret body received
    created_at: dict[str, dt.datetime] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    ready_nodes: set[str] = field(default_factory=set)
    ready_check: Callable[[str], bool] | None = None  # e.g. "the node-side stand-in has run"
    registered_nodes: set[str] = field(default_factory=set)
    cluster_info: bool = True
    node_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=lambda: {"default", "kube-system", "kube-public"})
    custom: dict[str, dict[str, Any]] = field(default_factory=dict)  # "<group>/<plural>/<ns>/<name>"
    served_groups: set[str] = field(default_factory=set)  # API groups with installed CRDs
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # built-in kinds by object path
    crd_gets_until_established: int = 1  # GETs of a new CRD answered before it reports Established
    crd_gets: dict[str, int] = field(default_factory=dict)


route: Router[ApiState] = Router()
Match = re.Match[str]


@route("GET", "/api/v1/namespaces/kube-public/configmaps/cluster-info")
def _cluster_info(h: KubeHandler, state: ApiState, _: Match) -> None:
    if not state.cluster_info:
        h.fail(404, "NotFound", 'configmaps "cluster-info" not found')
        return
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "",
                "cluster": {
                    "server": "https://127.0.0.1:6443",
                    "certificate-authority-data": base64.b64encode(state.ca_pem).decode(),
                },
            }
        ],
    }
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cluster-info", "namespace": "kube-public"},
        "data": {"kubeconfig": yaml.safe_dump(kubeconfig)},
    }
    h.send(200, body)


NODE = r"/api/v1/nodes/([a-z0-9.-]+)"


@route("GET", NODE)
def _node_get(h: KubeHandler, state: ApiState, node: Match) -> None:
    name = node.group(1)
    if state.ready_check is not None and state.ready_check(name):
        state.ready_nodes.add(name)
    if name not in state.registered_nodes and name not in state.ready_nodes:
        h.fail(404, "NotFound", f'nodes "{name}" not found')
        return
    ready = "True" if name in state.ready_nodes else "False"
    h.send(
        200,
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": ready}]},
        },
    )


@route("PATCH", NODE)
def _node_patch(h: KubeHandler, state: ApiState, node: Match) -> None:
    name = node.group(1)
    labels = state.node_labels.setdefault(name, {})
    labels.update(h.body.get("metadata", {}).get("labels", {}))
    h.send(200, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}})


@route("POST", "/api/v1/namespaces")
def _namespace_create(h: KubeHandler, state: ApiState, _: Match) -> None:
    name = h.body["metadata"]["name"]
    if name in state.namespaces:
        h.fail(409, "AlreadyExists", f'namespaces "{name}" already exists')
        return
    state.namespaces.add(name)
    h.send(201, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


@route("*", r"/apis/([a-z.]+\.fluxcd\.io)/(v1)/namespaces/([a-z0-9-]+)/([a-z]+)(?:/([a-z0-9.-]+))?")
def _custom(h: KubeHandler, state: ApiState, crd: Match) -> None:
    group, _, namespace, plural, name = crd.groups()
    if group not in state.served_groups:
        h.fail(404, "NotFound", "the server could not find the requested resource")
        return
    _object(h, state, state.custom, f"{group}/{plural}/{namespace}/", name, namespace)


@route("POST", "/api/v1/namespaces/kube-system/secrets")
def _secret_create(h: KubeHandler, state: ApiState, _: Match) -> None:
    body = h.body
    name = body["metadata"]["name"]
    with state.lock:
        if name in state.secrets:
            h.fail(409, "AlreadyExists", f'secrets "{name}" already exists')
            return
        state.secrets[name] = body
        state.created.append(body)
        state.created_at[name] = dt.datetime.now(dt.UTC)
    h.send(201, body)


@route("GET DELETE", r"/api/v1/namespaces/kube-system/secrets/([a-z0-9.-]+)")
def _secret(h: KubeHandler, state: ApiState, secret: Match) -> None:
    name = secret.group(1)
    with state.lock:
        found = state.secrets.get(name)
        if found is not None and h.command == "DELETE":
            del state.secrets[name]
            state.deleted.append(name)
    if found is None:
        h.fail(404, "NotFound", f'secrets "{name}" not found')
    elif h.command == "GET":
        h.send(200, found)
    else:
        h.send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})


BUILTIN = (
    r"(/api/v1|/apis/(?:apiextensions\.k8s\.io|rbac\.authorization\.k8s\.io|apps|networking\.k8s\.io)/v1)"
    r"((?:/namespaces/[a-z0-9-]+)?/(?:customresourcedefinitions|clusterroles|clusterrolebindings|roles|"
    r"rolebindings|serviceaccounts|services|configmaps|resourcequotas|deployments|networkpolicies|secrets))"
    r"(?:/([a-z0-9.-]+))?"
)


@route("GET PATCH", r"/api/v1/namespaces/([a-z0-9-]+)")
def _namespace(h: KubeHandler, state: ApiState, found: Match) -> None:
    """A Namespace applied (``flux install --export`` holds flux-system); one that exists is configured."""
    name = found.group(1)
    key = f"/api/v1/namespaces/{name}"
    if name in state.namespaces and key not in state.objects:
        meta = {"name": name, "resourceVersion": "1", "managedFields": [{"manager": "kube-apiserver"}]}
        state.objects[key] = {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
    _object(h, state, state.objects, "/api/v1/namespaces/", name, None)
    if key in state.objects:
        state.namespaces.add(name)


@route("*", BUILTIN)
def _builtin(h: KubeHandler, state: ApiState, found: Match) -> None:
    """The built-in kinds `flux install --export` holds, and flux-system Secrets."""
    prefix, collection, name = found.groups()
    namespace = re.match(r"/namespaces/([a-z0-9-]+)/", collection)
    _object(
        h, state, state.objects, f"{prefix}{collection}/", name, namespace.group(1) if namespace else None
    )


def _object(
    h: KubeHandler,
    state: ApiState,
    store: dict[str, dict[str, Any]],
    collection: str,
    name: str | None,
    namespace: str | None,
) -> None:
    """GET and server-side apply (PATCH) of one object, as the API server answers them.

    The apply contract: Content-Type ``application/apply-patch+yaml`` (else 415), a
    ``fieldManager`` (else 400), ``force=true`` to take fields another manager owns (else 409),
    the body naming the object of the path (else 400); 201 when created, 200 when configured.
    Nothing else writes here: a create (POST) or replace (PUT) is 405, as apply is the contract.
    """
    key = f"{collection}{name}"
    if name is None or h.command not in ("GET", "PATCH"):
        h.fail(405, "MethodNotAllowed", f"{h.command} {collection}: this server only applies (PATCH)")
        return
    obj = store.get(key)
    if h.command == "GET":
        if obj is None:
            h.fail(404, "NotFound", f"{key} not found")
            return
        if obj.get("kind") == "CustomResourceDefinition":
            state.crd_gets[key] = state.crd_gets.get(key, 0) + 1
            if state.crd_gets[key] > state.crd_gets_until_established:
                obj["status"] = {"conditions": [{"type": "Established", "status": "True"}]}
                state.served_groups.add(obj["spec"]["group"])
        h.send(200, obj)
        return
    if h.headers.get("Content-Type") != APPLY_PATCH:
        h.fail(415, "UnsupportedMediaType", f"the body of a server-side apply is {APPLY_PATCH}")
        return
    managers = h.query.get("fieldManager", [])
    if len(managers) != 1 or not managers[0]:
        h.fail(400, "BadRequest", "fieldManager is required for apply requests")
        return
    body = h.body
    meta = (body.get("metadata") or {}) if isinstance(body, dict) else {}
    if meta.get("name") != name or (namespace is not None and meta.get("namespace") != namespace):
        h.fail(400, "BadRequest", "the body does not name the object of the path")
        return
    owner = ((obj or {}).get("metadata") or {}).get("managedFields", [{}])[0].get("manager")
    if obj is not None and owner != managers[0] and h.query.get("force") != ["true"]:
        h.fail(409, "Conflict", f"Apply failed with 1 conflict: fields are managed by {owner!r}")
        return
    version = int((obj or {"metadata": {"resourceVersion": "0"}})["metadata"]["resourceVersion"]) + 1
    meta["resourceVersion"] = str(version)
    meta["managedFields"] = [{"manager": managers[0], "operation": "Apply"}]
    if obj is not None and "status" in obj:
        body["status"] = obj["status"]  # apply does not touch the status subresource
    store[key] = body
    h.send(201 if obj is None else 200, body)


class FakeKubeApi(KubeApiServer[ApiState]):
    """The cluster the operator's kubeconfig points at: every request needs :data:`BEARER`."""

    routes = route

    def __init__(self, pki: Pki) -> None:
        super().__init__(pki, ApiState(ca_pem=pki.ca_pem))

    def respond(self, handler: KubeHandler, path: str) -> None:
        if handler.bearer(BEARER):
            super().respond(handler, path)


def operator_kubeconfig(path: Path, server: str, ca_pem: bytes, context: str) -> Path:
    return write_kubeconfig(path, ca_pem, {context: (server, BEARER)})
