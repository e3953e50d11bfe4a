"""Media decoding and tensor preparation per model profile (no Python loops over pixels).

JPEG goes through simplejpeg (libjpeg-turbo; large photos are decoded at a reduced DCT scale that
is still at least the target size), PNG through Pillow, video through PyAV. A JPEG whose resize is
exactly a DCT scale M/8 (M = 1..16: 512 -> 640 is 10/8) is decoded and resized in one step straight
into its batch slot by ``decode_scaled_into`` (libturbojpeg); enlargements no scale fits stay on
decode + Pillow's bilinear resize (decoding at the next scale up and reducing measured slower).
The decoded size is
read from the header and checked against ``maxImagePixels`` *before* the pixels are decoded, so an
image bomb costs a header parse, not its decoded size in memory.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import simplejpeg
from PIL import Image

from kubevc.gateway import _turbojpeg
from kubevc.gateway._config import InputConfig
from kubevc.gateway._errors import BadRequest, PayloadTooLarge

__all__ = [
    "DecodedImage",
    "Geometry",
    "decode_for_model",
    "decode_image",
    "decode_scaled_into",
    "decode_video",
    "decoded_pixels",
    "image_size",
    "iter_video_frames",
    "prepare_images",
    "resize_decoded",
    "resize_image",
    "to_model_tensor",
]

Array = npt.NDArray[Any]
LETTERBOX_FILL = 114  # the grey YOLO pads with

Image.MAX_IMAGE_PIXELS = None  # the gateway enforces its own limit before decoding
_JPEG_SCALES = (1 / 8, 1 / 4, 1 / 2, 1.0)  # the DCT scales counted on (libjpeg-turbo has finer ones)


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


def _min_decode_size(w: int, h: int, target: tuple[int, int] | None, resize: str) -> tuple[int, int]:
    """The smallest decoded size the resize mode still needs from a (w, h) image (0, 0: any)."""
    if target is None:
        return 0, 0
    tw, th = target
    if resize == "letterbox":
        s = min(tw / w, th / h)
        return round(w * s), round(h * s)
    if resize == "stretch":
        return tw, th
    s = max(tw / w, th / h)
    return math.ceil(w * s), math.ceil(h * s)


def decoded_pixels(w: int, h: int, fmt: str, target: tuple[int, int] | None, resize: str) -> int:
    """The pixels decoding a (w, h) image will hold, from its header alone: JPEGs at the reduced
    DCT scale the resize allows (counted with the coarse scales only, so never less than the
    real decode), everything else at full size."""
    if fmt != "jpeg" or w == 0 or h == 0:
        return w * h
    min_w, min_h = _min_decode_size(w, h, target, resize)
    for scale in _JPEG_SCALES:
        sw, sh = math.ceil(w * scale), math.ceil(h * scale)
        if sw >= min_w and sh >= min_h:
            return sw * sh
    return w * h


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
        min_w, min_h = _min_decode_size(w, h, target, resize)
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


@dataclass
class DecodedImage:
    """One image decoded for the model: pixels (a numpy array, or Pillow's own decode for PNGs,
    so that no full-size numpy copy is made) and the size of the original image."""

    pixels: Array | Image.Image
    width: int
    height: int


def decode_for_model(data: bytes, content_type: str, cfg: InputConfig, max_pixels: int) -> DecodedImage:
    """Decode one image for ``resize_decoded``: JPEGs at the reduced DCT scale the resize allows."""
    w, h, fmt = image_size(data, content_type)
    if fmt == "jpeg":
        target = (cfg.width, cfg.height)
        return DecodedImage(
            decode_image(data, content_type, max_pixels, target=target, resize=cfg.resize), w, h
        )
    if w * h > max_pixels:
        raise PayloadTooLarge(f"image is {w}x{h} = {w * h} pixels, above the limit of {max_pixels}")
    if w == 0 or h == 0:
        raise BadRequest("image has no pixels")
    try:
        im: Image.Image = Image.open(io.BytesIO(data))
        im.load()
        if im.mode not in ("RGB", "L"):
            # grey stays one byte a pixel until resized (a 1-bit bomb must not become 4 bytes a pixel)
            im = im.convert("L" if im.mode == "1" else "RGB")
        return DecodedImage(im, w, h)
    except Exception as exc:
        raise BadRequest(f"undecodable PNG: {exc}") from None


def resize_decoded(image: DecodedImage, cfg: InputConfig, out: Array | None = None) -> tuple[Array, Geometry]:
    """A decoded image -> the profile's size, written into ``out`` ((height, width, 3) uint8, e.g.
    one image's slot of the batch; allocated when None); the geometry maps onto the original image."""
    pixels = image.pixels
    out = _output(cfg, out)
    if isinstance(pixels, Image.Image):
        g = _resize_into(pixels, cfg, lambda: _rgb(pixels), out)
    else:
        g = _resize_into(Image.fromarray(pixels), cfg, lambda: pixels, out)
    w, h = image.width, image.height
    if (g.width, g.height) == (w, h):
        return out, g
    fx, fy = g.width / w, g.height / h  # a reduced DCT decode: scale back to the original
    return out, Geometry(w, h, g.scale_x * fx, g.scale_y * fy, g.pad_x, g.pad_y)


