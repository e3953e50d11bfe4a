"""A small HTTPS server speaking the few Kubernetes API paths the join uses, plus a test PKI.

Paths: Secret create/get/delete in kube-system, ConfigMap ``kube-public/cluster-info``, Node get.
It stores what it receives verbatim so tests can assert on the exact Secret the client sent.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

BEARER = "operator-test-token-not-a-bootstrap-token"


@dataclass
class Pki:
    ca_pem: bytes
    ca_path: Path
    server_cert: Path
    server_key: Path


def make_pki(directory: Path) -> Pki:
    """A cluster CA (as kubeadm/k3s would have) and a serving certificate for 127.0.0.1."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    (directory / "ca.crt").write_bytes(ca_pem)
    (directory / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Pki(ca_pem, directory / "ca.crt", directory / "server.crt", directory / "server.key")


@dataclass
class ApiState:
    ca_pem: bytes
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)  # every Secret body received
    created_at: dict[str, dt.datetime] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    ready_nodes: set[str] = field(default_factory=set)
    ready_check: Callable[[str], bool] | None = None  # e.g. "the node-side stand-in has run"
    registered_nodes: set[str] = field(default_factory=set)
    cluster_info: bool = True
    node_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=lambda: {"default", "kube-system", "kube-public"})
    custom: dict[str, dict[str, Any]] = field(default_factory=dict)  # "<group>/<plural>/<ns>/<name>"
    served_groups: set[str] = field(default_factory=set)  # API groups with installed CRDs
    lock: threading.Lock = field(default_factory=threading.Lock)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "message": message,
        "code": code,
    }


class Handler(BaseHTTPRequestHandler):
    server: FakeKubeApi

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length", "0"))
        body: dict[str, Any] = json.loads(self.rfile.read(length))
        return body

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {BEARER}":
            self._send(401, _status(401, "Unauthorized", "Unauthorized"))
            return False
        return True

    def _route(self, method: str) -> None:
        state = self.server.state
        with state.lock:
            state.requests.append((method, self.path))
        if not self._authorised():
            return
        path = self.path.split("?", 1)[0]
        if method == "GET" and path == "/api/v1/namespaces/kube-public/configmaps/cluster-info":
            if not state.cluster_info:
                self._send(404, _status(404, "NotFound", 'configmaps "cluster-info" not found'))
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
            self._send(200, body)
            return
        node = re.fullmatch(r"/api/v1/nodes/([a-z0-9.-]+)", path)
        if method == "GET" and node:
            name = node.group(1)
            if state.ready_check is not None and state.ready_check(name):
                state.ready_nodes.add(name)
            if name not in state.registered_nodes and name not in state.ready_nodes:
                self._send(404, _status(404, "NotFound", f'nodes "{name}" not found'))
                return
            ready = "True" if name in state.ready_nodes else "False"
            self._send(
                200,
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": name},
                    "status": {"conditions": [{"type": "Ready", "status": ready}]},
                },
            )
            return
        if method == "PATCH" and node:
            name = node.group(1)
            body = self._body()
            labels = state.node_labels.setdefault(name, {})
            labels.update(body.get("metadata", {}).get("labels", {}))
            self._send(
                200, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}
            )
            return
        if method == "POST" and path == "/api/v1/namespaces":
            name = self._body()["metadata"]["name"]
            if name in state.namespaces:
                self._send(409, _status(409, "AlreadyExists", f'namespaces "{name}" already exists'))
                return
            state.namespaces.add(name)
            self._send(201, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
            return
        crd = re.fullmatch(r"/apis/([a-z.]+)/(v1)/namespaces/([a-z0-9-]+)/([a-z]+)(?:/([a-z0-9.-]+))?", path)
        if crd:
            group, _, namespace, plural, name = crd.groups()
            if group not in state.served_groups:
                self._send(404, _status(404, "NotFound", "the server could not find the requested resource"))
                return
            if method == "POST":
                body = self._body()
                key = f"{group}/{plural}/{namespace}/{body['metadata']['name']}"
                if key in state.custom:
                    self._send(409, _status(409, "AlreadyExists", f"{key} already exists"))
                    return
                body["metadata"]["resourceVersion"] = "1"
                state.custom[key] = body
                self._send(201, body)
                return
            key = f"{group}/{plural}/{namespace}/{name}"
            if key not in state.custom:
                self._send(404, _status(404, "NotFound", f"{key} not found"))
                return
            if method == "GET":
                self._send(200, state.custom[key])
                return
            if method == "PUT":
                body = self._body()
                if (
                    body["metadata"].get("resourceVersion")
                    != state.custom[key]["metadata"]["resourceVersion"]
                ):
                    self._send(409, _status(409, "Conflict", "resourceVersion mismatch"))
                    return
                body["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
                state.custom[key] = body
                self._send(200, body)
                return
        if path == "/api/v1/namespaces/kube-system/secrets" and method == "POST":
            body = self._body()
            name = body["metadata"]["name"]
            with state.lock:
                if name in state.secrets:
                    self._send(409, _status(409, "AlreadyExists", f'secrets "{name}" already exists'))
                    return
                state.secrets[name] = body
                state.created.append(body)
                state.created_at[name] = dt.datetime.now(dt.UTC)
            self._send(201, body)
            return
        secret = re.fullmatch(r"/api/v1/namespaces/kube-system/secrets/([a-z0-9.-]+)", path)
        if secret and method in ("GET", "DELETE"):
            name = secret.group(1)
            with state.lock:
                found = state.secrets.get(name)
                if found is not None and method == "DELETE":
                    del state.secrets[name]
                    state.deleted.append(name)
            if found is None:
                self._send(404, _status(404, "NotFound", f'secrets "{name}" not found'))
            elif method == "GET":
                self._send(200, found)
            else:
                self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
            return
        self._send(404, _status(404, "NotFound", f"{method} {path} is not part of this contract server"))

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_PUT(self) -> None:
        self._route("PUT")


class FakeKubeApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, pki: Pki) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = ApiState(ca_pem=pki.ca_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server_cert, pki.server_key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> FakeKubeApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def operator_kubeconfig(path: Path, server: str, ca_pem: bytes, context: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": context,
                        "cluster": {
                            "server": server,
                            "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                        },
                    }
                ],
                "users": [{"name": f"{context}-admin", "user": {"token": BEARER}}],
                "contexts": [{"name": context, "context": {"cluster": context, "user": f"{context}-admin"}}],
                "current-context": context,
            }
        )
    )
    path.chmod(0o600)
    return path
