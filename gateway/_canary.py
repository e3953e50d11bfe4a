"""Canary routing: which version label a request without an explicit version goes to.

With ``models[].canary`` set, such a request goes to the canary label with probability
``percent``/100 and to the ``stable`` label otherwise. With an ``X-Request-Id`` header the choice is
a hash of the model name and that id, so the same id always lands on the same side (a client that
keeps its id sticks to one version); without one it is random. A label the backend does not know
(TF Serving: INVALID_ARGUMENT "Unrecognized servable version label") is remembered as missing for
a while and the request is sent again without it: no ``stable`` label means the backend's default
version, no canary label means everyone gets ``stable``.

v2 backends (Triton, MLServer) have no version labels: ``canary.versions`` maps each label to a
version, and the request names that version (``model_version``) instead, chosen the same way. A
version the server has not loaded (NOT_FOUND, or a refusal naming the version) is remembered as
missing like a label. A request naming a label (``/labels/stable``) is mapped the same way.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kubevc.gateway._config import STABLE_LABEL, CanaryConfig
from kubevc.gateway._errors import BackendError, BadRequest, GatewayError, ModelNotFound

__all__ = [
    "MISSING_LABEL_SECONDS",
    "LabelRouter",
    "canary_fraction",
    "is_missing_version_error",
    "is_unknown_label_error",
]

T = TypeVar("T")
log = logging.getLogger("kubevc.gateway")
MISSING_LABEL_SECONDS = 30.0  # how long a label the backend refused is skipped before it is tried again
_SCALE = float(1 << 64)


def canary_fraction(model: str, request_id: str) -> float:
    """A uniform number in [0, 1) fixed by (model, request id)."""
    digest = hashlib.blake2b(f"{model}\x00{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def is_unknown_label_error(message: str) -> bool:
    return "servable version label" in message.lower()


def is_missing_version_error(error: GatewayError) -> bool:
    """A v2 server's answer for a version it has not loaded (Triton, MLServer)."""
    return isinstance(error, ModelNotFound) or (
        isinstance(error, BadRequest) and "version" in error.message.lower()
    )


class LabelRouter:
    """Chooses labels per request and remembers labels a backend does not have."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, rand: Callable[[], float] = random.random
    ) -> None:
        self._missing: dict[tuple[str, str], float] = {}
        self._clock = clock
        self._rand = rand

    def missing(self, model: str, label: str) -> bool:
        until = self._missing.get((model, label))
        if until is None:
            return False
        if self._clock() >= until:
            del self._missing[(model, label)]
            return False
        return True

    def mark_missing(self, model: str, label: str) -> None:
        self._missing[(model, label)] = self._clock() + MISSING_LABEL_SECONDS

    def in_canary(self, model: str, canary: CanaryConfig, request_id: str | None) -> bool:
        if canary.percent <= 0:
            return False
        if canary.percent >= 100:
            return True
        x = canary_fraction(model, request_id) if request_id else self._rand()
        return x * 100.0 < canary.percent

    def choose(self, model: str, canary: CanaryConfig, request_id: str | None) -> str | None:
        """The label for one request: canary, stable, or None (the backend's default version)."""
        if self.in_canary(model, canary, request_id) and not self.missing(model, canary.label):
            return canary.label
        if not self.missing(model, STABLE_LABEL):
            return STABLE_LABEL
        return None

    async def call(
        self,
        model: str,
        canary: CanaryConfig | None,
        send: Callable[[str | None, int | None], Awaitable[T]],
        *,
        version: int | None = None,
        label: str | None = None,
        request_id: str | None = None,
    ) -> tuple[T, str | None]:
        """``send(label, version)`` once, or, for a model with ``canary`` set and a request that names
        neither a version nor a label, with the label :meth:`choose` picks: canary -> stable -> the
        default version, as labels turn out missing. With ``canary.versions`` (v2 backends) a label
        is sent as its version: ``send(None, versions[label])``. Returns the answer and the label
        it went to."""
        versions = canary.versions if canary is not None else None
        if versions is not None and label is not None and label in versions and version is None:
            return await send(None, versions[label]), label
        if canary is None or version is not None or label is not None:
            return await send(label, version), label
        for _ in range(3):  # canary, stable, default version: each tried at most once
            label = self.choose(model, canary, request_id)
            try:
                if versions is not None and label is not None:
                    return await send(None, versions[label]), label
                return await send(label, None), label
            except (BadRequest, ModelNotFound) as exc:
                if label is None:
                    raise
                missing = is_missing_version_error(exc) if versions else is_unknown_label_error(exc.message)
                if not missing:
                    raise
                log.warning("version label missing", extra={"model": model, "label": label})
                self.mark_missing(model, label)
        raise BackendError(f"model {model!r}: no usable version label")  # pragma: no cover - 3 labels at most
