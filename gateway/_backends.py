"""gRPC backends: TF Serving (PredictionService/ModelService) and Open Inference Protocol v2.

One long-lived ``grpc.aio`` channel per backend with keepalive and raised message limits; each call
has a deadline, is retried with exponential backoff on UNAVAILABLE only, and goes through a circuit
breaker that fails fast (503) while the backend is down. gRPC status codes become typed HTTP errors.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from kubevc.gateway._config import BackendConfig
from kubevc.gateway._errors import (
    BackendError,
    BackendUnavailable,
    BadRequest,
    GatewayError,
    GatewayTimeout,
    ModelNotFound,
    PayloadTooLarge,
    SignatureMismatch,
)
from kubevc.gateway._metrics import Metrics
from kubevc.gateway._proto.inference import grpc_predict_v2_pb2 as v2pb
from kubevc.gateway._proto.inference import grpc_predict_v2_pb2_grpc as v2grpc
from kubevc.gateway._proto.tensorflow_serving import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
)
from kubevc.gateway._signature import Signature, from_signature_def, from_v2_metadata
from kubevc.gateway._tensors import (
    from_tensor_proto,
    from_v2_output,
    numpy_to_v2_datatype,
    pack_bytes,
)
from kubevc.gateway._wire import (
    encode_model_infer_request,
    encode_predict_request,
    read_model_infer_response,
    read_predict_response,
)

__all__ = ["Backend", "CircuitBreaker", "TFServingBackend", "V2Backend", "make_backend"]

Array = npt.NDArray[Any]
T = TypeVar("T")
_BREAKER_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class CircuitBreaker:
    """closed -> (``failure_threshold`` consecutive failures) -> open -> (``reset_seconds``) ->
    half-open: one trial call; success closes, failure opens again."""

    def __init__(
        self, failure_threshold: int, reset_seconds: float, clock: Callable[[], float] = time.monotonic
    ):
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.failures = 0
        self.opened_at: float | None = None
        self._trial = False
        self._clock = clock

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self.opened_at >= self.reset_seconds else "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self._trial:
            self._trial = True
            return True
        return False

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self._trial = False

    def release(self) -> None:
        """A call was cancelled before it could tell anything: let another trial through."""
        self._trial = False

    def failure(self) -> None:
        self.failures += 1
        self._trial = False
        if self.opened_at is not None or self.failures >= self.failure_threshold:
            self.opened_at = self._clock()


def _channel_options(cfg: BackendConfig) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_send_message_length", cfg.max_message_bytes),
        ("grpc.max_receive_message_length", cfg.max_message_bytes),
        ("grpc.keepalive_time_ms", int(cfg.keepalive_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.enable_retries", 0),  # retries are ours: UNAVAILABLE only, with backoff
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2_000),
    ]


class Backend(ABC):
    """A model server reached over one long-lived gRPC channel."""

    def __init__(self, cfg: BackendConfig, metrics: Metrics | None = None) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.breaker = CircuitBreaker(cfg.breaker.failure_threshold, cfg.breaker.reset_seconds)
        self.channel = grpc.aio.insecure_channel(cfg.address, options=_channel_options(cfg))
        if metrics is not None:
            metrics.backend_up.labels(cfg.name).set(0)

    async def close(self) -> None:
        await self.channel.close(None)

    def _set_up(self, up: bool) -> None:
        if self.metrics is not None:
            self.metrics.backend_up.labels(self.cfg.name).set(1 if up else 0)

    def fail_fast(self) -> None:
        """503 at once while the breaker is open (half-open lets the caller through to its trial)."""
        if self.breaker.state == "open":
            self._set_up(False)
            raise BackendUnavailable(f"backend {self.cfg.name} is unavailable (circuit open)")

    async def call(self, fn: Callable[[float], Awaitable[T]], budget: float | None = None) -> T:
        """Run ``fn(timeout)`` with deadline, UNAVAILABLE retries and the breaker; map errors."""
        if not self.breaker.allow():
            self._set_up(False)
            raise BackendUnavailable(f"backend {self.cfg.name} is unavailable (circuit open)")
        deadline_at = time.monotonic() + min(self.cfg.deadline_seconds, budget or self.cfg.deadline_seconds)
        backoff = self.cfg.retry_backoff_seconds
        attempt = 0
        while True:
            remaining = deadline_at - time.monotonic()
            if remaining <= 0:
                self.breaker.failure()
                raise GatewayTimeout(f"backend {self.cfg.name} did not answer within the deadline")
            try:
                result = await fn(remaining)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.UNAVAILABLE and attempt < self.cfg.retries:
                    attempt += 1
                    await asyncio.sleep(min(backoff, max(0.0, deadline_at - time.monotonic())))
                    backoff *= 2
                    continue
                if code in _BREAKER_CODES:
                    self.breaker.failure()
                    self._set_up(False)
                else:
                    self.breaker.success()
                    self._set_up(True)
                raise _map_error(self.cfg.name, exc) from None
            except asyncio.CancelledError:
                self.breaker.release()
                raise
            self.breaker.success()
            self._set_up(True)
            return result

    @abstractmethod
    async def predict(
        self,
        model: str,
        inputs: dict[str, Array],
        *,
        signature: str = "",
        version: int | None = None,
        label: str | None = None,
        output_filter: list[str] | None = None,
        budget: float | None = None,
        info: dict[str, Any] | None = None,
    ) -> dict[str, Array]:
        """Run the model; outputs by name. ``info["version"]`` receives the version that answered."""

    @abstractmethod
    async def model_ready(self, model: str, budget: float | None = None) -> bool:
        """True when the backend reports the model AVAILABLE / ready."""

    @abstractmethod
    async def model_status(
        self, model: str, *, version: int | None = None, label: str | None = None, budget: float | None = None
    ) -> get_model_status_pb2.GetModelStatusResponse:
        """The model's versions and their states, as TF Serving's GetModelStatus reports them."""

    async def model_metadata(
        self, model: str, *, version: int | None = None, label: str | None = None, budget: float | None = None
    ) -> get_model_metadata_pb2.GetModelMetadataResponse | None:
        """TF Serving's GetModelMetadata (signature_def); None when the protocol has no such call."""
        return None

    async def signature(
        self,
        model: str,
        signature_name: str,
        *,
        version: int | None = None,
        label: str | None = None,
        budget: float | None = None,
    ) -> Signature | None:
        """The model's signature as the backend declares it; None when the backend cannot say
        (no metadata call, or metadata without inputs). Raises GatewayError when the call fails."""
        try:
            return await self._read_signature(
                model, signature_name, version=version, label=label, budget=budget
            )
        except GatewayError as exc:
            if exc.grpc_code == "UNIMPLEMENTED":  # a server without the metadata call
                return None
            raise

    @abstractmethod
    async def _read_signature(
        self, model: str, signature_name: str, *, version: int | None, label: str | None, budget: float | None
    ) -> Signature | None:
        """``signature`` of this protocol; a failed call raises (UNIMPLEMENTED is handled above)."""

    @abstractmethod
    async def version_ready(self, model: str, version: int, budget: float | None = None) -> bool:
        """True when that version of the model is AVAILABLE / ready."""


