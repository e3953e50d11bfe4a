"""The Litestar application: routes, request lifecycle, errors, metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from google.protobuf import json_format
from google.protobuf.message import Message
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath

from kubevc.gateway._backends import Backend, make_backend
from kubevc.gateway._canary import LabelRouter, is_unknown_label_error
from kubevc.gateway._config import ConfigError, GatewayConfig, ModelConfig
from kubevc.gateway._errors import (
    BackendError,
    BadRequest,
    GatewayError,
    GatewayTimeout,
    ModelNotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from kubevc.gateway._media import parse_multipart, parse_npy, parse_raw_tensor
from kubevc.gateway._metrics import CONTENT_TYPE_LATEST, Metrics
from kubevc.gateway._postprocess import model_detections, tensor_json, topk, yolo_detections
from kubevc.gateway._preprocess import Geometry, decode_image, decode_video, prepare_images
from kubevc.gateway._proto.tensorflow import meta_graph_pb2, types_pb2
from kubevc.gateway._proto.tensorflow_serving import get_model_metadata_pb2, model_pb2
from kubevc.gateway._rest import format_predict, parse_predict
from kubevc.gateway._tokenizer import WordPiece, load_wordpiece
from kubevc.gateway._v2json import HEADER_LENGTH, format_v2, parse_v2

__all__ = ["Gateway", "create_app"]

Array = npt.NDArray[Any]
log = logging.getLogger("kubevc.gateway")
JSON = "application/json"
REQUEST_ID = "x-request-id"
LABEL_HEADER = "X-Kubevc-Model-Version-Label"
VERSION_HEADER = "X-Kubevc-Model-Version"
IMAGE_TYPES = ("image/jpeg", "image/png")
VIDEO_TYPES = ("video/mp4", "video/webm", "video/quicktime", "video/x-matroska")
_ACCEPTS = {
    "image": [
        *IMAGE_TYPES,
        "multipart/form-data",
        *VIDEO_TYPES[:2],
        "application/x-npy",
        "application/octet-stream",
    ],
    "text": ["text/plain", "application/x-npy", "application/octet-stream"],
    "tensor": ["application/x-npy", "application/octet-stream"],
}


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


@dataclass
class Profile:
    """A configured model with its loaded labels and tokenizer."""

    cfg: ModelConfig
    labels: list[str]
    tokenizer: WordPiece | None
    dtypes: dict[str, str] = field(default_factory=dict)
    shape: tuple[int, ...] | None = None  # expected input shape without the batch dimension

    @classmethod
    def load(cls, cfg: ModelConfig) -> Profile:
        labels = list(cfg.output.labels)
        if cfg.output.labels_file:
            try:
                labels = Path(cfg.output.labels_file).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(f"models[{cfg.name}].output.labelsFile: {exc.strerror}") from None
        tokenizer = None
        inp = cfg.input
        dtypes: dict[str, str] = {inp.name: inp.dtype}
        shape: tuple[int, ...] | None = None
        if inp.kind == "text":
            assert inp.vocab_file is not None  # checked by the config model
            try:
                tokenizer = load_wordpiece(inp.vocab_file, inp.lowercase)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"models[{cfg.name}].input.vocabFile: {exc}") from None
            dtypes = {n: "int32" for n in (inp.name, inp.mask_name, inp.type_ids_name) if n}
            shape = (inp.sequence_length,)
        elif inp.kind == "image":
            shape = (inp.height, inp.width, 3) if inp.layout == "NHWC" else (3, inp.height, inp.width)
        return cls(cfg, labels, tokenizer, dtypes, shape)

    def check_shape(self, inputs: dict[str, Array], field: str) -> None:
        """400 (no backend call) when the main input's shape cannot be what an image/text model takes."""
        main = inputs.get(self.cfg.input.name)
        if self.shape is None or main is None or main.dtype.kind == "O":
            return
        if main.ndim != len(self.shape) + 1 or tuple(main.shape[1:]) != self.shape:
            raise BadRequest(
                f"{field}: shape {list(main.shape)} does not match the model input"
                f" [-1, {', '.join(map(str, self.shape))}]"
            )


