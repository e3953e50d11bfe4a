"""Media decoding and tensor preparation per model profile (no Python loops over pixels).

JPEG goes through simplejpeg (libjpeg-turbo; large photos are decoded at a reduced DCT scale that
is still at least the target size), PNG through Pillow, video through PyAV. The decoded size is
read from the header and checked against ``maxImagePixels`` *before* the pixels are decoded, so an
image bomb costs a header parse, not its decoded size in memory.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import simplejpeg
from PIL import Image

from kubevc.gateway._config import InputConfig
from kubevc.gateway._errors import BadRequest, PayloadTooLarge

__all__ = [
    "Geometry",
    "decode_image",
    "decode_video",
    "image_size",
    "prepare_images",
    "resize_image",
]

Array = npt.NDArray[Any]
LETTERBOX_FILL = 114  # the grey YOLO pads with

Image.MAX_IMAGE_PIXELS = None  # the gateway enforces its own limit before decoding


@dataclass(frozen=True)
class Geometry:
    """How an original image maps onto the model input: ``model = original * scale + pad``."""

    width: int
    height: int
    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float

    def to_original(self, boxes: Array) -> Array:
        """Boxes ``x1, y1, x2, y2`` in model-input pixels -> original pixels, clipped."""
        out = np.empty_like(boxes)
        # basic slices (views), so that clip's out= writes into ``out``, not into a copy
        xs, ys = out[:, 0::2], out[:, 1::2]
        np.clip((boxes[:, 0::2] - self.pad_x) / self.scale_x, 0, self.width, out=xs)
        np.clip((boxes[:, 1::2] - self.pad_y) / self.scale_y, 0, self.height, out=ys)
        return out


def image_size(data: bytes, content_type: str) -> tuple[int, int, str]:
    """(width, height, format) from the header only; 400 when it is not that kind of image."""
    if data[:3] == b"\xff\xd8\xff":
        try:
            h, w, _cs, _ss = simplejpeg.decode_jpeg_header(data)
        except ValueError as exc:
            raise BadRequest(f"undecodable JPEG: {exc}") from None
        return int(w), int(h), "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        try:
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
        except Exception as exc:
            raise BadRequest(f"undecodable PNG: {exc}") from None
        return int(w), int(h), "png"
    raise BadRequest(f"body is not a JPEG or PNG image (Content-Type {content_type})")


def decode_image(
    data: bytes,
    content_type: str,
    max_pixels: int,
    *,
    target: tuple[int, int] | None = None,
    resize: str = "letterbox",
) -> Array:
    """Decode to an (H, W, 3) uint8 RGB array; 413 above ``max_pixels``, 400 when undecodable.

    With ``target`` (width, height), JPEGs may be decoded at a reduced DCT scale (1/2, 1/4, 1/8)
    whose result is still at least as large as the resize mode needs: letterbox the fitted size,
    stretch the target size, center-crop the covering size. A 720p photo letterboxed to 640x640
    decodes straight to 640x360 this way, with no resampling afterwards.
    """
    w, h, fmt = image_size(data, content_type)
    if w * h > max_pixels:
        raise PayloadTooLarge(f"image is {w}x{h} = {w * h} pixels, above the limit of {max_pixels}")
    if w == 0 or h == 0:
        raise BadRequest("image has no pixels")
    if fmt == "jpeg":
        min_w = min_h = 0
        if target is not None:
            tw, th = target
            if resize == "letterbox":
                s = min(tw / w, th / h)
                min_w, min_h = round(w * s), round(h * s)
            elif resize == "stretch":
                min_w, min_h = tw, th
            else:
                s = max(tw / w, th / h)
                min_w, min_h = math.ceil(w * s), math.ceil(h * s)
        try:
            arr: Array = simplejpeg.decode_jpeg(
                data, colorspace="RGB", min_width=min_w, min_height=min_h, strict=False
            )
        except ValueError as exc:
            raise BadRequest(f"undecodable JPEG: {exc}") from None
        return arr
    try:
        with Image.open(io.BytesIO(data)) as im:
            rgb = im.convert("RGB")
            return np.asarray(rgb)
    except Exception as exc:
        raise BadRequest(f"undecodable PNG: {exc}") from None


def resize_image(image: Array, cfg: InputConfig) -> tuple[Array, Geometry]:
    """Resize an (H, W, 3) uint8 image to the profile's size with its resize mode."""
    h, w = image.shape[:2]
    tw, th = cfg.width, cfg.height
    pil = Image.fromarray(image)
    if cfg.resize == "stretch":
        out = np.asarray(pil.resize((tw, th), Image.Resampling.BILINEAR)) if (w, h) != (tw, th) else image
        return out, Geometry(w, h, tw / w, th / h, 0.0, 0.0)
    if cfg.resize == "letterbox":
        s = min(tw / w, th / h)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        resized = np.asarray(pil.resize((nw, nh), Image.Resampling.BILINEAR)) if (nw, nh) != (w, h) else image
        canvas = np.full((th, tw, 3), LETTERBOX_FILL, dtype=np.uint8)
        px, py = (tw - nw) // 2, (th - nh) // 2
        canvas[py : py + nh, px : px + nw] = resized
        return canvas, Geometry(w, h, nw / w, nh / h, float(px), float(py))
    # center-crop: scale so the image covers the target, then cut the middle
    s = max(tw / w, th / h)
    nw, nh = max(tw, round(w * s)), max(th, round(h * s))
    resized = np.asarray(pil.resize((nw, nh), Image.Resampling.BILINEAR)) if (nw, nh) != (w, h) else image
    px, py = (nw - tw) // 2, (nh - th) // 2
    return resized[py : py + th, px : px + tw], Geometry(w, h, nw / w, nh / h, float(-px), float(-py))