def _map_error(name: str, exc: grpc.aio.AioRpcError) -> GatewayError:
    error = _mapped(name, exc)
    error.grpc_code = exc.code().name
    return error


def _mapped(name: str, exc: grpc.aio.AioRpcError) -> GatewayError:
    code, details = exc.code(), (exc.details() or "").strip()
    if code == grpc.StatusCode.INVALID_ARGUMENT or code == grpc.StatusCode.FAILED_PRECONDITION:
        return BadRequest(details or "the backend refused the input")
    if code == grpc.StatusCode.NOT_FOUND:
        return ModelNotFound(details or "model not found on the backend")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return GatewayTimeout(f"backend {name} did not answer within the deadline")
    if code == grpc.StatusCode.UNAVAILABLE:
        return BackendUnavailable(f"backend {name} is unavailable")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        if "Sent message larger" in details:  # our request is above maxMessageBytes
            return PayloadTooLarge(f"request tensor for backend {name} is too large: {details}")
        return BackendError(f"backend {name}: {details or 'resource exhausted'}")
    return BackendError(f"backend {name} failed: {code.name}")


class TFServingBackend(Backend):
    """TF Serving: ``PredictionService/Predict`` with ``tensor_content``; ``ModelService`` for readiness."""

    def __init__(self, cfg: BackendConfig, metrics: Metrics | None = None) -> None:
        super().__init__(cfg, metrics)
        # Predict answers are read from the raw bytes (kubevc.gateway._wire): no generated-message copies
        self._predict = self.channel.unary_unary(
            "/tensorflow.serving.PredictionService/Predict",
            request_serializer=None,  # requests are serialized by encode_predict_request
            response_deserializer=None,
        )
        self._status = model_service_pb2_grpc.ModelServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self._metadata = self.channel.unary_unary(
            "/tensorflow.serving.PredictionService/GetModelMetadata",
            request_serializer=get_model_metadata_pb2.GetModelMetadataRequest.SerializeToString,
            response_deserializer=get_model_metadata_pb2.GetModelMetadataResponse.FromString,
        )

    async def predict(
        self,
        model: str,
        inputs: dict[str, Array],
        *,
        signature: str = "",
        version: int | None = None,
        label: str | None = None,
        output_filter: list[str] | None = None,
        budget: float | None = None,
        info: dict[str, Any] | None = None,
    ) -> dict[str, Array]:
        spec = model_pb2.ModelSpec(name=model, signature_name=signature)
        if version is not None:
            spec.version.value = version
        elif label is not None:
            spec.version_label = label
        request = encode_predict_request(spec, inputs, output_filter)

        async def run(timeout: float) -> bytes:
            response: bytes = await self._predict(request, timeout=timeout)
            return response

        data = await self.call(run, budget)
        try:
            outputs, answered = read_predict_response(data, set(output_filter) if output_filter else None)
            if info is not None and answered.HasField("version"):
                info["version"] = answered.version.value
            return {name: from_tensor_proto(proto, content) for name, (proto, content) in outputs.items()}
        except (ValueError, DecodeError) as exc:  # WireError, bad submessages, shape mismatches
            raise BackendError(f"backend {self.cfg.name} sent an unreadable tensor: {exc}") from None

    async def model_ready(self, model: str, budget: float | None = None) -> bool:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = model

        async def run(timeout: float) -> get_model_status_pb2.GetModelStatusResponse:
            response: get_model_status_pb2.GetModelStatusResponse = await self._status.GetModelStatus(
                request, timeout=timeout
            )
            return response

        try:
            response = await self.call(run, budget)
        except GatewayError:
            return False
        available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return any(s.state == available for s in response.model_version_status)

    async def model_status(
        self, model: str, *, version: int | None = None, label: str | None = None, budget: float | None = None
    ) -> get_model_status_pb2.GetModelStatusResponse:
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=_spec(model, version, label))

        async def run(timeout: float) -> get_model_status_pb2.GetModelStatusResponse:
            response: get_model_status_pb2.GetModelStatusResponse = await self._status.GetModelStatus(
                request, timeout=timeout
            )
            return response

        return await self.call(run, budget)

    async def model_metadata(
        self, model: str, *, version: int | None = None, label: str | None = None, budget: float | None = None
    ) -> get_model_metadata_pb2.GetModelMetadataResponse | None:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=_spec(model, version, label), metadata_field=["signature_def"]
        )

        async def run(timeout: float) -> get_model_metadata_pb2.GetModelMetadataResponse:
            response: get_model_metadata_pb2.GetModelMetadataResponse = await self._metadata(
                request, timeout=timeout
            )
            return response

        return await self.call(run, budget)

    async def _read_signature(
        self, model: str, signature_name: str, *, version: int | None, label: str | None, budget: float | None
    ) -> Signature | None:
        response = await self.model_metadata(model, version=version, label=label, budget=budget)
        if response is None:
            return None
        signatures = get_model_metadata_pb2.SignatureDefMap()
        packed = response.metadata.get("signature_def")
        if packed is None or not packed.Unpack(signatures):
            raise BackendError(f"backend {self.cfg.name} sent no signature_def metadata for {model!r}")
        if signature_name not in signatures.signature_def:
            raise SignatureMismatch(
                f"model {model!r}: the backend has no signature {signature_name!r}"
                f" (it has {sorted(signatures.signature_def)})"
            )
        answered = response.model_spec.version.value if response.model_spec.HasField("version") else None
        return from_signature_def(
            signatures.signature_def[signature_name], f"GetModelMetadata {signature_name}", version=answered
        )

    async def version_ready(self, model: str, version: int, budget: float | None = None) -> bool:
        try:
            status = await self.model_status(model, version=version, budget=budget)
        except GatewayError:
            return False
        available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return any(s.version == version and s.state == available for s in status.model_version_status)


