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

import functools
import importlib.util
import threading
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from kubevc.gateway._config import InputConfig, LimitsConfig
from kubevc.gateway._errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from kubevc.gateway._media import parse_multipart, parse_npy, parse_raw_tensor
from kubevc.gateway._preprocess import (
    Geometry,
    decode_for_model,
    decode_scaled_into,
    decoded_pixels,
    image_size,
    iter_video_frames,
    resize_decoded,
    resize_image,
    to_model_tensor,
)
from kubevc.gateway._profile import Profile
from kubevc.gateway._rest import parse_predict_body
from kubevc.gateway._signature import STRING
from kubevc.gateway._tokenizer import MAX_WORD_CHARS
from kubevc.gateway._v2json import V2Request, parse_v2
from kubevc.gateway._workers import DecodePool, raise_if_cancelled

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


class Stage(Protocol):
    """Times the stages of one model's request: ``with stage("decode"): ...``, or ``record`` a
    duration measured elsewhere (inside a pool job). Safe to use from worker threads."""

    def __call__(self, name: str) -> AbstractContextManager[None]: ...

    def record(self, name: str, seconds: float) -> None: ...


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
_THREAD_JSON_BYTES = 1 << 18  # larger JSON bodies are parsed in a pool worker
_THREAD_TEXT_BYTES = 1 << 14  # longer texts are tokenised in a pool worker
_TEXT_BYTES_PER_TOKEN = 4 * (MAX_WORD_CHARS + 1)  # UTF-8 bytes read per token of sequenceLength


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
    if ctype in VIDEO_TYPES and not video_supported():
        raise UnsupportedMediaType(
            f"{ctype} needs PyAV, which this gateway was installed without: pip install 'kubevc[video]'"
        )
    return ctype


@functools.cache
def video_supported() -> bool:
    """Whether PyAV is installed: video is the optional ``video`` extra (PyAV is a third of the image)."""
    return importlib.util.find_spec("av") is not None


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
    pool: DecodePool,
) -> DecodedInfer:
    """An ``/infer`` body of media type ``accepted_media_type(profile, content_type)`` -> inputs.

    ``headers`` holds ``x-tensor-dtype``/``x-tensor-shape`` for raw tensor bodies. Images and
    video are decoded in ``pool``."""
    if not body:
        raise BadRequest("empty body")
    cfg = profile.cfg
    ctype = media_type(content_type)
    if ctype in IMAGE_TYPES or ctype == "multipart/form-data" or ctype in VIDEO_TYPES:
        return await _decode_images(profile, body, ctype, content_type, limits, stage, pool)
    if ctype == "text/plain":
        return await _decode_text(profile, body, stage, pool)
    with stage("decode"):
        if ctype == "application/x-npy":
            arr = parse_npy(body)
        else:
            arr = parse_raw_tensor(body, headers.get("x-tensor-dtype"), headers.get("x-tensor-shape"))
    inputs = {cfg.input.name: arr}
    profile.check_shape(inputs, "body")
    w, h = cfg.input.width, cfg.input.height
    return DecodedInfer(inputs, [Geometry(w, h, 1.0, 1.0, 0.0, 0.0)], None)


async def _decode_text(profile: Profile, body: bytes, stage: Stage, pool: DecodePool) -> DecodedInfer:
    """UTF-8 text -> WordPiece ids (and mask / type ids) of ``sequenceLength``."""
    cfg = profile.cfg.input
    # a token takes at least one character and a word of more than MAX_WORD_CHARS is one [UNK]:
    # text past this prefix is never tokenised, so a huge body costs no more work than a short one
    cut = min(len(body), cfg.sequence_length * _TEXT_BYTES_PER_TOKEN)
    while 0 < cut < len(body) and body[cut] & 0xC0 == 0x80:
        cut -= 1  # do not split a UTF-8 sequence: cut before its first byte
    prefix = body[:cut]

    def encode(cancel: threading.Event | None = None) -> DecodedInfer:
        with stage("decode"):
            try:
                text = prefix.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest("text/plain body is not UTF-8") from None
        with stage("preprocess"):
            assert profile.tokenizer is not None
            ids, mask = profile.tokenizer.encode(text, cfg.sequence_length)
            inputs = {cfg.name: ids[None]}
            if cfg.mask_name:
                inputs[cfg.mask_name] = mask[None]
            if cfg.type_ids_name:
                inputs[cfg.type_ids_name] = np.zeros_like(ids)[None]
            # in the integer dtype the signature declares (int64 for most BERT exports)
            inputs = {k: v.astype(profile.dtypes.get(k, "int32"), copy=False) for k, v in inputs.items()}
        return DecodedInfer(inputs, [], None)

    return await pool.run(encode, len(prefix)) if len(prefix) > _THREAD_TEXT_BYTES else encode()


