"""Bootstrap tokens: minting one (``<id>.<secret>``, short-lived) and its Secret manifest.

The API server reads a Secret ``kube-system/bootstrap-token-<id>`` of type
``bootstrap.kubernetes.io/token``; the token expires in under a minute. The secret part is held in
:class:`Token`, whose ``repr``/``str`` are masked, and only :meth:`Token.value` reveals it.
"""

from __future__ import annotations

import base64
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .cluster import Distribution

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "GROUPS",
    "MAX_TTL_SECONDS",
    "NAMESPACE",
    "TOKEN_TYPE",
    "Token",
    "bootstrap_token_secret",
    "mint_token",
]

DEFAULT_TTL_SECONDS = 45
MAX_TTL_SECONDS = 60
NAMESPACE = "kube-system"
TOKEN_TYPE = "bootstrap.kubernetes.io/token"  # noqa: S105 - a Secret type, not a password
GROUPS = {
    "kubeadm": "system:bootstrappers:kubeadm:default-node-token",
    "k3s": "system:bootstrappers:k3s:default-node-token",
}
_ALPHABET = string.ascii_lowercase + string.digits


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
