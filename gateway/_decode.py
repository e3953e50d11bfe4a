"""Where a request becomes tensors: an HTTP body, by media type, -> the model's named input arrays.

* ``/v1/models/{name}/infer``: JPEG/PNG images (one, or several as multipart), video, UTF-8 text,
  ``.npy`` or raw tensor bytes -> the profile's input tensor(s), plus the geometry of each image
  (to map boxes back) and the time of each video frame.
* ``/v1/models/{name}:predict``: TF Serving REST JSON -> named arrays (``_rest``).
* ``/v2/models/{name}/infer``: Open Inference Protocol JSON or binary tensors -> named arrays (``_v2json``).

The work is timed per stage (``decode``, ``preprocess``) through the ``stage`` callable the caller
hands in; the CPU-heavy parts run in worker threads so the event loop stays free.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from kubevc.gateway._config import LimitsConfig
from kubevc.gateway._errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from kubevc.gateway._media import parse_multipart, parse_npy, parse_raw_tensor
from kubevc.gateway._preprocess import Geometry, decode_image, decode_video, image_size, prepare_images
from kubevc.gateway._profile import Profile
from kubevc.gateway._rest import parse_predict
from kubevc.gateway._v2json import V2Request, parse_v2

__all__ = [
    "ACCEPTS",
    "IMAGE_TYPES",
    "VIDEO_TYPES",
    "DecodedInfer",
    "Stage",
    "accepted_media_type",
    "decode_infer",
    "decode_predict",
    "decode_v2",
    "media_type",
]

Array = npt.NDArray[Any]
Stage = Callable[[str], AbstractContextManager[None]]  # stage name -> a context that times it

IMAGE_TYPES = ("image/jpeg", "image/png")
VIDEO_TYPES = ("video/mp4", "video/webm", "video/quicktime", "video/x-matroska")
ACCEPTS = {
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
# Names clients send for a type the gateway knows under another: image/jpg is common (and wrong).
_ALIASES = {"image/jpg": "image/jpeg"}
_THREAD_JSON_BYTES = 1 << 18  # larger JSON bodies are parsed in a worker thread


def media_type(content_type: str) -> str:
    """The media type of a Content-Type value, lower case, without parameters, aliases resolved."""
    ctype = content_type.split(";")[0].strip().lower()
    return _ALIASES.get(ctype, ctype)


def accepted_media_type(profile: Profile, content_type: str) -> str:
    """The request's media type, or 415 when the model's input kind does not take it."""
    kind = profile.cfg.input.kind
    ctype = media_type(content_type)
    if ctype not in ACCEPTS[kind]:
        raise UnsupportedMediaType(
            f"model {profile.cfg.name!r} ({kind}) accepts {', '.join(ACCEPTS[kind])},"
            f" not {ctype or 'no Content-Type'}"
        )
    return ctype


@dataclass
class DecodedInfer:
    """An ``/infer`` body as model inputs, with what post-processing needs to map results back."""

    inputs: dict[str, Array]
    geometries: list[Geometry]  # per image: original size and the resize applied (empty: text)
    times: list[float] | None  # per video frame: its time in seconds (None: not a video)


async def decode_infer(
    profile: Profile,
    body: bytes,
    content_type: str,
    headers: Mapping[str, str],
    limits: LimitsConfig,
    stage: Stage,
) -> DecodedInfer:
    """An ``/infer`` body of media type ``accepted_media_type(profile, content_type)`` -> inputs.

    ``headers`` holds ``x-tensor-dtype``/``x-tensor-shape`` for raw tensor bodies."""
    if not body:
        raise BadRequest("empty body")
    cfg = profile.cfg
    ctype = media_type(content_type)
    if ctype in IMAGE_TYPES or ctype == "multipart/form-data" or ctype in VIDEO_TYPES:
        return await _decode_images(profile, body, ctype, content_type, limits, stage)
    if ctype == "text/plain":
        with stage("decode"):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest("text/plain body is not UTF-8") from None
        with stage("preprocess"):
            assert profile.tokenizer is not None
            ids, mask = profile.tokenizer.encode(text, cfg.input.sequence_length)
            inputs = {cfg.input.name: ids[None]}
            if cfg.input.mask_name:
                inputs[cfg.input.mask_name] = mask[None]
            if cfg.input.type_ids_name:
                inputs[cfg.input.type_ids_name] = np.zeros_like(ids)[None]
        return DecodedInfer(inputs, [], None)
    with stage("decode"):
        if ctype == "application/x-npy":
            arr = parse_npy(body)
        else:
            arr = parse_raw_tensor(body, headers.get("x-tensor-dtype"), headers.get("x-tensor-shape"))
    inputs = {cfg.input.name: arr}
    profile.check_shape(inputs, "body")
    w, h = cfg.input.width, cfg.input.height
    return DecodedInfer(inputs, [Geometry(w, h, 1.0, 1.0, 0.0, 0.0)], None)


async def _decode_images(
    profile: Profile, body: bytes, ctype: str, content_type: str, limits: LimitsConfig, stage: Stage
) -> DecodedInfer:
    """Images (one, a multipart of several, or video frames) -> one batch tensor."""
    cfg = profile.cfg
    target = (cfg.input.width, cfg.input.height)
    times: list[float] | None = None
    parts: list[tuple[str, bytes]] = []
    with stage("decode"):
        if ctype in VIDEO_TYPES:
            images, times = await asyncio.to_thread(
                decode_video, body, cfg.input.video_fps, limits.max_video_frames, limits.max_image_pixels
            )
        else:
            if ctype == "multipart/form-data":
                parts = [(media_type(t), d) for t, d in parse_multipart(body, content_type)]
                parts = [(t, d) for t, d in parts if t in IMAGE_TYPES]
                if not parts:
                    raise BadRequest("multipart body has no image/jpeg or image/png part")
                if len(parts) > limits.max_video_frames:
                    raise PayloadTooLarge(f"more than {limits.max_video_frames} images in one request")
            else:
                parts = [(ctype, body)]
            images = await asyncio.to_thread(
                lambda: [
                    decode_image(d, t, limits.max_image_pixels, target=target, resize=cfg.input.resize)
                    for t, d in parts
                ]
            )
    with stage("preprocess"):
        tensor, geometries = await asyncio.to_thread(prepare_images, images, cfg.input)
        # geometry must describe the original image, not the (maybe DCT-downscaled) decode
        if ctype not in VIDEO_TYPES:
            geometries = _rescale(geometries, parts)
    return DecodedInfer({cfg.input.name: tensor}, geometries, times)


def _rescale(geometries: list[Geometry], parts: list[tuple[str, bytes]]) -> list[Geometry]:
    """Geometry of a DCT-downscaled decode -> geometry relative to the original image size."""
    out = []
    for g, (ctype, data) in zip(geometries, parts, strict=True):
        w, h, _ = image_size(data, ctype)
        if (w, h) == (g.width, g.height):
            out.append(g)
            continue
        fx, fy = g.width / w, g.height / h
        out.append(Geometry(w, h, g.scale_x * fx, g.scale_y * fy, g.pad_x, g.pad_y))
    return out


async def decode_predict(
    profile: Profile, body: bytes, stage: Stage
) -> tuple[dict[str, Array], bool, str | None]:
    """A TF Serving REST ``:predict`` body -> (inputs, columnar, signature name)."""

    def decode() -> tuple[dict[str, Array], bool, str | None]:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadRequest("body is not valid JSON") from None
        return parse_predict(doc, profile.cfg.input.name, profile.dtypes)

    with stage("decode"):
        # large JSON tensors take a while to parse: keep the event loop free meanwhile
        inputs, columnar, signature = (
            await asyncio.to_thread(decode) if len(body) > _THREAD_JSON_BYTES else decode()
        )
    profile.check_shape(inputs, "inputs" if columnar else "instances")
    return inputs, columnar, signature


def decode_v2(profile: Profile, body: bytes, header_length: str | None, stage: Stage) -> V2Request:
    """An Open Inference Protocol ``/infer`` body (JSON, or JSON header + binary tensors) -> request."""
    name = profile.cfg.input.name
    with stage("decode"):
        req = parse_v2(body, header_length)
        profile.check_shape(
            req.inputs, f"inputs[{list(req.inputs).index(name)}]" if name in req.inputs else "inputs"
        )
    return req