class Gateway:
    """State shared by the routes: config, profiles, backends, metrics."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.profiles = {m.name: Profile.load(m) for m in config.models}
        self.backends: dict[str, Backend] = {}
        self.router = LabelRouter()

    async def startup(self) -> None:
        for cfg in self.config.backends:
            self.backends[cfg.name] = make_backend(cfg, self.metrics)
        for name in self.profiles:
            self.metrics.model_available.labels(name).set(0)

    async def shutdown(self) -> None:
        for backend in self.backends.values():
            await backend.close()
        self.backends.clear()

    # -- helpers ----------------------------------------------------------------------------------
    def profile(self, name: str) -> Profile:
        profile = self.profiles.get(name)
        if profile is None:
            raise ModelNotFound(f"model {name!r} is not configured")
        return profile

    def backend_for(self, profile: Profile) -> Backend:
        return self.backends[profile.cfg.backend]

    async def read_body(self, request: Request[Any, Any, Any], model: str) -> bytes:
        """The request body, refusing more than maxBodyBytes by Content-Length and while streaming."""
        limit = self.config.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise BadRequest("Content-Length is not an integer") from None
            if size > limit:
                raise PayloadTooLarge(f"body of {size} bytes is above the limit of {limit} bytes")
        chunks: list[bytes] = []
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(f"body is above the limit of {limit} bytes")
            chunks.append(chunk)
        self.metrics.request_bytes.labels(model).inc(total)
        return b"".join(chunks)

    @contextmanager
    def stage(self, model: str, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.metrics.duration.labels(model, name).observe(time.perf_counter() - start)

    def remaining(self, started: float) -> float:
        return max(0.001, self.config.limits.request_timeout_seconds - (time.perf_counter() - started))

    async def handle(
        self,
        request: Request[Any, Any, Any],
        model: str,
        route: str,
        fn: Callable[[float], Awaitable[Response[bytes]]],
    ) -> Response[bytes]:
        """Run a route under the request budget; every error becomes a short JSON answer."""
        started = time.perf_counter()
        metric_model = model if model in self.profiles else "unknown"
        try:
            async with asyncio.timeout(self.config.limits.request_timeout_seconds):
                response = await fn(started)
        except TimeoutError:
            response = error_response(GatewayTimeout("request took longer than requestTimeoutSeconds"))
        except GatewayError as exc:
            response = error_response(exc)
        except Exception:
            log.exception("unhandled error", extra={"model": model, "route": route})
            response = error_response(GatewayError("internal error", 500))
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

    # -- TF Serving REST ----------------------------------------------------------------------------
    async def predict(
        self,
        request: Request[Any, Any, Any],
        profile: Profile,
        version: int | None,
        label: str | None,
        started: float,
    ) -> Response[bytes]:
        body = await self.read_body(request, profile.cfg.name)
        model = profile.cfg.name
        with self.stage(model, "decode"):

            def decode() -> tuple[dict[str, Array], bool, str | None]:
                try:
                    doc = orjson.loads(body)
                except orjson.JSONDecodeError:
                    raise BadRequest("body is not valid JSON") from None
                return parse_predict(doc, profile.cfg.input.name, profile.dtypes)

            # large JSON tensors take a while to parse: keep the event loop free meanwhile
            inputs, columnar, signature = await asyncio.to_thread(decode) if len(body) > 1 << 18 else decode()
        profile.check_shape(inputs, "inputs" if columnar else "instances")
        info: dict[str, Any] = {}
        outputs = await self.call_backend(
            profile,
            inputs,
            started,
            version=version,
            label=label,
            signature=signature,
            request_id=request.headers.get(REQUEST_ID),
            info=info,
        )
        with self.stage(model, "postprocess"):
            payload = format_predict(outputs, columnar)
            data = await asyncio.to_thread(_dumps, payload) if _big(outputs) else _dumps(payload)
        return Response(data, media_type=JSON, headers=_version_headers(info))

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
        canary = profile.cfg.canary
        routed = canary is not None and version is None and label is None
        info = {} if info is None else info
        with self.stage(name, "backend"):
            for _ in range(3):  # canary -> stable -> default version, as labels turn out missing
                if routed:
                    assert canary is not None
                    label = self.router.choose(name, canary, request_id)
                try:
                    outputs = await backend.predict(
                        profile.cfg.remote_name,
                        inputs,
                        signature=signature or profile.cfg.signature,
                        version=version,
                        label=label,
                        output_filter=output_filter,
                        budget=self.remaining(started),
                        info=info,
                    )
                except BadRequest as exc:
                    if not (routed and label is not None and is_unknown_label_error(exc.message)):
                        raise
                    log.warning("version label missing", extra={"model": name, "label": label})
                    self.router.mark_missing(name, label)
                    continue
                info["label"] = label
                if label is not None:
                    self.metrics.version_label.labels(name, label).inc()
                return outputs
        raise BackendError(f"model {name!r}: no usable version label")  # pragma: no cover - 3 labels at most

    # -- media ------------------------------------------------------------------------------------
    async def infer(
        self, request: Request[Any, Any, Any], profile: Profile, started: float
    ) -> Response[bytes]:
        cfg = profile.cfg
        kind = cfg.input.kind
        ctype_full = request.headers.get("content-type", "")
        ctype = ctype_full.split(";")[0].strip().lower()
        if ctype not in _ACCEPTS[kind]:
            raise UnsupportedMediaType(
                f"model {cfg.name!r} ({kind}) accepts {', '.join(_ACCEPTS[kind])},"
                f" not {ctype or 'no Content-Type'}"
            )
        body = await self.read_body(request, cfg.name)
        if not body:
            raise BadRequest("empty body")
        limits = self.config.limits
        geometries: list[Geometry] = []
        times: list[float] | None = None
        inputs: dict[str, Array]
        if ctype in IMAGE_TYPES or ctype == "multipart/form-data" or ctype in VIDEO_TYPES:
            target = (cfg.input.width, cfg.input.height)
            with self.stage(cfg.name, "decode"):
                if ctype in VIDEO_TYPES:
                    images, times = await asyncio.to_thread(
                        decode_video,
                        body,
                        cfg.input.video_fps,
                        limits.max_video_frames,
                        limits.max_image_pixels,
                    )
                else:
                    if ctype == "multipart/form-data":
                        parts = [p for p in parse_multipart(body, ctype_full) if p[0] in IMAGE_TYPES]
                        if not parts:
                            raise BadRequest("multipart body has no image/jpeg or image/png part")
                        if len(parts) > limits.max_video_frames:
                            raise PayloadTooLarge(
                                f"more than {limits.max_video_frames} images in one request"
                            )
                    else:
                        parts = [(ctype, body)]
                    images = await asyncio.to_thread(
                        lambda: [
                            decode_image(
                                d, t, limits.max_image_pixels, target=target, resize=cfg.input.resize
                            )
                            for t, d in parts
                        ]
                    )
            with self.stage(cfg.name, "preprocess"):
                tensor, geometries = await asyncio.to_thread(prepare_images, images, cfg.input)
                # geometry must describe the original image, not the (maybe DCT-downscaled) decode
                if ctype in IMAGE_TYPES or ctype == "multipart/form-data":
                    geometries = _rescale(geometries, parts)
            inputs = {cfg.input.name: tensor}
        elif ctype == "text/plain":
            with self.stage(cfg.name, "decode"):
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    raise BadRequest("text/plain body is not UTF-8") from None
            with self.stage(cfg.name, "preprocess"):
                assert profile.tokenizer is not None
                ids, mask = profile.tokenizer.encode(text, cfg.input.sequence_length)
                inputs = {cfg.input.name: ids[None]}
                if cfg.input.mask_name:
                    inputs[cfg.input.mask_name] = mask[None]
                if cfg.input.type_ids_name:
                    inputs[cfg.input.type_ids_name] = np.zeros_like(ids)[None]
        else:
            with self.stage(cfg.name, "decode"):
                if ctype == "application/x-npy":
                    arr = parse_npy(body)
                else:
                    arr = parse_raw_tensor(
                        body, request.headers.get("x-tensor-dtype"), request.headers.get("x-tensor-shape")
                    )
            inputs = {cfg.input.name: arr}
            profile.check_shape(inputs, "body")
            w, h = cfg.input.width, cfg.input.height
            geometries = [Geometry(w, h, 1.0, 1.0, 0.0, 0.0)]
        out_name = cfg.output.name
        output_filter = [out_name] if out_name and cfg.output.postprocess != "none" else None
        if cfg.output.postprocess == "detections":
            output_filter = cfg.output.detection_outputs
        info: dict[str, Any] = {}
        outputs = await self.call_backend(
            profile,
            inputs,
            started,
            output_filter=output_filter,
            request_id=request.headers.get(REQUEST_ID),
            info=info,
        )
        with self.stage(cfg.name, "postprocess"):
            result = self.postprocess(profile, outputs, geometries, times)
            data = _dumps(result)
        return Response(data, media_type=JSON, headers=_version_headers(info))

    def postprocess(
        self,
        profile: Profile,
        outputs: dict[str, Array],
        geometries: list[Geometry],
        times: list[float] | None,
    ) -> dict[str, Any]:
        out = profile.cfg.output
        name = profile.cfg.name
        if out.postprocess == "none":
            chosen = outputs if out.name is None else {out.name: _pick(outputs, out.name)}
            return {"model": name, "outputs": {k: tensor_json(v) for k, v in chosen.items()}}
        results: list[dict[str, Any]]
        if out.postprocess == "detections":
            return {"model": name, "results": self.model_detections(profile, outputs, geometries, times)}
        arr = _pick(outputs, out.name)
        if out.postprocess == "topk":
            if arr.dtype.kind not in "fiu" or arr.ndim < 1:
                raise BackendError(f"output {out.name!r} is not a numeric tensor")
            results = [
                {"classes": c} for c in topk(arr if arr.ndim > 1 else arr[None], out.top_k, profile.labels)
            ]
        else:
            if arr.ndim not in (2, 3) or arr.shape[-1] < 6:
                raise BackendError(f"output {out.name!r} has shape {list(arr.shape)}, not YOLO rows")
            batch = arr.shape[0] if arr.ndim == 3 else 1
            geometries = _per_image(profile, geometries, batch)
            dets = yolo_detections(
                arr,
                geometries,
                (profile.cfg.input.width, profile.cfg.input.height),
                confidence=out.confidence_threshold,
                iou=out.iou_threshold,
                max_detections=out.max_detections,
                labels=profile.labels,
            )
            results = [
                {"width": g.width, "height": g.height, "detections": d}
                for d, g in zip(dets, geometries, strict=True)
            ]
        if times is not None:
            for item, t in zip(results, times, strict=False):
                item["time"] = t
        return {"model": name, "results": results}

    def model_detections(
        self,
        profile: Profile,
        outputs: dict[str, Array],
        geometries: list[Geometry],
        times: list[float] | None,
    ) -> list[dict[str, Any]]:
        """``postprocess: detections``: a model that ran NMS itself (TF detection exports)."""
        out = profile.cfg.output
        boxes = _pick(outputs, out.boxes_name)
        num = _pick(outputs, out.num_detections_name) if out.num_detections_name else None
        batch = boxes.shape[0] if boxes.ndim == 3 else 1
        geometries = _per_image(profile, geometries, batch)
        try:
            dets = model_detections(
                boxes,
                _pick(outputs, out.scores_name),
                _pick(outputs, out.classes_name),
                num,
                geometries,
                (profile.cfg.input.width, profile.cfg.input.height),
                box_format=out.box_format,
                box_units=out.box_units,
                confidence=out.confidence_threshold,
                max_detections=out.max_detections,
                labels=profile.labels,
            )
        except ValueError as exc:
            raise BackendError(f"model {profile.cfg.name!r}: detection outputs unusable: {exc}") from None
        results = [
            {"width": g.width, "height": g.height, "detections": d}
            for d, g in zip(dets, geometries, strict=True)
        ]
        if times is not None:
            for item, t in zip(results, times, strict=False):
                item["time"] = t
        return results

    # -- Open Inference Protocol v2 -----------------------------------------------------------------
    async def v2_infer(
        self, request: Request[Any, Any, Any], profile: Profile, version: str | None, started: float
    ) -> Response[bytes]:
        body = await self.read_body(request, profile.cfg.name)
        with self.stage(profile.cfg.name, "decode"):
            req = parse_v2(body, request.headers.get(HEADER_LENGTH))
            profile.check_shape(
                req.inputs,
                f"inputs[{list(req.inputs).index(profile.cfg.input.name)}]"
                if profile.cfg.input.name in req.inputs
                else "inputs",
            )
        v = None
        if version:
            try:
                v = int(version)
            except ValueError:
                raise BadRequest(f"version {version!r} is not an integer") from None
        info: dict[str, Any] = {}
        outputs = await self.call_backend(
            profile,
            req.inputs,
            started,
            version=v,
            output_filter=req.outputs or None,
            request_id=request.headers.get(REQUEST_ID),
            info=info,
        )
        with self.stage(profile.cfg.name, "postprocess"):
            data, header_len = format_v2(profile.cfg.name, version or "", req, outputs)
        headers = _version_headers(info)
        if header_len is None:
            return Response(data, media_type=JSON, headers=headers)
        headers["Inference-Header-Content-Length"] = str(header_len)
        return Response(data, media_type="application/octet-stream", headers=headers)

    def v2_metadata(self, profile: Profile) -> dict[str, Any]:
        inp = profile.cfg.input
        dt = {"uint8": "UINT8", "float32": "FP32", "int32": "INT32"}
        inputs = [
            {
                "name": n,
                "datatype": dt[d],
                "shape": [-1, *(profile.shape or ())] if n == inp.name else [-1, -1],
            }
            for n, d in profile.dtypes.items()
        ]
        out = profile.cfg.output
        names = out.detection_outputs if out.postprocess == "detections" else [out.name] if out.name else []
        outputs = [{"name": n, "datatype": "FP32", "shape": [-1]} for n in names]
        return {
            "name": profile.cfg.name,
            "versions": [],
            "platform": "kubevc-gateway",
            "inputs": inputs,
            "outputs": outputs,
        }

    # -- TF Serving REST model status and metadata ---------------------------------------------------
    async def model_status(self, profile: Profile, version: int | None, label: str | None) -> Response[bytes]:
        """``GET /v1/models/{name}[/versions/N|/labels/L]``: TF Serving's GetModelStatus as its REST
        API shows it (``model_version_status`` with versions as strings and enum names)."""
        status = await self.backend_for(profile).model_status(
            profile.cfg.remote_name, version=version, label=label, budget=self.backend_budget(profile)
        )
        return Response(_dumps(_pb_json(status)), media_type=JSON)

    async def model_metadata(
        self, profile: Profile, version: int | None, label: str | None
    ) -> Response[bytes]:
        """``GET /v1/models/{name}[/versions/N|/labels/L]/metadata``: the backend's signature_def
        (TF Serving GetModelMetadata); from the gateway profile when the backend has no such call."""
        backend = self.backend_for(profile)
        response: get_model_metadata_pb2.GetModelMetadataResponse | None
        try:
            response = await backend.model_metadata(
                profile.cfg.remote_name, version=version, label=label, budget=self.backend_budget(profile)
            )
        except GatewayError as exc:
            if exc.grpc_code != "UNIMPLEMENTED":
                raise
            response = None
        spec = model_pb2.ModelSpec(name=profile.cfg.name)
        if response is None:  # Open Inference Protocol backend, or a server without GetModelMetadata
            if version is not None:
                spec.version.value = version
            elif label is not None:
                spec.version_label = label
            signatures = profile_signature(profile)
        else:
            spec.CopyFrom(response.model_spec)
            spec.name = profile.cfg.name  # the name the client knows the model by
            signatures = get_model_metadata_pb2.SignatureDefMap()
            packed = response.metadata.get("signature_def")
            if packed is None or not packed.Unpack(signatures):
                raise BackendError(f"backend {backend.cfg.name} sent no signature_def metadata")
        doc = {"model_spec": _pb_json(spec), "metadata": {"signature_def": _pb_json(signatures)}}
        return Response(_dumps(doc), media_type=JSON)

    def backend_budget(self, profile: Profile) -> float:
        return min(self.backend_for(profile).cfg.deadline_seconds, self.config.limits.request_timeout_seconds)

    async def ready(self) -> dict[str, bool]:
        async def one(p: Profile) -> bool:
            ok = await self.backend_for(p).model_ready(p.cfg.remote_name, budget=2.0)
            self.metrics.model_available.labels(p.cfg.name).set(1 if ok else 0)
            return ok

        names = list(self.profiles)
        states = await asyncio.gather(*(one(self.profiles[n]) for n in names))
        return dict(zip(names, states, strict=True))


def _rescale(geometries: list[Geometry], parts: list[tuple[str, bytes]]) -> list[Geometry]:
    """Geometry of a DCT-downscaled decode -> geometry relative to the original image size."""
    from kubevc.gateway._preprocess import image_size

    out = []
    for g, (ctype, data) in zip(geometries, parts, strict=True):
        w, h, _ = image_size(data, ctype)
        if (w, h) == (g.width, g.height):
            out.append(g)
            continue
        fx, fy = g.width / w, g.height / h
        out.append(Geometry(w, h, g.scale_x * fx, g.scale_y * fy, g.pad_x, g.pad_y))
    return out


_TF_DTYPES = {"uint8": types_pb2.DT_UINT8, "float32": types_pb2.DT_FLOAT, "int32": types_pb2.DT_INT32}


def profile_signature(profile: Profile) -> get_model_metadata_pb2.SignatureDefMap:
    """The signature the gateway's profile implies: its inputs with their dtypes and shapes, the
    outputs it post-processes (shape unknown)."""
    cfg = profile.cfg
    sig = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    for name, dtype in profile.dtypes.items():
        info = sig.inputs[name]
        info.name, info.dtype = name, _TF_DTYPES[dtype]
        for size in (-1, *(profile.shape or (-1,))):
            info.tensor_shape.dim.add(size=size)
    out = cfg.output
    outputs = out.detection_outputs if out.postprocess == "detections" else [out.name] if out.name else []
    for name in outputs:
        info = sig.outputs[name]
        info.name, info.dtype = name, types_pb2.DT_FLOAT
        info.tensor_shape.unknown_rank = True
    result = get_model_metadata_pb2.SignatureDefMap()
    result.signature_def[cfg.signature].CopyFrom(sig)
    return result


def _pb_json(message: Message) -> dict[str, Any]:
    """A message as TF Serving's REST API prints it: proto field names, defaults included."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _version_headers(info: dict[str, Any]) -> dict[str, str]:
    headers = {}
    if info.get("label"):
        headers[LABEL_HEADER] = str(info["label"])
    if info.get("version") is not None:
        headers[VERSION_HEADER] = str(info["version"])
    return headers


