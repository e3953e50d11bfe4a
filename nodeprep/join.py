"""Agent-mediated join: the node never holds a long-lived secret.

The operator side (this module) mints a bootstrap token on the region's API as a Secret
``kube-system/bootstrap-token-<id>`` of type ``bootstrap.kubernetes.io/token`` that expires in
under a minute, pins the cluster CA, hands both to the node over SSH (pyinfra), runs the join,
waits for the Node to be Ready and deletes the token in a ``finally`` — also when the join failed.

CA pinning differs between the distributions:

* kubeadm: ``--discovery-token-ca-cert-hash sha256:<hex>``, the sha256 of the CA certificate's
  DER-encoded SubjectPublicKeyInfo;
* k3s: the secure token ``K10<hex>::<id>.<secret>``, ``<hex>`` being the sha256 of the raw CA
  bundle bytes the server serves at ``/cacerts``.

The token secret is held in :class:`Token` whose ``repr``/``str`` are masked, is passed to pyinfra
as a ``HiddenValue`` (pyinfra prints ``*MASKED*``) and is never logged.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pyinfra.api.command import StringCommand
from pyinfra.api.hiddenvalue import HiddenValue
from pyinfra.api.host import Host
from pyinfra.api.state import State

from .errors import JoinError
from .facts import FileBytes, NodePlatform
from .operations import k3s_agent_staged, run_join
from .plans.cluster import DEFAULT_K3S_VERSION
from .plans.k3s import K3S_INSTALLER_REMOTE, K3S_INSTALLER_URL, K3S_RELEASES
from .runner import RunReport, Target, run_deploy

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "MAX_TTL_SECONDS",
    "JoinError",
    "JoinRequest",
    "JoinResult",
    "Token",
    "bootstrap_token_secret",
    "ca_bundle_from_cluster_info",
    "join_node",
    "k3s_ca_hash",
    "k3s_secure_token",
    "kubeadm_ca_cert_hash",
    "mint_token",
]

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 45
MAX_TTL_SECONDS = 60
NAMESPACE = "kube-system"
TOKEN_TYPE = "bootstrap.kubernetes.io/token"  # noqa: S105 - a Secret type, not a password
GROUPS = {
    "kubeadm": "system:bootstrappers:kubeadm:default-node-token",
    "k3s": "system:bootstrappers:k3s:default-node-token",
}
_ALPHABET = string.ascii_lowercase + string.digits

Distribution = Literal["k3s", "kubeadm"]


@dataclass(frozen=True)
class Token:
    token_id: str
    secret: str = field(repr=False)
    expires: datetime

    def __post_init__(self) -> None:
        if len(self.token_id) != 6 or any(c not in _ALPHABET for c in self.token_id):
            raise ValueError("token id must match [a-z0-9]{6}")
        if len(self.secret) != 16 or any(c not in _ALPHABET for c in self.secret):
            raise ValueError("token secret must match [a-z0-9]{16}")

    @property
    def secret_name(self) -> str:
        return f"bootstrap-token-{self.token_id}"

    def value(self) -> str:
        """``<id>.<secret>``: only for handing to the node, never for output."""
        return f"{self.token_id}.{self.secret}"

    def __str__(self) -> str:
        return f"{self.token_id}.****************"


def mint_token(ttl_seconds: int = DEFAULT_TTL_SECONDS, now: datetime | None = None) -> Token:
    if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"token TTL must be between 1 and {MAX_TTL_SECONDS} seconds (got {ttl_seconds})")
    start = now or datetime.now(UTC)
    return Token(
        token_id="".join(secrets.choice(_ALPHABET) for _ in range(6)),
        secret="".join(secrets.choice(_ALPHABET) for _ in range(16)),
        expires=start.replace(microsecond=0) + timedelta(seconds=ttl_seconds),
    )


def bootstrap_token_secret(token: Token, distribution: Distribution) -> dict[str, Any]:
    """The Secret manifest of a bootstrap token (``data`` base64-encoded, as the API stores it)."""
    fields = {
        "token-id": token.token_id,
        "token-secret": token.secret,
        "expiration": token.expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        # kubeadm's discovery verifies the JWS signature on kube-public/cluster-info (signing);
        # k3s's own `k3s token create` sets both usages as well.
        "usage-bootstrap-authentication": "true",
        "usage-bootstrap-signing": "true",
        "auth-extra-groups": GROUPS[distribution],
        "description": "kubevc: single-use join token, deleted right after the join",
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": token.secret_name,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "kubevc"},
        },
        "type": TOKEN_TYPE,
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in fields.items()},
    }


# --- CA pinning -----------------------------------------------------------------------------------


def kubeadm_ca_cert_hash(ca_pem: bytes) -> str:
    """``sha256:<hex>`` of the DER SubjectPublicKeyInfo of the (first) CA certificate."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def k3s_ca_hash(ca_bundle: bytes) -> str:
    """sha256 hex of the raw CA bundle bytes (what the k3s server serves at /cacerts)."""
    return hashlib.sha256(ca_bundle).hexdigest()


