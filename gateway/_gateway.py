"""The state the routes share and the lifecycle of one request.

:class:`Gateway` holds the configuration, the loaded profiles, the backends and the metrics; it
reads bodies under the size limit, times stages, runs a route under the request budget (every
error becomes a short JSON answer, every request is counted and logged once) and makes backend
calls, routed by :class:`~kubevc.gateway._canary.LabelRouter` when a model has a canary.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast

import numpy.typing as npt
from litestar import Request, Response

from kubevc.gateway._backends import Backend, make_backend
from kubevc.gateway._canary import LabelRouter
from kubevc.gateway._config import GatewayConfig
from kubevc.gateway._errors import (
    BackendUnavailable,
    BadRequest,
    BodyBudgetFull,
    GatewayError,
    GatewayTimeout,
    ModelNotFound,
    Overloaded,
    PayloadTooLarge,
    SignatureMismatch,
)
from kubevc.gateway._metrics import Metrics
from kubevc.gateway._profile import Profile
from kubevc.gateway._responses import error_response
from kubevc.gateway._workers import DecodePool

__all__ = ["Gateway", "RouteBody", "gateway_of"]

Array = npt.NDArray[Any]
RouteBody = Callable[[float], Awaitable[Response[bytes]]]  # the route's work, given its start time
log = logging.getLogger("kubevc.gateway")
_SIGNATURE_BUDGET = 2.0  # seconds for one metadata call
_SIGNATURE_RETRY_SECONDS = 5.0  # a backend that could not say is asked again after this long
CLIENT_GONE = 499  # nginx's "client closed request": counted and logged, never sent


class ModelStages:
    """The stage timer ``_decode`` takes for one model (``with stages("decode")`` or ``record``)."""

    def __init__(self, metrics: Metrics, model: str) -> None:
        self._metrics = metrics
        self._model = model

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.record(name, time.perf_counter() - start)

    def record(self, name: str, seconds: float) -> None:
        self._metrics.duration.labels(self._model, name).observe(seconds)


@dataclass(eq=False)
class _InFlight:
    """One request's work task, and why it was stopped from outside (client gone, drain)."""

    request: Request[Any, Any, Any]
    work: asyncio.Task[Response[bytes]] | None = None
    watcher: asyncio.Task[None] | None = None
    stopped: GatewayError | None = field(default=None)
    body_bytes: int = 0  # of the gateway's maxInflightBodyBytes, held until the answer is made

    def stop(self, reason: GatewayError) -> None:
        if self.work is not None and not self.work.done() and self.stopped is None:
            self.stopped = reason
            self.work.cancel()

    async def watch_disconnect(self) -> None:
        """Once the body is read, the next ASGI message is ``http.disconnect`` when the client goes."""
        while True:
            message = await self.request.receive()
            if message["type"] == "http.disconnect":
                self.stop(GatewayError("the client closed the connection", CLIENT_GONE))
                return


_in_flight: ContextVar[_InFlight | None] = ContextVar("kubevc_gateway_in_flight", default=None)