def _image_parts(body: bytes, ctype: str, content_type: str, limits: LimitsConfig) -> list[tuple[str, bytes]]:
    """The images of a body: itself, or the image parts of a multipart."""
    if ctype != "multipart/form-data":
        return [(ctype, body)]
    parts = [(media_type(t), d) for t, d in parse_multipart(body, content_type)]
    parts = [(t, d) for t, d in parts if t in IMAGE_TYPES]
    if not parts:
        raise BadRequest("multipart body has no image/jpeg or image/png part")
    if len(parts) > limits.max_video_frames:
        raise PayloadTooLarge(f"more than {limits.max_video_frames} images in one request")
    return parts


def _image_costs(parts: list[tuple[str, bytes]], cfg: InputConfig, limits: LimitsConfig) -> list[int]:
    """Each part's decoded pixels, from its header; 413 before any decoding when one image is
    above ``maxImagePixels`` or all of them together above ``maxRequestPixels``."""
    target = (cfg.width, cfg.height)
    costs = []
    for i, (ctype, data) in enumerate(parts):
        w, h, fmt = image_size(data, ctype)
        if w * h > limits.max_image_pixels:
            where = f"image {i + 1} is" if len(parts) > 1 else "image is"
            raise PayloadTooLarge(
                f"{where} {w}x{h} = {w * h} pixels, above the limit of {limits.max_image_pixels}"
            )
        costs.append(decoded_pixels(w, h, fmt, target, cfg.resize))
    total = sum(costs)
    if total > limits.max_request_pixels:
        raise PayloadTooLarge(
            f"the {len(parts)} images decode to {total} pixels, above the limit of"
            f" {limits.max_request_pixels} per request"
        )
    return costs


async def _decode_images(
    profile: Profile,
    body: bytes,
    ctype: str,
    content_type: str,
    limits: LimitsConfig,
    stage: Stage,
    pool: DecodePool,
) -> DecodedInfer:
    """Images (one, a multipart of several, or video frames) -> one batch tensor.

    Everything is checked from headers first; then one pool job decodes and resizes the images
    one after another (only one full-size decode is held at a time) and stops between images
    when the request is given up."""
    cfg = profile.cfg.input
    if cfg.dtype == STRING:
        return _encoded_images(body, ctype, content_type, cfg, limits, stage)

    if ctype in VIDEO_TYPES:

        def video_job(cancel: threading.Event) -> tuple[Array, list[Geometry], list[float]]:
            resized: list[Array] = []
            geometries: list[Geometry] = []
            times: list[float] = []
            decode_s = resize_s = 0.0
            t0 = time.perf_counter()
            frames = iter_video_frames(
                body,
                cfg.video_fps,
                limits.max_video_frames,
                limits.max_image_pixels,
                limits.max_request_pixels,
            )
            for frame, t in frames:
                t1 = time.perf_counter()
                decode_s += t1 - t0
                raise_if_cancelled(cancel)
                out, g = resize_image(frame, cfg)
                del frame
                resized.append(out)
                geometries.append(g)
                times.append(t)
                t0 = time.perf_counter()
                resize_s += t0 - t1
            stage.record("decode", decode_s)
            t0 = time.perf_counter()
            tensor = to_model_tensor(np.stack(resized), cfg)
            stage.record("preprocess", resize_s + time.perf_counter() - t0)
            return tensor, geometries, times

        # the frame size is known only once the container is open: count a video as the largest image
        tensor, geometries, times = await pool.run(video_job, limits.max_image_pixels)
        return DecodedInfer({cfg.name: tensor}, geometries, times)

    with stage("decode"):
        parts = _image_parts(body, ctype, content_type, limits)
        costs = _image_costs(parts, cfg, limits)

    def images_job(cancel: threading.Event) -> tuple[Array, list[Geometry]]:
        # each image is resized straight into its slot of the batch: no per-image copy, no stack
        batch = np.empty((len(parts), cfg.height, cfg.width, 3), dtype=np.uint8)
        geometries: list[Geometry] = []
        decode_s = resize_s = 0.0
        for i, (part_type, data) in enumerate(parts):
            raise_if_cancelled(cancel)
            t0 = time.perf_counter()
            # a JPEG whose resize is a DCT scale M/8 is decoded and resized in one step, into its slot
            scaled = decode_scaled_into(data, cfg, limits.max_image_pixels, batch[i])
            if scaled is not None:
                geometries.append(scaled)
                decode_s += time.perf_counter() - t0
                continue
            decoded = decode_for_model(data, part_type, cfg, limits.max_image_pixels)
            t1 = time.perf_counter()
            _, g = resize_decoded(decoded, cfg, batch[i])
            del decoded  # free the full-size decode before the next one
            geometries.append(g)
            decode_s += t1 - t0
            resize_s += time.perf_counter() - t1
        stage.record("decode", decode_s)
        t0 = time.perf_counter()
        tensor = to_model_tensor(batch, cfg)
        stage.record("preprocess", resize_s + time.perf_counter() - t0)
        return tensor, geometries

    tensor, geometries = await pool.run(images_job, max(costs))
    return DecodedInfer({cfg.name: tensor}, geometries, None)


