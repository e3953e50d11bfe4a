"""A real gRPC model server for tests, demos and benchmarks.

:class:`TestBackend` serves TF Serving's ``PredictionService``/``ModelService`` and the Open
Inference Protocol v2 ``GRPCInferenceService`` with ``grpc.aio`` on a free loopback port; its
models are the numpy models of ``_models``. Errors follow TF Serving: unknown model NOT_FOUND,
wrong input name/shape/dtype INVALID_ARGUMENT.
Every call is counted in :attr:`TestBackend.calls` (``{(method, model): n}``);
:attr:`TestBackend.delay_seconds` slows every inference call down (deadline tests) and
:attr:`TestBackend.cancelled` counts the calls the client cancelled while they waited;
:attr:`TestBackend.fail_next` is a queue of gRPC status codes that the next inference calls
answer with (retry and error-mapping tests).

Use it from async code (``await backend.start()`` / ``await backend.stop()``) or from sync code
with :func:`run_test_backend`, which runs it on its own event loop in a thread. It listens on
``host`` (default 127.0.0.1; another address for benchmarks across network namespaces).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt

from kubevc.gateway._proto.inference import grpc_predict_v2_pb2 as v2pb
from kubevc.gateway._proto.inference import grpc_predict_v2_pb2_grpc as v2grpc
from kubevc.gateway._proto.tensorflow import meta_graph_pb2
from kubevc.gateway._proto.tensorflow_serving import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from kubevc.gateway._signature import tf_dtype_enum, v2_datatype_name
from kubevc.gateway._tensors import (
    from_tensor_proto,
    numpy_to_v2_datatype,
    pack_bytes,
    unpack_bytes,
    v2_datatype_to_numpy,
)
from kubevc.gateway._wire import encode_predict_response
from kubevc.gateway.testing._models import TestModel, default_models

__all__ = ["TestBackend", "run_test_backend"]

Array = npt.NDArray[Any]


class _InvalidArgument(Exception):
    pass


class TestBackend:
    """TF Serving PredictionService + ModelService and a v2 GRPCInferenceService, on one port."""

    __test__ = False

    def __init__(
        self,
        models: dict[str, TestModel] | None = None,
        *,
        max_message_bytes: int = 64 << 20,
        host: str = "127.0.0.1",
        metadata: bool = True,
    ):
        self.host = host
        self.metadata = metadata  # False: GetModelMetadata answers UNIMPLEMENTED (servers without it)
        self.models = default_models() if models is None else models
        self.calls: Counter[tuple[str, str]] = Counter()
        # every Predict/ModelInfer: (method, model, version asked, label asked, version that
        # answered or None when the request was refused)
        self.requests: list[tuple[str, str, int | None, str | None, int | None]] = []
        self.delay_seconds = 0.0
        self.fail_next: list[grpc.StatusCode] = []
        self.cancelled = 0
        self.received: dict[str, dict[str, str]] = {}  # model -> input -> dtype of its last request
        self.port = 0
        self._max = max_message_bytes
        self._server: grpc.aio.Server | None = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def inference_calls(self) -> int:
        """Predict + ModelInfer calls so far (status and metadata calls not counted)."""
        return sum(n for (method, _), n in self.calls.items() if method in ("Predict", "ModelInfer"))

    async def start(self, port: int = 0) -> int:
        opts = [
            ("grpc.max_send_message_length", self._max),
            ("grpc.max_receive_message_length", self._max),
        ]
        server = grpc.aio.server(options=opts)
        prediction = _Prediction(self)
        handlers = {
            # answers are written by encode_predict_response (one copy per output), not the generated
            # message (three), so the test backend serializes roughly like TF Serving's C++ does
            "Predict": grpc.unary_unary_rpc_method_handler(
                prediction.Predict,
                request_deserializer=predict_pb2.PredictRequest.FromString,
                response_serializer=None,
            ),
            "GetModelMetadata": grpc.unary_unary_rpc_method_handler(
                prediction.GetModelMetadata,
                request_deserializer=get_model_metadata_pb2.GetModelMetadataRequest.FromString,
                response_serializer=get_model_metadata_pb2.GetModelMetadataResponse.SerializeToString,
            ),
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("tensorflow.serving.PredictionService", handlers),)
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelStatus(self), server)  # type: ignore[no-untyped-call]
        v2grpc.add_GRPCInferenceServiceServicer_to_server(_V2(self), server)  # type: ignore[no-untyped-call]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.port = server.add_insecure_port(f"{host}:{port}")
        await server.start()
        self._server = server
        return self.port

    async def stop(self, grace: float | None = 0.5) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    # -- shared model logic -------------------------------------------------------------------
    def _model(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> tuple[TestModel, int]:
        """The model and the version a request resolves to; KeyError (NOT_FOUND) for unknown
        models and versions, ``_InvalidArgument`` for unknown labels, as TF Serving answers."""
        model = self.models.get(name)
        if model is None:
            raise KeyError(f"Servable not found for request: Latest({name})")
        if version is not None and version not in model.loaded:
            raise KeyError(f"Servable not found for request: Specific({name}, {version})")
        if label is not None:
            if label not in model.labels:
                raise _InvalidArgument(f"Unrecognized servable version label: {label}")
            version = model.labels[label]
        return model, model.version if version is None else version

    def run(self, model: TestModel, inputs: dict[str, Array]) -> dict[str, Array]:
        for name in inputs:
            if name not in model.inputs and name not in model.optional_inputs:
                raise _InvalidArgument(f"input tensor alias not found in signature: {name}")
        batch: int | None = None
        for name, shape in model.inputs.items():
            if name not in inputs:
                raise _InvalidArgument(f"missing input '{name}' (signature expects {sorted(model.inputs)})")
            arr = inputs[name]
            if not model.accepts(name, arr):
                accepted = [model.declared_dtype(name)] if model.strict else list(model.dtypes)
                raise _InvalidArgument(
                    f"Expects arg[0] '{name}' to be one of {accepted} but {arr.dtype.name} is provided"
                )
            if arr.ndim != len(shape) + 1 or tuple(arr.shape[1:]) != shape:
                raise _InvalidArgument(
                    f"input '{name}' must have shape [-1, {', '.join(map(str, shape))}],"
                    f" got {list(arr.shape)}"
                )
            batch = arr.shape[0] if batch is None else batch
            if arr.shape[0] != batch or batch == 0:
                raise _InvalidArgument(f"input '{name}': inconsistent or empty batch dimension")
        return model.fn(inputs)

    async def _infer(
        self, context: grpc.aio.ServicerContext[Any, Any], model: TestModel, inputs: dict[str, Array]
    ) -> dict[str, Array]:
        self.received[model.name] = {k: v.dtype.name for k, v in inputs.items()}
        if self.fail_next:
            code = self.fail_next.pop(0)
            await context.abort(code, f"injected {code.name} by the test backend")
        if self.delay_seconds:
            try:
                await asyncio.sleep(self.delay_seconds)
            except asyncio.CancelledError:  # the client gave up (deadline) and gRPC cancelled us
                self.cancelled += 1
                raise
        try:
            return await asyncio.to_thread(self.run, model, inputs)
        except _InvalidArgument as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise  # unreachable: abort raises


def _input_shapes(model: TestModel) -> list[tuple[str, tuple[int, ...]]]:
    """Inputs and optional inputs with their shapes without the batch dimension (an optional one
    takes the main input's sequence shape, as BERT's mask and type ids do)."""
    main = next(iter(model.inputs.values()), (-1,))
    return [*model.inputs.items(), *((n, model.inputs.get(n, main)) for n in model.optional_inputs)]


class _Prediction(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, owner: TestBackend) -> None:
        self.owner = owner

    async def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        spec = request.model_spec
        self.owner.calls["Predict", spec.name] += 1
        which = spec.WhichOneof("version_choice")
        asked_version = spec.version.value if which == "version" else None
        asked_label = spec.version_label if which == "version_label" else None
        try:
            model, version = self.owner._model(spec.name, asked_version, asked_label)
        except KeyError as exc:
            self.owner.requests.append(("Predict", spec.name, asked_version, asked_label, None))
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc.args[0]))
        except _InvalidArgument as exc:
            self.owner.requests.append(("Predict", spec.name, asked_version, asked_label, None))
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        self.owner.requests.append(("Predict", spec.name, asked_version, asked_label, version))
        if spec.signature_name not in ("", "serving_default"):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f'Serving signature name: "{spec.signature_name}" not found'
            )
        try:
            inputs = {k: from_tensor_proto(v) for k, v in request.inputs.items()}
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        outputs = await self.owner._infer(context, model, inputs)
        answered = model_pb2.ModelSpec(name=model.name, signature_name="serving_default")
        answered.version.value = version
        wanted = set(request.output_filter)
        return encode_predict_response(
            answered, {k: v for k, v in outputs.items() if not wanted or k in wanted}
        )

    async def GetModelMetadata(
        self,
        request: get_model_metadata_pb2.GetModelMetadataRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """The model's ``serving_default`` signature, shaped like a SavedModel's in TF Serving."""
        spec = request.model_spec
        self.owner.calls["GetModelMetadata", spec.name] += 1
        which = spec.WhichOneof("version_choice")
        try:
            model, version = self.owner._model(
                spec.name,
                spec.version.value if which == "version" else None,
                spec.version_label if which == "version_label" else None,
            )
        except KeyError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc.args[0]))
        except _InvalidArgument as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if not self.owner.metadata:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        if list(request.metadata_field) != ["signature_def"]:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "Metadata field signature_def is the only one supported"
            )
        sig = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
        for name, shape in _input_shapes(model):
            info = sig.inputs[name]
            info.name = f"serving_default_{name}:0"
            info.dtype = tf_dtype_enum(model.declared_dtype(name))
            for size in (-1, *shape):
                info.tensor_shape.dim.add(size=size)
        for i, (name, shape) in enumerate(model.outputs.items()):
            info = sig.outputs[name]
            info.name = f"StatefulPartitionedCall:{i}"
            info.dtype = tf_dtype_enum(model.output_dtypes.get(name, "float32"))
            for size in (-1, *shape):
                info.tensor_shape.dim.add(size=size)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        signatures.signature_def["serving_default"].CopyFrom(sig)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = version
        response.model_spec.signature_name = "serving_default"
        response.metadata["signature_def"].Pack(signatures)
        return response


class _ModelStatus(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, owner: TestBackend) -> None:
        self.owner = owner

    async def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> get_model_status_pb2.GetModelStatusResponse:
        self.owner.calls["GetModelStatus", request.model_spec.name] += 1
        model = self.owner.models.get(request.model_spec.name)
        if model is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {request.model_spec.name}"
            )
        spec = request.model_spec
        which = spec.WhichOneof("version_choice")
        versions = model.loaded
        if which == "version":
            if spec.version.value not in versions:
                await context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"Could not find version {spec.version.value} of model {spec.name}",
                )
            versions = (spec.version.value,)
        elif which == "version_label":
            if spec.version_label not in model.labels:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Unrecognized servable version label: {spec.version_label}",
                )
            versions = (model.labels[spec.version_label],)
        response = get_model_status_pb2.GetModelStatusResponse()
        for v in sorted(versions, reverse=True):  # TF Serving lists the newest first
            status = response.model_version_status.add()
            status.version = v
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
            status.status.SetInParent()  # error_code OK, as TF Serving always reports it
        return response


class _V2(v2grpc.GRPCInferenceServiceServicer):
    def __init__(self, owner: TestBackend) -> None:
        self.owner = owner

    async def ServerLive(self, request: Any, context: Any) -> v2pb.ServerLiveResponse:
        return v2pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> v2pb.ServerReadyResponse:
        return v2pb.ServerReadyResponse(ready=True)

    async def ModelReady(self, request: v2pb.ModelReadyRequest, context: Any) -> v2pb.ModelReadyResponse:
        self.owner.calls["ModelReady", request.name] += 1
        model = self.owner.models.get(request.name)
        loaded = model is not None and (
            not request.version or request.version in {str(v) for v in model.loaded}
        )
        return v2pb.ModelReadyResponse(ready=loaded)

    async def ModelMetadata(
        self, request: v2pb.ModelMetadataRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> v2pb.ModelMetadataResponse:
        model = self.owner.models.get(request.name)
        if model is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Model {request.name} not found")
        if request.version and request.version not in {str(v) for v in model.loaded}:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"Model {request.name} version {request.version} not found"
            )
        tensor = v2pb.ModelMetadataResponse.TensorMetadata
        return v2pb.ModelMetadataResponse(
            name=model.name,
            versions=[str(v) for v in model.loaded],
            platform="kubevc-testing",
            inputs=[
                tensor(name=n, datatype=v2_datatype_name(model.declared_dtype(n)), shape=[-1, *s])
                for n, s in _input_shapes(model)
            ],
            outputs=[
                tensor(
                    name=n, datatype=v2_datatype_name(model.output_dtypes.get(n, "float32")), shape=[-1, *s]
                )
                for n, s in model.outputs.items()
            ],
        )

    async def ModelInfer(
        self, request: v2pb.ModelInferRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> v2pb.ModelInferResponse:
        self.owner.calls["ModelInfer", request.model_name] += 1
        asked = int(request.model_version) if request.model_version.isdigit() else None
        try:
            if request.model_version and asked is None:
                raise KeyError(f"Model {request.model_name} version {request.model_version} not found")
            model, version = self.owner._model(request.model_name, asked)
        except KeyError as exc:
            self.owner.requests.append(("ModelInfer", request.model_name, asked, None, None))
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc.args[0]))
        self.owner.requests.append(("ModelInfer", request.model_name, asked, None, version))
        inputs: dict[str, Array] = {}
        try:
            for i, tensor in enumerate(request.inputs):
                raw = request.raw_input_contents[i]
                shape = tuple(tensor.shape)
                if tensor.datatype == "BYTES":
                    inputs[tensor.name] = unpack_bytes(raw, int(np.prod(shape))).reshape(shape)
                    continue
                dtype = v2_datatype_to_numpy(tensor.datatype)
                inputs[tensor.name] = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(shape)
        except (ValueError, IndexError, Exception) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad input tensor: {exc}")
        outputs = await self.owner._infer(context, model, inputs)
        wanted = [o.name for o in request.outputs]
        response = v2pb.ModelInferResponse(model_name=model.name, model_version=str(version), id=request.id)
        for name, arr in outputs.items():
            if wanted and name not in wanted:
                continue
            response.outputs.add(name=name, datatype=numpy_to_v2_datatype(arr.dtype), shape=list(arr.shape))
            response.raw_output_contents.append(
                pack_bytes(arr) if arr.dtype.kind in "SUO" else np.ascontiguousarray(arr).tobytes()
            )
        return response


@contextmanager
def run_test_backend(
    models: dict[str, TestModel] | None = None,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    metadata: bool = True,
) -> Iterator[TestBackend]:
    """Run a :class:`TestBackend` on its own event loop in a daemon thread (sync callers)."""
    backend = TestBackend(models, host=host, metadata=metadata)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    errors: list[BaseException] = []

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(backend.start(port))
        except BaseException as exc:  # reported to the caller below
            errors.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=main, name="kubevc-test-backend", daemon=True)
    thread.start()
    started.wait()
    if errors:
        raise errors[0]
    try:
        yield backend
    finally:
        asyncio.run_coroutine_threadsafe(backend.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