def _per_image(profile: Profile, geometries: list[Geometry], batch: int) -> list[Geometry]:
    """One geometry per image; a raw tensor batch shares the identity geometry."""
    if not geometries:
        w, h = profile.cfg.input.width, profile.cfg.input.height
        geometries = [Geometry(w, h, 1.0, 1.0, 0.0, 0.0)]
    return [geometries[min(i, len(geometries) - 1)] for i in range(batch)]


def _pick(outputs: dict[str, Array], name: str | None) -> Array:
    if name is None:
        if len(outputs) != 1:
            raise BackendError(f"backend returned outputs {sorted(outputs)}; set output.name to choose one")
        return next(iter(outputs.values()))
    if name not in outputs:
        raise BackendError(f"backend response has no output {name!r} (has {sorted(outputs)})")
    return outputs[name]


def _big(outputs: dict[str, Array]) -> bool:
    return sum(v.size for v in outputs.values()) > 100_000


def error_response(exc: GatewayError) -> Response[bytes]:
    return Response(_dumps(exc.to_dict()), status_code=exc.status_code, media_type=JSON)


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else "error"
    return error_response(GatewayError(message, exc.status_code))


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
    return error_response(GatewayError("internal error", 500))


def _parse_v1(rest: str) -> tuple[str, str, int | None, str | None]:
    """``name[:predict]``, ``name/versions/3:predict``, ``name/labels/x:predict``, ``name/infer``."""
    rest = rest.lstrip("/")
    if rest.endswith("/infer"):
        name = rest[: -len("/infer")]
        if "/" in name or not name:
            raise ModelNotFound(f"no route /v1/models/{rest}")
        return name, "infer", None, None
    if not rest.endswith(":predict"):
        raise ModelNotFound(f"no route /v1/models/{rest} (use :predict or /infer)")
    path = rest[: -len(":predict")]
    parts = path.split("/")
    if len(parts) == 1 and parts[0]:
        return parts[0], "predict", None, None
    if len(parts) == 3 and parts[1] == "versions":
        try:
            return parts[0], "predict", int(parts[2]), None
        except ValueError:
            raise BadRequest(f"version {parts[2]!r} is not an integer") from None
    if len(parts) == 3 and parts[1] == "labels" and parts[2]:
        return parts[0], "predict", None, parts[2]
    raise ModelNotFound(f"no route /v1/models/{rest}")