def resize_image(image: Array, cfg: InputConfig, out: Array | None = None) -> tuple[Array, Geometry]:
    """Resize an (H, W, 3) uint8 image to the profile's size with its resize mode (into ``out``)."""
    out = _output(cfg, out)
    return out, _resize_into(Image.fromarray(image), cfg, lambda: image, out)


def _output(cfg: InputConfig, out: Array | None) -> Array:
    if out is None:
        return np.empty((cfg.height, cfg.width, 3), dtype=np.uint8)
    if out.shape != (cfg.height, cfg.width, 3) or out.dtype != np.uint8:
        raise ValueError(f"output slot is {out.shape} {out.dtype}, not ({cfg.height}, {cfg.width}, 3) uint8")
    return out


def _rgb(pil: Image.Image) -> Array:
    return np.asarray(pil if pil.mode == "RGB" else pil.convert("RGB"))


def _resized(pil: Image.Image, size: tuple[int, int], as_array: Callable[[], Array]) -> Array:
    """``pil`` at ``size`` (bilinear) as an RGB array; ``as_array`` when it already is that size."""
    if pil.size == size:
        return as_array()
    return _rgb(pil.resize(size, Image.Resampling.BILINEAR))


def _resize_into(pil: Image.Image, cfg: InputConfig, as_array: Callable[[], Array], out: Array) -> Geometry:
    """``pil`` -> the profile's size in ``out``, each output pixel written once (the letterbox
    bars are filled around the image, not under it)."""
    w, h = pil.size
    nw, nh = resized_size(w, h, cfg)
    if cfg.resize == "stretch":
        out[...] = _resized(pil, (nw, nh), as_array)
    elif cfg.resize == "letterbox":
        _fill_bars(out, nw, nh)[...] = _resized(pil, (nw, nh), as_array)
    else:
        px, py = (nw - cfg.width) // 2, (nh - cfg.height) // 2
        out[...] = _resized(pil, (nw, nh), as_array)[py : py + cfg.height, px : px + cfg.width]
    return _geometry(w, h, nw, nh, cfg)


def resized_size(w: int, h: int, cfg: InputConfig) -> tuple[int, int]:
    """The size a (w, h) image is resized to before it is placed: the target (stretch), the fitted
    size inside it (letterbox) or the covering size around it (center-crop)."""
    tw, th = cfg.width, cfg.height
    if cfg.resize == "stretch":
        return tw, th
    if cfg.resize == "letterbox":
        s = min(tw / w, th / h)
        return max(1, round(w * s)), max(1, round(h * s))
    s = max(tw / w, th / h)
    return max(tw, round(w * s)), max(th, round(h * s))


