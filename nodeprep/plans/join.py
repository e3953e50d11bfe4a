"""The join plan: what a join asks for, and the command line the node runs.

The command line is a tuple of words; the words that carry the token are :class:`SecretWord`
values, so the layer that runs the command (pyinfra, ``operations.masked_command``) can mask them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .bootstrap_token import DEFAULT_TTL_SECONDS, Token
from .ca_pinning import k3s_secure_token, kubeadm_ca_cert_hash
from .cluster import DEFAULT_K3S_VERSION, Distribution
from .k3s import K3S_INSTALLER_REMOTE

__all__ = ["JoinRequest", "SecretWord", "join_command_words", "member_marker"]


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


@dataclass(frozen=True)
class SecretWord:
    """One word of a command line that holds a secret: ``prefix`` stays visible, ``value`` not."""

    value: str = field(repr=False)
    prefix: str = ""


def join_command_words(request: JoinRequest, token: Token, ca_bundle: bytes) -> tuple[str | SecretWord, ...]:
    """The join command line for the node, the token-bearing words marked secret."""
    host_port = request.api_endpoint.removeprefix("https://").rstrip("/")
    if request.distribution == "kubeadm":
        return (
            "kubeadm",
            "join",
            host_port,
            "--token",
            SecretWord(token.value()),
            "--discovery-token-ca-cert-hash",
            kubeadm_ca_cert_hash(ca_bundle),
            "--node-name",
            request.node_name,
        )
    # the binary and installer are staged on the node before the token exists (stage_k3s_agent),
    # so the token's short life is spent on the join itself, not on a download
    return (
        f"INSTALL_K3S_VERSION={request.k3s_version}",
        "INSTALL_K3S_EXEC=agent",
        f"K3S_URL={request.api_endpoint}",
        SecretWord(k3s_secure_token(ca_bundle, token), prefix="K3S_TOKEN="),
        f"K3S_NODE_NAME={request.node_name}",
        "INSTALL_K3S_SKIP_DOWNLOAD=true",
        "sh",
        K3S_INSTALLER_REMOTE,
    )


def member_marker(distribution: Distribution) -> str:
    """The file that shows a node already belongs to a cluster of this distribution."""
    return "/etc/kubernetes/kubelet.conf" if distribution == "kubeadm" else "/var/lib/rancher/k3s/agent"