def _parse_v1_get(rest: str) -> tuple[str, str, int | None, str | None]:
    """``name``, ``name/versions/3``, ``name/labels/x``, each optionally with ``/metadata``."""
    if rest.endswith(("/infer", ":predict", ":classify", ":regress")):
        raise GatewayError(f"/v1/models/{rest.lstrip('/')} takes POST", 405)
    parts = rest.strip("/").split("/")
    route = "status"
    if len(parts) in (2, 4) and parts[-1] == "metadata":
        route, parts = "metadata", parts[:-1]
    if len(parts) == 1 and parts[0]:
        return parts[0], route, None, None
    if len(parts) == 3 and parts[1] == "versions":
        try:
            return parts[0], route, int(parts[2]), None
        except ValueError:
            raise BadRequest(f"version {parts[2]!r} is not an integer") from None
    if len(parts) == 3 and parts[1] == "labels" and parts[2]:
        return parts[0], route, None, parts[2]
    raise ModelNotFound(f"no route GET /v1/models/{rest}")


def create_app(config: GatewayConfig) -> Litestar:
    """The Litestar app for ``config``; gRPC channels open at startup and close at shutdown."""
    gw = Gateway(config)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await gw.startup()
        try:
            yield
        finally:
            await gw.shutdown()

    @get("/healthz", sync_to_thread=False)
    def healthz() -> Response[bytes]:
        return Response(b'{"status":"ok"}', media_type=JSON)

    @get("/readyz")
    async def readyz() -> Response[bytes]:
        models = await gw.ready()
        ok = all(models.values())
        return Response(
            _dumps({"ready": ok, "models": models}), status_code=200 if ok else 503, media_type=JSON
        )

    @get("/metrics", sync_to_thread=False)
    def metrics() -> Response[bytes]:
        return Response(gw.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @post("/v1/models/{rest:path}", status_code=200)
    async def v1(request: Request[Any, Any, Any], rest: FromPath[str]) -> Response[bytes]:
        try:
            name, route, version, label = _parse_v1(rest)
        except GatewayError as exc:
            return await gw.handle(request, "unknown", "v1", _raise(exc))
        if name not in gw.profiles:
            return await gw.handle(
                request, name, route, _raise(ModelNotFound(f"model {name!r} is not configured"))
            )
        profile = gw.profiles[name]
        if route == "infer":
            return await gw.handle(request, name, route, lambda t0: gw.infer(request, profile, t0))
        return await gw.handle(
            request, name, route, lambda t0: gw.predict(request, profile, version, label, t0)
        )

    @get("/v1/models/{rest:path}")
    async def v1_get(request: Request[Any, Any, Any], rest: FromPath[str]) -> Response[bytes]:
        try:
            name, route, version, label = _parse_v1_get(rest)
        except GatewayError as exc:
            return await gw.handle(request, "unknown", "v1", _raise(exc))
        profile = gw.profiles.get(name)
        if profile is None:
            return await gw.handle(
                request, name, route, _raise(ModelNotFound(f"model {name!r} is not configured"))
            )
        if route == "metadata":
            return await gw.handle(
                request, name, route, lambda t0: gw.model_metadata(profile, version, label)
            )
        return await gw.handle(request, name, route, lambda t0: gw.model_status(profile, version, label))

    @get("/v2/health/live", sync_to_thread=False)
    def v2_live() -> Response[bytes]:
        return Response(b'{"live":true}', media_type=JSON)

    @get("/v2/health/ready")
    async def v2_ready() -> Response[bytes]:
        ok = all((await gw.ready()).values())
        return Response(_dumps({"ready": ok}), status_code=200 if ok else 503, media_type=JSON)

    @get("/v2", sync_to_thread=False)
    def v2_server() -> Response[bytes]:
        return Response(
            _dumps({"name": "kubevc-gateway", "version": "0.1.0", "extensions": ["binary_tensor_data"]}),
            media_type=JSON,
        )

    @get("/v2/models/{name:str}", sync_to_thread=False)
    def v2_model(name: FromPath[str]) -> Response[bytes]:
        profile = gw.profiles.get(name)
        if profile is None:
            return error_response(ModelNotFound(f"model {name!r} is not configured"))
        return Response(_dumps(gw.v2_metadata(profile)), media_type=JSON)

    @get("/v2/models/{name:str}/ready")
    async def v2_model_ready(name: FromPath[str]) -> Response[bytes]:
        profile = gw.profiles.get(name)
        if profile is None:
            return error_response(ModelNotFound(f"model {name!r} is not configured"))
        ok = await gw.backend_for(profile).model_ready(profile.cfg.remote_name, budget=2.0)
        return Response(_dumps({"name": name, "ready": ok}), status_code=200 if ok else 503, media_type=JSON)

    async def _v2(request: Request[Any, Any, Any], name: str, version: str | None) -> Response[bytes]:
        profile = gw.profiles.get(name)
        if profile is None:
            return await gw.handle(
                request, name, "v2", _raise(ModelNotFound(f"model {name!r} is not configured"))
            )
        return await gw.handle(request, name, "v2", lambda t0: gw.v2_infer(request, profile, version, t0))

    @post("/v2/models/{name:str}/infer", status_code=200)
    async def v2_infer(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
        return await _v2(request, name, None)

    @post("/v2/models/{name:str}/versions/{version:str}/infer", status_code=200)
    async def v2_infer_version(
        request: Request[Any, Any, Any], name: FromPath[str], version: FromPath[str]
    ) -> Response[bytes]:
        return await _v2(request, name, version)

    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            metrics,
            v1,
            v1_get,
            v2_live,
            v2_ready,
            v2_server,
            v2_model,
            v2_model_ready,
            v2_infer,
            v2_infer_version,
        ],
        lifespan=[lifespan],
        exception_handlers={HTTPException: _http_exception, Exception: _internal},
        request_max_body_size=None,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
    app.state.gateway = gw
    return app


def _raise(exc: GatewayError) -> Callable[[float], Awaitable[Response[bytes]]]:
    async def fn(started: float) -> Response[bytes]:
        raise exc

    return fn