def _fill_bars(out: Array, nw: int, nh: int) -> Array:
    """Grey bars around the centred (nw, nh) window of ``out`` (each pixel written once); the window."""
    th, tw = out.shape[:2]
    px, py = (tw - nw) // 2, (th - nh) // 2
    out[:py] = LETTERBOX_FILL
    out[py + nh :] = LETTERBOX_FILL
    out[py : py + nh, :px] = LETTERBOX_FILL
    out[py : py + nh, px + nw :] = LETTERBOX_FILL
    return out[py : py + nh, px : px + nw]


def _geometry(w: int, h: int, nw: int, nh: int, cfg: InputConfig) -> Geometry:
    """How a (w, h) image resized to (nw, nh) and placed by the resize mode maps onto the original."""
    tw, th = cfg.width, cfg.height
    if cfg.resize == "stretch":
        return Geometry(w, h, tw / w, th / h, 0.0, 0.0)
    if cfg.resize == "letterbox":
        return Geometry(w, h, nw / w, nh / h, float((tw - nw) // 2), float((th - nh) // 2))
    return Geometry(w, h, nw / w, nh / h, float(-((nw - tw) // 2)), float(-((nh - th) // 2)))


def dct_scale(w: int, h: int, nw: int, nh: int) -> int | None:
    """The numerator M of the DCT scale M/8 that decodes a (w, h) JPEG to exactly (nw, nh), if any."""
    for m in _turbojpeg.SCALES:
        if (_turbojpeg.scaled(w, m), _turbojpeg.scaled(h, m)) == (nw, nh):
            return m
    return None


def decode_scaled_into(data: bytes, cfg: InputConfig, max_pixels: int, out: Array) -> Geometry | None:
    """A JPEG decoded straight to the profile's size in ``out`` (the (height, width, 3) uint8 slot)
    when a DCT scale M/8 (M = 1..16) gives exactly the size the resize mode needs: the resize is
    done by the decoder's inverse DCT, at about the cost of a plain decode, and the pixels land in
    the slot with no copy. The geometry is the one ``resize_decoded`` gives for the same image.

    None when that cannot be done (not a JPEG, no scale fits, CMYK, libturbojpeg missing or
    failing): the caller decodes and resizes as before, which also gives every error answer.
    The size limit is checked first, as ``decode_for_model`` does."""
    if data[:3] != b"\xff\xd8\xff" or not _turbojpeg.available():
        return None
    header = _turbojpeg.read_header(data)
    if header is None or not header.rgb or header.width == 0 or header.height == 0:
        return None
    w, h = header.width, header.height
    if w * h > max_pixels:
        raise PayloadTooLarge(f"image is {w}x{h} = {w * h} pixels, above the limit of {max_pixels}")
    nw, nh = resized_size(w, h, cfg)
    m = dct_scale(w, h, nw, nh)
    if m is None:
        return None
    out = _output(cfg, out)
    if cfg.resize == "letterbox":
        px, py = (cfg.width - nw) // 2, (cfg.height - nh) // 2
        window = out[py : py + nh, px : px + nw]
        if not _turbojpeg.decode_into(data, m, window, header):
            return None
        _fill_bars(out, nw, nh)
    elif cfg.resize == "stretch":
        if not _turbojpeg.decode_into(data, m, out, header):
            return None
    else:
        covering = np.empty((nh, nw, 3), dtype=np.uint8)
        if not _turbojpeg.decode_into(data, m, covering, header):
            return None
        px, py = (nw - cfg.width) // 2, (nh - cfg.height) // 2
        out[...] = covering[py : py + cfg.height, px : px + cfg.width]
    return _geometry(w, h, nw, nh, cfg)


def to_model_tensor(batch: Array, cfg: InputConfig) -> Array:
    """(N, H, W, 3) uint8 -> the profile's dtype and layout, C-contiguous.

    Floats are normalised one channel plane at a time straight from the uint8 pixels into the
    output (``(x - mean) * (1 / std)`` in float32, as one subtract and one multiply per plane), so
    no float copy of the whole batch is made and NCHW needs no transposed float copy. float16 is a
    lookup of each byte in a 256-entry table of those same float32 values, rounded to half."""
    if cfg.dtype not in ("float32", "float16"):
        out = batch if cfg.layout == "NHWC" else batch.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(out)
    n, h, w, c = batch.shape
    nchw = cfg.layout == "NCHW"
    tensor: Array = np.empty((n, c, h, w) if nchw else (n, h, w, c), dtype=np.dtype(cfg.dtype))
    planes_in = batch.transpose(0, 3, 1, 2)  # views: [image, channel] -> (H, W)
    planes_out = tensor if nchw else tensor.transpose(0, 3, 1, 2)
    if cfg.dtype == "float16":
        table = _half_table(tuple(cfg.mean), tuple(cfg.std))
        for i in range(n):
            for ch in range(c):
                # mode="clip": indices are bytes, always in range, and "raise" would buffer ``out``
                np.take(table[ch], planes_in[i, ch], out=planes_out[i, ch], mode="clip")
        return tensor
    mean, inv_std = _normalisation(tuple(cfg.mean), tuple(cfg.std))
    for i in range(n):
        for ch in range(c):
            plane = planes_out[i, ch]
            np.subtract(planes_in[i, ch], mean[ch], out=plane, dtype=np.float32)
            np.multiply(plane, inv_std[ch], out=plane)
    return tensor


@functools.cache
def _normalisation(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[Array, Array]:
    """float32 mean and 1 / std per channel (the reciprocal taken in float64, then rounded)."""
    return np.asarray(mean, dtype=np.float32), (1.0 / np.asarray(std, dtype=np.float64)).astype(np.float32)


@functools.cache
def _half_table(mean: tuple[float, ...], std: tuple[float, ...]) -> Array:
    """(channels, 256) float16: each byte value normalised in float32, then rounded to half."""
    mean32, inv_std = _normalisation(mean, std)
    values = np.arange(256, dtype=np.float32)[None, :]
    table: Array = ((values - mean32[:, None]) * inv_std[:, None]).astype(np.float16)
    return np.ascontiguousarray(table)


def prepare_images(images: list[Array], cfg: InputConfig) -> tuple[Array, list[Geometry]]:
    """Decoded images -> one batch tensor for the model, and each image's geometry."""
    batch = np.empty((len(images), cfg.height, cfg.width, 3), dtype=np.uint8)
    geometries = [resize_image(im, cfg, batch[i])[1] for i, im in enumerate(images)]
    return to_model_tensor(batch, cfg), geometries


def decode_video(
    data: bytes, fps: float, max_frames: int, max_pixels: int
) -> tuple[list[Array], list[float]]:
    """Sample frames at ``fps`` (at most ``max_frames``): RGB arrays and their times in seconds."""
    frames: list[Array] = []
    times: list[float] = []
    for frame, t in iter_video_frames(data, fps, max_frames, max_pixels, max_frames * max_pixels):
        frames.append(frame)
        times.append(t)
    return frames, times


def iter_video_frames(
    data: bytes, fps: float, max_frames: int, max_pixels: int, max_total_pixels: int
) -> Iterator[tuple[Array, float]]:
    """Frames sampled at ``fps`` (at most ``max_frames``) and their times in seconds, one at a
    time, so the caller can shrink each before the next is decoded. 413 when a frame is above
    ``max_pixels`` or the frames kept so far are above ``max_total_pixels``."""
    import av  # heavy import, only for video requests

    kept = 0
    total = 0
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
                pixels = frame.width * frame.height
                if pixels > max_pixels:
                    raise PayloadTooLarge(
                        f"a video frame is {frame.width}x{frame.height}, above {max_pixels} pixels"
                    )
                total += pixels
                if total > max_total_pixels:
                    raise PayloadTooLarge(
                        f"the video frames are above the limit of {max_total_pixels} pixels per request"
                    )
                yield frame.to_ndarray(format="rgb24"), round(t, 6)
                kept += 1
                next_t = t + step
                if kept >= max_frames:
                    break
    except (BadRequest, PayloadTooLarge):
        raise
    except Exception as exc:
        raise BadRequest(f"undecodable video: {type(exc).__name__}: {exc}") from None
    if not kept:
        raise BadRequest("video has no decodable frames")