def _encoded_images(
    body: bytes, ctype: str, content_type: str, cfg: InputConfig, limits: LimitsConfig, stage: Stage
) -> DecodedInfer:
    """A model that decodes in its graph (a string input): the JPEG/PNG bytes go as they came, one
    string per image, after the same header checks (the backend decodes what the gateway admits).
    Boxes map back as if the model stretched each image to ``width`` x ``height``."""
    if ctype in VIDEO_TYPES:
        raise UnsupportedMediaType(f"model input {cfg.name!r} takes encoded images, not video")
    with stage("decode"):
        parts = _image_parts(body, ctype, content_type, limits)
        _image_costs(parts, cfg, limits)
        tensor = np.empty(len(parts), dtype=object)
        tensor[:] = [data for _, data in parts]
        geometries = []
        for part_type, data in parts:
            w, h, _ = image_size(data, part_type)
            if w == 0 or h == 0:
                raise BadRequest("image has no pixels")
            geometries.append(Geometry(w, h, cfg.width / w, cfg.height / h, 0.0, 0.0))
    return DecodedInfer({cfg.name: tensor}, geometries, None)


async def decode_predict(
    profile: Profile, body: bytes, stage: Stage, pool: DecodePool
) -> tuple[dict[str, Array], bool, str | None]:
    """A TF Serving REST ``:predict`` body -> (inputs, columnar, signature name)."""

    def decode(cancel: threading.Event | None = None) -> tuple[dict[str, Array], bool, str | None]:
        return parse_predict_body(body, profile.cfg.input.name, profile.dtypes)

    with stage("decode"):
        # large JSON tensors take a while to parse: keep the event loop free meanwhile, in the
        # pool, where a byte of JSON counts as a pixel (a number parsed takes about as much memory)
        inputs, columnar, signature = (
            await pool.run(decode, len(body)) if len(body) > _THREAD_JSON_BYTES else decode()
        )
    profile.check_shape(inputs, "inputs" if columnar else "instances")
    return inputs, columnar, signature


async def decode_v2(
    profile: Profile, body: bytes, header_length: str | None, stage: Stage, pool: DecodePool
) -> V2Request:
    """An Open Inference Protocol ``/infer`` body (JSON, or JSON header + binary tensors) -> request;
    bodies above 256 KiB are parsed in the pool (a byte counts as a pixel, as for ``:predict``)."""
    name = profile.cfg.input.name

    def decode(cancel: threading.Event | None = None) -> V2Request:
        return parse_v2(body, header_length)

    with stage("decode"):
        req = await pool.run(decode, len(body)) if len(body) > _THREAD_JSON_BYTES else decode()
        profile.check_shape(
            req.inputs, f"inputs[{list(req.inputs).index(name)}]" if name in req.inputs else "inputs"
        )
    return req