def k3s_secure_token(ca_bundle: bytes, token: Token) -> str:
    return f"K10{k3s_ca_hash(ca_bundle)}::{token.value()}"


def ca_bundle_from_cluster_info(kubeconfig_text: str) -> bytes:
    """The CA bytes inside the ``kubeconfig`` key of the ``kube-public/cluster-info`` ConfigMap."""
    data = yaml.safe_load(kubeconfig_text) or {}
    try:
        encoded = data["clusters"][0]["cluster"]["certificate-authority-data"]
    except (KeyError, IndexError, TypeError) as error:
        raise JoinError("kube-public/cluster-info holds no certificate-authority-data") from error
    return base64.b64decode(encoded)


# --- the join -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinRequest:
    region: str
    distribution: Distribution
    api_endpoint: str  # https://host:port the node can reach
    node_name: str
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    k3s_version: str = DEFAULT_K3S_VERSION
    k3s_airgap: bool = False  # the k3s binary and installer were put on the node beforehand
    ready_timeout: float = 300.0
    poll_interval: float = 2.0
    attempts: int = 2  # a retry mints a fresh token (the old one is deleted or expired)
    labels: tuple[tuple[str, str], ...] = ()  # set on the Node once it is Ready


@dataclass
class JoinResult:
    node_name: str
    joined: bool
    ready: bool
    attempts: int
    messages: list[str] = field(default_factory=list)


def _hidden(value: str) -> HiddenValue:
    return HiddenValue(value)  # type: ignore[no-untyped-call]


def join_command(request: JoinRequest, token: Token, ca_bundle: bytes) -> StringCommand:
    """The command run on the node; the secret parts are HiddenValues (pyinfra masks them)."""
    host_port = request.api_endpoint.removeprefix("https://").rstrip("/")
    if request.distribution == "kubeadm":
        return StringCommand(
            "kubeadm",
            "join",
            host_port,
            "--token",
            _hidden(token.value()),
            "--discovery-token-ca-cert-hash",
            kubeadm_ca_cert_hash(ca_bundle),
            "--node-name",
            request.node_name,
        )
    secure = _hidden(k3s_secure_token(ca_bundle, token))
    env = [
        f"INSTALL_K3S_VERSION={request.k3s_version}",
        "INSTALL_K3S_EXEC=agent",
        f"K3S_URL={request.api_endpoint}",
        StringCommand("K3S_TOKEN=", secure, _separator=""),
        f"K3S_NODE_NAME={request.node_name}",
    ]
    # the binary and installer are staged on the node before the token exists (stage_k3s_agent),
    # so the token's short life is spent on the join itself, not on a download
    return StringCommand(*env, "INSTALL_K3S_SKIP_DOWNLOAD=true", "sh", K3S_INSTALLER_REMOTE)


def stage_k3s_agent(
    target: Target,
    version: str,
    *,
    dry_run: bool = False,
    releases: str = K3S_RELEASES,
    installer_url: str = K3S_INSTALLER_URL,
) -> RunReport:
    """Before any token exists: put the pinned k3s binary and installer on the node."""

    def deploy(state: State, node: Host) -> None:
        k3s_agent_staged(
            version=version,
            releases=releases,
            installer_url=installer_url,
            name=f"kubevc: stage k3s {version}",
        )

    return run_deploy([target], deploy, dry_run=dry_run)


def _member_marker(distribution: Distribution) -> str:
    return "/etc/kubernetes/kubelet.conf" if distribution == "kubeadm" else "/var/lib/rancher/k3s/agent"


def node_preflight(target: Target, request: JoinRequest) -> list[str]:
    """Reachable? supported? already a member? (read-only facts; raises JoinError)."""
    found: dict[str, Any] = {}

    def deploy(state: State, node: Host) -> None:
        found["platform"] = node.get_fact(NodePlatform)
        found["kubelet_conf"] = node.get_fact(FileBytes, path="/etc/kubernetes/kubelet.conf")
        found["k3s_agent"] = node.get_fact(FileBytes, path="/etc/systemd/system/k3s-agent.service")

    try:
        report = run_deploy([target], deploy, dry_run=True)
    except ConnectionError as error:
        raise JoinError(f"{target.name} is not reachable ({error})") from None
    if not report.ok or "platform" not in found:
        raise JoinError(f"{target.name}: preflight failed: {'; '.join(report.messages)}")
    found["platform"].check_supported()
    if found["kubelet_conf"] is not None or found["k3s_agent"] is not None:
        raise JoinError(f"{target.name} is already a cluster member ({_member_marker(request.distribution)})")
    return report.messages


