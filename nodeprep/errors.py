"""The errors kubevc.nodeprep raises: one base, :class:`NodeprepError`, with one class per cause.

Each also keeps the builtin base it had before the common base existed (``ValueError`` or
``RuntimeError``), so callers catching those, and the runner, which records a ``ValueError``
raised while a host's operations are added as that host's failure, behave as before.
No message carries a secret (bootstrap tokens, kubeconfig credentials).
"""

from __future__ import annotations

__all__ = ["FluxSyncError", "JoinError", "KubeconfigError", "NodeprepError", "UnsupportedPlatformError"]


class NodeprepError(Exception):
    """Base of every error kubevc.nodeprep raises on purpose."""


class UnsupportedPlatformError(NodeprepError, ValueError):
    """The node runs an operating system or architecture kubevc does not prepare."""


class KubeconfigError(NodeprepError, ValueError):
    """A kubeconfig that cannot be used (no cluster, several clusters, not a mapping...)."""


class JoinError(NodeprepError, RuntimeError):
    """A join that cannot start or did not finish; the message never contains the token."""


class FluxSyncError(NodeprepError, RuntimeError):
    """The Flux sync manifests are unusable, or the cluster refused them."""
