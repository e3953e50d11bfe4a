"""Every exception the gateway raises, under one base: :class:`KubevcGatewayError`.

Two families sit under it. :class:`GatewayError` and its subclasses are HTTP errors: each has a
status code and a short message that is safe to show to clients, and every one of them leaves the
gateway as ``{"error": "...", "status": N}``. :class:`ConfigError` (a bad ``gateway.yaml``) and
:class:`WireError` (malformed protobuf bytes) are not HTTP errors; they stay :class:`ValueError`
subclasses as well, as callers caught them before they had a common base.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "BadRequest",
    "BodyBudgetFull",
    "ConfigError",
    "GatewayError",
    "GatewayTimeout",
    "KubevcGatewayError",
    "ModelNotFound",
    "Overloaded",
    "PayloadTooLarge",
    "RequestStopped",
    "SignatureMismatch",
    "UnsupportedMediaType",
    "WireError",
]


class KubevcGatewayError(Exception):
    """The base of every exception ``kubevc.gateway`` raises."""


class ConfigError(KubevcGatewayError, ValueError):
    """The configuration file is missing, not YAML, or refused by the schema."""


class WireError(KubevcGatewayError, ValueError):
    """The bytes are not a well-formed protobuf message."""


class GatewayError(KubevcGatewayError):
    """An error with an HTTP status and a short message that is safe to show to clients."""

    status_code = 500
    grpc_code: str | None = None  # the backend's gRPC status code name, when a backend call failed

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code

    def to_dict(self) -> dict[str, object]:
        return {"error": self.message, "status": self.status_code}


class BadRequest(GatewayError):
    status_code = 400


class ModelNotFound(GatewayError):
    status_code = 404


class PayloadTooLarge(GatewayError):
    status_code = 413


class UnsupportedMediaType(GatewayError):
    status_code = 415


class BackendError(GatewayError):
    """The backend answered with an error the client cannot fix (502)."""

    status_code = 502


class BackendUnavailable(GatewayError):
    status_code = 503


class GatewayTimeout(GatewayError):
    status_code = 504


class Overloaded(GatewayError):
    """Every decode worker is busy and the decode queue is full: retry shortly (503)."""

    status_code = 503


class BodyBudgetFull(GatewayError):
    """The request bodies held at once would pass ``maxInflightBodyBytes``: retry shortly (503)."""

    status_code = 503


class RequestStopped(GatewayError):
    """Work given up from outside: the deadline passed, the client went away or the gateway is
    draining. Raised inside decode jobs so they stop between images; nobody waits for it."""

    status_code = 503


class SignatureMismatch(GatewayError):
    """The configuration contradicts the signature the backend declares for a model: the model is
    not ready (503) until one of them changes. The message names model, input, both values."""

    status_code = 503