class Gateway:
    """State shared by the routes: config, profiles, backends, metrics."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.profiles = {m.name: Profile.load(m) for m in config.models}
        self.backends: dict[str, Backend] = {}
        self.router = LabelRouter()
        limits = config.limits
        self.pool = DecodePool(limits.decode_workers, limits.decode_queue, limits.max_decoding_pixels)
        self._in_flight: set[_InFlight] = set()
        self._body_bytes = 0  # request bodies held by all requests in flight (maxInflightBodyBytes)
        self._startup_check: asyncio.Task[dict[str, bool]] | None = None
        self._signature_asked: dict[str, float] = {}  # model -> when its backend was last asked
        self._was_ready: dict[str, bool] = {}
        self._wire_forms: dict[str, str] = {}

    async def startup(self) -> None:
        for cfg in self.config.backends:
            self.backends[cfg.name] = make_backend(cfg, self.metrics)
        for name, profile in self.profiles.items():
            self.metrics.model_available.labels(name).set(0)
            self._record_wire_form(profile)
        # read every signature now, without holding up the start (a backend may come up later)
        self._startup_check = asyncio.get_running_loop().create_task(self.ready())

    async def shutdown(self) -> None:
        if self._startup_check is not None:
            self._startup_check.cancel()
        for backend in self.backends.values():
            await backend.close()
        self.backends.clear()
        self.pool.close()

    # -- signatures -------------------------------------------------------------------------------
    async def load_signature(self, profile: Profile) -> None:
        """Read the model's signature from its backend and narrow the profile by it. A backend
        that cannot be reached leaves the profile as it was (asked again later); a contradiction
        makes the model not ready, with the reason in ``profile.signature_error``."""
        cfg = profile.configured or profile.cfg
        self._signature_asked[cfg.name] = time.monotonic()
        try:
            signature = await self.backend_for(profile).signature(
                cfg.remote_name, cfg.signature, budget=_SIGNATURE_BUDGET
            )
            profile.apply_signature(signature)
        except SignatureMismatch as exc:
            if profile.signature_error != exc.message:
                log.error("signature mismatch", extra={"model": cfg.name, "reason": exc.message})
            profile.signature_error = exc.message
            profile.signature_read = True
            return
        except GatewayError as exc:
            log.info("signature not read", extra={"model": cfg.name, "reason": exc.message})
            return
        profile.signature_error = None
        profile.signature_read = True
        self._record_wire_form(profile)

    def _record_wire_form(self, profile: Profile) -> None:
        name, form = profile.cfg.name, profile.wire_form
        previous = self._wire_forms.get(name)
        if previous is not None and previous != form:
            self.metrics.wire_form.labels(name, previous).set(0)
        self._wire_forms[name] = form
        self.metrics.wire_form.labels(name, form).set(1)

    async def ensure_signature(self, profile: Profile) -> None:
        """Before a request's body is read: the signature read once (asked again at most every
        few seconds while the backend cannot say), and a model whose config contradicts its
        signature answers 503 naming the contradiction."""
        asked = self._signature_asked.get(profile.cfg.name)
        if not profile.signature_read and (
            asked is None or time.monotonic() - asked > _SIGNATURE_RETRY_SECONDS
        ):
            await self.load_signature(profile)
        if profile.signature_error:
            raise SignatureMismatch(f"model {profile.cfg.name!r} is not ready: {profile.signature_error}")

    def not_ready_reasons(self) -> dict[str, str]:
        return {name: p.signature_error for name, p in self.profiles.items() if p.signature_error}

    def stop_in_flight(self) -> int:
        """The drain deadline passed: every running request answers a JSON 503 now (no traceback,
        no half-written answer); returns how many were stopped."""
        stopping = [r for r in self._in_flight if r.work is not None and not r.work.done()]
        for r in stopping:
            r.stop(BackendUnavailable("the gateway is shutting down: retry on another replica"))
        return len(stopping)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # -- helpers ----------------------------------------------------------------------------------
    def profile(self, name: str) -> Profile:
        profile = self.profiles.get(name)
        if profile is None:
            raise ModelNotFound(f"model {name!r} is not configured")
        return profile

    def backend_for(self, profile: Profile) -> Backend:
        return self.backends[profile.cfg.backend]

    def fail_fast(self, profile: Profile) -> None:
        """503 before any body is read or decoded while the model's backend breaker is open."""
        self.backend_for(profile).fail_fast()

    def backend_budget(self, profile: Profile) -> float:
        return min(self.backend_for(profile).cfg.deadline_seconds, self.config.limits.request_timeout_seconds)

    async def read_body(self, request: Request[Any, Any, Any], model: str) -> bytes:
        """The request body, refusing more than maxBodyBytes by Content-Length and while streaming.

        The body's bytes count against maxInflightBodyBytes until the request is answered: a
        declared Content-Length is taken before any of the body is read (503 when it does not
        fit), a chunked body as its chunks arrive."""
        limit = self.config.limits.max_body_bytes
        state = _in_flight.get()
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise BadRequest("Content-Length is not an integer") from None
            if size > limit:
                raise PayloadTooLarge(f"body of {size} bytes is above the limit of {limit} bytes")
            self._hold_body(state, size)
        chunks: list[bytes] = []
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(f"body is above the limit of {limit} bytes")
            if state is not None and total > state.body_bytes:
                self._hold_body(state, total - state.body_bytes)
            chunks.append(chunk)
        self.metrics.request_bytes.labels(model).inc(total)
        if state is not None and state.watcher is None:
            state.watcher = asyncio.get_running_loop().create_task(state.watch_disconnect())
        return b"".join(chunks)

    def _hold_body(self, state: _InFlight | None, size: int) -> None:
        """Count ``size`` more body bytes for the request; 503 when all bodies together would pass
        maxInflightBodyBytes. Given back when the request is answered (``handle``)."""
        if state is None:  # not under ``handle``: nothing would give the bytes back
            return
        cap = self.config.limits.max_inflight_body_bytes
        if self._body_bytes + size > cap:
            raise BodyBudgetFull(
                f"the gateway is receiving too many request bytes at once (maxInflightBodyBytes {cap}):"
                " retry shortly"
            )
        self._body_bytes += size
        state.body_bytes += size

    @property
    def body_bytes_held(self) -> int:
        """Request body bytes counted against maxInflightBodyBytes right now."""
        return self._body_bytes

    @contextmanager
    def stage(self, model: str, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.metrics.duration.labels(model, name).observe(time.perf_counter() - start)

    def stages(self, model: str) -> ModelStages:
        """``stage`` bound to one model, for the decoders."""
        return ModelStages(self.metrics, model)

    def remaining(self, started: float) -> float:
        return max(0.001, self.config.limits.request_timeout_seconds - (time.perf_counter() - started))

    # -- one request ------------------------------------------------------------------------------
    async def handle(
        self, request: Request[Any, Any, Any], model: str, route: str, fn: RouteBody
    ) -> Response[bytes]:
        """Run a route under the request budget; every error becomes a short JSON answer."""
        started = time.perf_counter()
        metric_model = model if model in self.profiles else "unknown"
        state = _InFlight(request)
        token = _in_flight.set(state)
        try:
            # a task of its own, so that a client gone or the drain deadline can stop it alone
            state.work = asyncio.get_running_loop().create_task(self._answer(fn, started, model, route))
        finally:
            _in_flight.reset(token)
        self._in_flight.add(state)
        try:
            response = await state.work
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if state.stopped is None or (current is not None and current.cancelling()):
                raise
            response = error_response(state.stopped)
        finally:
            self._in_flight.discard(state)
            self._body_bytes -= state.body_bytes
            state.body_bytes = 0
            if state.watcher is not None:
                state.watcher.cancel()
        if response.status_code is None:
            response.status_code = 200
        elapsed = time.perf_counter() - started
        code = response.status_code
        self.metrics.requests.labels(metric_model, route, str(code)).inc()
        self.metrics.duration.labels(metric_model, "total").observe(elapsed)
        body = response.content if isinstance(response.content, bytes) else b""
        self.metrics.response_bytes.labels(metric_model).inc(len(body))
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.url.path,
                "model": model,
                "route": route,
                "status": code,
                "duration_ms": round(elapsed * 1000, 3),
                "response_bytes": len(body),
            },
        )
        return response

    async def _answer(self, fn: RouteBody, started: float, model: str, route: str) -> Response[bytes]:
        """The route's work under the request budget; every error becomes a short JSON answer."""
        try:
            async with asyncio.timeout(self.config.limits.request_timeout_seconds):
                return await fn(started)
        except TimeoutError:
            return error_response(GatewayTimeout("request took longer than requestTimeoutSeconds"))
        except GatewayError as exc:
            if isinstance(exc, Overloaded):
                self.metrics.decode_rejected.inc()
            return error_response(exc)
        except Exception:
            log.exception("unhandled error", extra={"model": model, "route": route})
            return error_response(GatewayError("internal error", 500))

    def render_metrics(self) -> bytes:
        """The Prometheus text, with the decode pool's state as of now."""
        m, pool = self.metrics, self.pool
        m.decode_running.set(pool.running)
        m.decode_waiting.set(pool.waiting)
        m.decode_pixels.set(pool.pixels)
        m.in_flight.set(len(self._in_flight))
        m.body_bytes_in_flight.set(self._body_bytes)
        return m.render()

    async def fail(
        self, request: Request[Any, Any, Any], model: str, route: str, exc: GatewayError
    ) -> Response[bytes]:
        """An error answer that is counted and logged like any request (unknown model, bad path)."""

        async def raise_it(started: float) -> Response[bytes]:
            raise exc

        return await self.handle(request, model, route, raise_it)

    async def call_backend(
        self,
        profile: Profile,
        inputs: dict[str, Array],
        started: float,
        *,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        output_filter: list[str] | None = None,
        request_id: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> dict[str, Array]:
        """One backend call. Without an explicit version or label a model with ``canary`` set is
        routed by :class:`LabelRouter`; ``info`` receives ``label`` (the version label used, if
        any) and ``version`` (the version that answered, when the backend says)."""
        backend = self.backend_for(profile)
        name = profile.cfg.name
        info = {} if info is None else info

        async def send(chosen: str | None, chosen_version: int | None) -> dict[str, Array]:
            return await backend.predict(
                profile.cfg.remote_name,
                inputs,
                signature=signature or profile.cfg.signature,
                version=chosen_version,
                label=chosen,
                output_filter=output_filter,
                budget=self.remaining(started),
                info=info,
            )

        with self.stage(name, "backend"):
            outputs, used = await self.router.call(
                name, profile.cfg.canary, send, version=version, label=label, request_id=request_id
            )
        info["label"] = used
        if used is not None:
            self.metrics.version_label.labels(name, used).inc()
        return outputs

    async def ready(self) -> dict[str, bool]:
        """Each model's readiness; its signature is read again whenever that changes."""

        async def one(p: Profile) -> bool:
            name = p.cfg.name
            ok = await self.backend_for(p).model_ready(p.cfg.remote_name, budget=2.0)
            changed = self._was_ready.get(name) != ok
            self._was_ready[name] = ok
            if ok and (changed or not p.signature_read):
                await self.load_signature(p)
            ok = ok and not p.signature_error
            self.metrics.model_available.labels(name).set(1 if ok else 0)
            return ok

        names = list(self.profiles)
        states = await asyncio.gather(*(one(self.profiles[n]) for n in names))
        return dict(zip(names, states, strict=True))


def gateway_of(request: Request[Any, Any, Any]) -> Gateway:
    """The :class:`Gateway` that ``create_app`` put in the app's state."""
    return cast(Gateway, request.app.state.gateway)
