"""Test support for Kubernetes API contract tests: a small local HTTPS API server and a test PKI.

What every stand-in shares lives here; the paths a test package serves, and the objects behind
them, live in that package (``tests/nodeprep/kubeapi.py``, ``tests/generator/kubeapi_contract.py``):

* :func:`make_pki`: a cluster CA made with ``cryptography`` and a serving certificate for 127.0.0.1;
* :class:`KubeApiServer`: a threaded HTTPS server on 127.0.0.1 (a random port) that records every
  request (:class:`Request`, in ``state.requests``) and answers from a :class:`Router` of
  ``(methods, path regex)`` routes; anything unrouted is a 404 naming the path, so a call the
  contract does not know shows up as a failure;
* :func:`status` (the API's ``Status`` error body), :func:`merge_patch` (RFC 7386),
  :func:`write_kubeconfig` (one context per server, bearer-token users).
"""

from __future__ import annotations

import base64
import copy
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
from typing import Any, Generic, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# --------------------------------------------------------------------------- PKI


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


# --------------------------------------------------------------------------- JSON bodies


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """The ``Status`` body the API server sends with an error."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "message": message,
        "code": code,
    }


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


# --------------------------------------------------------------------------- the server


@dataclass
class Request:
    """One request as received: method, path with query, Content-Type and the decoded JSON body."""

    method: str
    path: str
    content_type: str | None
    body: Any


@dataclass(kw_only=True)
class Recorded:
    """Base of a server's state: the requests received and the lock that guards the state."""

    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


S = TypeVar("S", bound=Recorded)
Route = Callable[["KubeHandler", S, "re.Match[str]"], None]


class Router(Generic[S]):
    """``(methods, path regex) -> function`` routes, tried in registration order."""

    def __init__(self) -> None:
        self._routes: list[tuple[tuple[str, ...], re.Pattern[str], Route[S]]] = []

    def __call__(self, methods: str, pattern: str) -> Callable[[Route[S]], Route[S]]:
        """Register the decorated function for ``methods`` (space-separated, or ``*``) on paths
        that fully match ``pattern``; it is called with the handler, the state and the match."""

        def register(fn: Route[S]) -> Route[S]:
            self._routes.append((tuple(methods.split()), re.compile(pattern), fn))
            return fn

        return register

    def dispatch(self, handler: KubeHandler, state: S, path: str) -> bool:
        for methods, pattern, fn in self._routes:
            if "*" not in methods and handler.command not in methods:
                continue
            match = pattern.fullmatch(path)
            if match:
                fn(handler, state, match)
                return True
        return False


class KubeHandler(BaseHTTPRequestHandler):
    """Reads the JSON body, records the request, then lets the server answer it."""

    server: KubeApiServer[Any]
    body: Any = None
    query: dict[str, list[str]]

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def send(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def fail(self, code: int, reason: str, message: str) -> None:
        self.send(code, status(code, reason, message))

    def not_found(self, path: str) -> None:
        self.fail(404, "NotFound", f"{self.command} {path} is not part of this contract server")

    def bearer(self, token: str) -> bool:
        """Whether the request carries ``token``; if not, answers 401 as the API server does."""
        if self.headers.get("Authorization") != f"Bearer {token}":
            self.fail(401, "Unauthorized", "Unauthorized")
            return False
        return True

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        self.body = json.loads(self.rfile.read(length)) if length else None
        self.query = parse_qs(split.query)
        state = self.server.state
        with state.lock:
            state.requests.append(
                Request(self.command, self.path, self.headers.get("Content-Type"), self.body)
            )
        self.server.respond(self, split.path)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()


class KubeApiServer(ThreadingHTTPServer, Generic[S]):
    """An API server on 127.0.0.1 (a random port), TLS with the test CA, answering from ``routes``.

    Use it as a context manager, or ``start()``/``stop()``. Subclasses set ``routes`` and may
    override :meth:`respond` (authentication, failure modes) around ``super().respond``.
    """

    daemon_threads = True
    block_on_close = False
    handler: type[KubeHandler] = KubeHandler
    routes: Router[S]

    def __init__(self, pki: Pki, state: S) -> None:
        super().__init__(("127.0.0.1", 0), self.handler)
        self.state = state
        self.closing = threading.Event()  # set on stop: a handler that stalls on purpose returns
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server_cert, pki.server_key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"

    def respond(self, handler: KubeHandler, path: str) -> None:
        if not self.routes.dispatch(handler, self.state, path):
            handler.not_found(path)

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_kubeconfig(path: Path, ca_pem: bytes, contexts: dict[str, tuple[str, str]]) -> Path:
    """A kubeconfig (mode 0600) with one context per server: ``{context: (server url, bearer token)}``;
    the first is the current context."""
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