JoinRunner = Callable[[StringCommand], bool]


def pyinfra_join_runner(target: Target) -> JoinRunner:
    def run(command: StringCommand) -> bool:
        def deploy(state: State, node: Host) -> None:
            run_join(command=command, name="kubevc: join the cluster")

        report: RunReport = run_deploy([target], deploy)
        return report.ok

    return run


def _api_status(error: Exception) -> int | None:
    status = getattr(error, "status", None)
    return status if isinstance(status, int) else None


def join_node(
    core: Any,
    request: JoinRequest,
    runner: JoinRunner,
    *,
    progress: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> JoinResult:
    """Mint, pin, join, wait, and always delete the token. ``core`` is a ``CoreV1Api``."""
    say = progress or (lambda message: None)
    from kubernetes.client.exceptions import ApiException

    try:
        core.read_node(request.node_name)
    except ApiException as error:
        if error.status != 404:
            raise JoinError(f"cannot read nodes on the {request.region} API (HTTP {error.status})") from None
    else:
        raise JoinError(f"node {request.node_name} is already a member of {request.region}")

    try:
        info = core.read_namespaced_config_map("cluster-info", "kube-public")
    except ApiException as error:
        raise JoinError(
            f"cannot read kube-public/cluster-info on the {request.region} API (HTTP {error.status})"
        ) from None
    ca_bundle = ca_bundle_from_cluster_info((info.data or {}).get("kubeconfig", ""))
    result = JoinResult(node_name=request.node_name, joined=False, ready=False, attempts=0)

    for attempt in range(1, request.attempts + 1):
        result.attempts = attempt
        token = mint_token(request.ttl_seconds)
        say(f"minted bootstrap token {token.token_id} (expires {token.expires:%H:%M:%S} UTC)")
        core.create_namespaced_secret(NAMESPACE, bootstrap_token_secret(token, request.distribution))
        try:
            say(
                f"joining {request.node_name} to {request.region} ({request.distribution}), attempt {attempt}"
            )
            if runner(join_command(request, token, ca_bundle)):
                result.joined = True
                result.ready = _wait_ready(core, request, say, sleep)
                if result.ready and request.labels:
                    core.patch_node(request.node_name, {"metadata": {"labels": dict(request.labels)}})
                    say(f"labelled {request.node_name}: {', '.join(f'{k}={v}' for k, v in request.labels)}")
                break
            result.messages.append(f"join attempt {attempt} failed on the node")
        finally:
            _delete_token(core, token, say)
    if not result.joined:
        raise JoinError(
            f"{request.node_name} did not join {request.region} after {result.attempts} attempt(s)"
        )
    return result


def _delete_token(core: Any, token: Token, say: Callable[[str], None]) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        core.delete_namespaced_secret(token.secret_name, NAMESPACE)
        say(f"deleted bootstrap token {token.token_id}")
    except ApiException as error:
        if error.status == 404:  # already gone (expired and cleaned up)
            say(f"bootstrap token {token.token_id} already gone")
        else:
            log.error(
                "could not delete %s (HTTP %s); it expires at %s",
                token.secret_name,
                error.status,
                token.expires,
            )
            raise


def _node_ready(node: Any) -> bool:
    for condition in (node.status.conditions or []) if node.status else []:
        if condition.type == "Ready":
            return bool(condition.status == "True")
    return False


def _wait_ready(
    core: Any, request: JoinRequest, say: Callable[[str], None], sleep: Callable[[float], None]
) -> bool:
    from kubernetes.client.exceptions import ApiException

    deadline = time.monotonic() + request.ready_timeout
    while True:
        try:
            if _node_ready(core.read_node(request.node_name)):
                say(f"node {request.node_name} is Ready")
                return True
            say(f"waiting for {request.node_name} to be Ready")
        except ApiException as error:
            if error.status != 404:
                raise
            say(f"waiting for {request.node_name} to register")
        if time.monotonic() >= deadline:
            say(f"{request.node_name} not Ready after {request.ready_timeout:.0f} s")
            return False
        sleep(request.poll_interval)


def core_api_for_context(kubeconfig: str, context: str) -> Any:
    """A ``CoreV1Api`` for one context of the operator's kubeconfig (JoinError if it is missing)."""
    from kubernetes.client import CoreV1Api
    from kubernetes.config import list_kube_config_contexts, new_client_from_config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, _ = list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as error:
        raise JoinError(f"cannot read kubeconfig {kubeconfig}: {error.__class__.__name__}") from None
    if context not in {c["name"] for c in contexts or []}:
        raise JoinError(f"kubeconfig {kubeconfig} has no context {context!r} (run `cluster init` first)")
    client = new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
    return CoreV1Api(client)