def to_model_tensor(batch: Array, cfg: InputConfig) -> Array:
    """(N, H, W, 3) uint8 -> the profile's dtype and layout."""
    if cfg.dtype == "float32":
        mean = np.asarray(cfg.mean, dtype=np.float32)
        inv_std = (1.0 / np.asarray(cfg.std, dtype=np.float64)).astype(np.float32)
        out: Array = np.empty(batch.shape, dtype=np.float32)
        np.subtract(batch, mean, out=out, dtype=np.float32)  # one pass, no temporaries
        np.multiply(out, inv_std, out=out)
    else:
        out = batch
    if cfg.layout == "NCHW":
        out = out.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out)


def prepare_images(images: list[Array], cfg: InputConfig) -> tuple[Array, list[Geometry]]:
    """Decoded images -> one batch tensor for the model, and each image's geometry."""
    resized = [resize_image(im, cfg) for im in images]
    batch = np.stack([r[0] for r in resized])
    return to_model_tensor(batch, cfg), [r[1] for r in resized]


def decode_video(
    data: bytes, fps: float, max_frames: int, max_pixels: int
) -> tuple[list[Array], list[float]]:
    """Sample frames at ``fps`` (at most ``max_frames``): RGB arrays and their times in seconds."""
    import av  # heavy import, only for video requests

    frames: list[Array] = []
    times: list[float] = []
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise BadRequest("video has no video stream")
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            if w * h > max_pixels:
                raise PayloadTooLarge(f"video frames are {w}x{h}, above the limit of {max_pixels} pixels")
            stream.thread_type = "AUTO"
            step = 1.0 / fps
            next_t = 0.0
            tb = stream.time_base or Fraction(1, 1000)
            for frame in container.decode(stream):
                t = float(frame.pts * tb) if frame.pts is not None else next_t
                if t + 1e-6 < next_t:
                    continue
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(round(t, 6))
                next_t = t + step
                if len(frames) >= max_frames:
                    break
    except (BadRequest, PayloadTooLarge):
        raise
    except Exception as exc:
        raise BadRequest(f"undecodable video: {type(exc).__name__}: {exc}") from None
    if not frames:
        raise BadRequest("video has no decodable frames")
    return frames, times