def _spec(model: str, version: int | None, label: str | None) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=model)
    if version is not None:
        spec.version.value = version
    elif label is not None:
        spec.version_label = label
    return spec


class V2Backend(Backend):
    """Open Inference Protocol v2 (MLServer, Triton): ``ModelInfer`` with raw tensor contents."""

    def __init__(self, cfg: BackendConfig, metrics: Metrics | None = None) -> None:
        super().__init__(cfg, metrics)
        self._stub = v2grpc.GRPCInferenceServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self._infer = self.channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=None,  # serialized by encode_model_infer_request
            response_deserializer=None,
        )

    async def predict(
        self,
        model: str,
        inputs: dict[str, Array],
        *,
        signature: str = "",
        version: int | None = None,
        label: str | None = None,
        output_filter: list[str] | None = None,
        budget: float | None = None,
        info: dict[str, Any] | None = None,
    ) -> dict[str, Array]:
        if label is not None:
            raise BadRequest("version labels are not supported by Open Inference Protocol backends")
        request = v2pb.ModelInferRequest(
            model_name=model, model_version="" if version is None else str(version)
        )
        contents: list[Array] = []
        for name, array in inputs.items():
            request.inputs.add(name=name, datatype=numpy_to_v2_datatype(array.dtype), shape=list(array.shape))
            if array.dtype.kind in "SUO":
                contents.append(np.frombuffer(pack_bytes(array), dtype=np.uint8))
            else:
                contents.append(np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False)))
        for name in output_filter or []:
            request.outputs.add(name=name)
        data = encode_model_infer_request(request, contents)  # each tensor's bytes copied once

        async def run(timeout: float) -> bytes:
            response: bytes = await self._infer(data, timeout=timeout)
            return response

        data = await self.call(run, budget)
        try:
            response, raw = read_model_infer_response(data)
            if info is not None and response.model_version:
                info["version"] = response.model_version
            return {
                out.name: from_v2_output(out, raw[i] if i < len(raw) else None)
                for i, out in enumerate(response.outputs)
            }
        except (ValueError, DecodeError, GatewayError) as exc:
            raise BackendError(f"backend {self.cfg.name} sent an unreadable tensor: {exc}") from None

    async def model_ready(self, model: str, budget: float | None = None) -> bool:
        async def run(timeout: float) -> v2pb.ModelReadyResponse:
            response: v2pb.ModelReadyResponse = await self._stub.ModelReady(
                v2pb.ModelReadyRequest(name=model), timeout=timeout
            )
            return response

        try:
            response = await self.call(run, budget)
        except GatewayError:
            return False
        return bool(response.ready)

    async def model_status(
        self, model: str, *, version: int | None = None, label: str | None = None, budget: float | None = None
    ) -> get_model_status_pb2.GetModelStatusResponse:
        """v2 has no version list with states: the asked version (or the default one, reported as
        version 0) is AVAILABLE when the server says it is ready, else UNKNOWN."""
        if label is not None:
            raise BadRequest("version labels are not supported by Open Inference Protocol backends")
        request = v2pb.ModelReadyRequest(name=model, version="" if version is None else str(version))

        async def run(timeout: float) -> v2pb.ModelReadyResponse:
            response: v2pb.ModelReadyResponse = await self._stub.ModelReady(request, timeout=timeout)
            return response

        ready = (await self.call(run, budget)).ready
        response = get_model_status_pb2.GetModelStatusResponse()
        status = response.model_version_status.add(version=version or 0)
        status.state = (
            get_model_status_pb2.ModelVersionStatus.AVAILABLE
            if ready
            else get_model_status_pb2.ModelVersionStatus.UNKNOWN
        )
        status.status.SetInParent()
        return response

    async def v2_metadata(
        self, model: str, *, version: int | None = None, budget: float | None = None
    ) -> v2pb.ModelMetadataResponse:
        """The Open Inference Protocol's ModelMetadata as the server answers it."""
        request = v2pb.ModelMetadataRequest(name=model, version="" if version is None else str(version))

        async def run(timeout: float) -> v2pb.ModelMetadataResponse:
            response: v2pb.ModelMetadataResponse = await self._stub.ModelMetadata(request, timeout=timeout)
            return response

        return await self.call(run, budget)

    async def _read_signature(
        self, model: str, signature_name: str, *, version: int | None, label: str | None, budget: float | None
    ) -> Signature | None:
        if label is not None:
            raise BadRequest("version labels are not supported by Open Inference Protocol backends")
        return from_v2_metadata(await self.v2_metadata(model, version=version, budget=budget))

    async def version_ready(self, model: str, version: int, budget: float | None = None) -> bool:
        request = v2pb.ModelReadyRequest(name=model, version=str(version))

        async def run(timeout: float) -> v2pb.ModelReadyResponse:
            response: v2pb.ModelReadyResponse = await self._stub.ModelReady(request, timeout=timeout)
            return response

        try:
            return bool((await self.call(run, budget)).ready)
        except GatewayError:
            return False


def make_backend(cfg: BackendConfig, metrics: Metrics | None = None) -> Backend:
    if cfg.protocol == "tfserving":
        return TFServingBackend(cfg, metrics)
    return V2Backend(cfg, metrics)
