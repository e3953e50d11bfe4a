"""JPEGs resized by the decoder's DCT scaling (``decode_scaled_into``, libturbojpeg): the same
geometry as the Pillow path, pixels close to its bilinear result, and the old path for everything
a DCT scale M/8 cannot give exactly (PNG, other sizes, CMYK, no library)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image
from skimage import data

from kubevc.gateway import PayloadTooLarge, _turbojpeg
from kubevc.gateway._config import InputConfig, LimitsConfig, ModelConfig
from kubevc.gateway._decode import decode_infer
from kubevc.gateway._preprocess import (
    LETTERBOX_FILL,
    Geometry,
    dct_scale,
    decode_for_model,
    decode_scaled_into,
    resize_decoded,
    resized_size,
)
from kubevc.gateway._profile import Profile
from kubevc.gateway._workers import DecodePool

from .conftest import jpeg, png


@pytest.fixture(autouse=True)
def _needs_libturbojpeg() -> None:
    if not _turbojpeg.available():
        pytest.fail("libturbojpeg.so.0 not found: install Debian's libturbojpeg0 (make system-deps)")


def _photo(width: int, height: int) -> np.ndarray:
    """The astronaut (a real photo: edges, texture, smooth areas) at width x height (bicubic)."""
    im = Image.fromarray(data.astronaut()).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(im)


def _pillow_path(body: bytes, cfg: InputConfig) -> tuple[np.ndarray, Geometry]:
    decoded = decode_for_model(body, "image/jpeg", cfg, 10**8)
    return resize_decoded(decoded, cfg)


def _dct_path(body: bytes, cfg: InputConfig) -> tuple[np.ndarray, Geometry]:
    out = np.full((cfg.height, cfg.width, 3), 7, dtype=np.uint8)  # no byte left from before
    geometry = decode_scaled_into(body, cfg, 10**8, out)
    assert geometry is not None, "expected the DCT path"
    return out, geometry


# (image size, model input, resize mode, the DCT scale numerator that fits exactly)
CASES = [
    ((512, 512), (640, 640), "letterbox", 10),  # the YOLO case: 10/8, no bars
    ((512, 384), (640, 640), "letterbox", 10),  # 640x480 with grey bars above and below
    ((384, 512), (640, 640), "letterbox", 10),  # bars left and right
    ((1280, 960), (640, 640), "letterbox", 4),  # a reduction: 4/8 straight into the slot
    ((320, 320), (640, 640), "stretch", 16),
    ((512, 512), (640, 640), "center-crop", 10),
    ((384, 384), (432, 432), "letterbox", 9),
]


@pytest.mark.parametrize(("size", "target", "mode", "m"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_dct_path_geometry_equals_the_pillow_path(
    size: tuple[int, int], target: tuple[int, int], mode: str, m: int
) -> None:
    cfg = InputConfig(kind="image", name="x", width=target[0], height=target[1], resize=mode)
    body = jpeg(_photo(*size), 92)
    want, want_geometry = _pillow_path(body, cfg)
    got, geometry = _dct_path(body, cfg)
    assert geometry == want_geometry  # scale, pads: the same numbers, so boxes map back the same
    boxes = np.array([[10.0, 20.0, 300.0, 400.0], [0.0, 0.0, target[0], target[1]]], dtype=np.float32)
    np.testing.assert_array_equal(geometry.to_original(boxes), want_geometry.to_original(boxes))
    if mode == "letterbox":  # the bars: exactly the letterbox grey, exactly where the Pillow path has them
        nw, nh = resized_size(*size, cfg)
        window = np.zeros(got.shape[:2], dtype=bool)
        px, py = int(geometry.pad_x), int(geometry.pad_y)
        window[py : py + nh, px : px + nw] = True
        assert (got[~window] == LETTERBOX_FILL).all() and (want[~window] == LETTERBOX_FILL).all()
    # Pixels: the DCT scaling interpolates inside each 8x8 block with the cosine basis, Pillow's
    # bilinear between decoded pixels: both reconstruct the same picture and differ at sharp
    # edges (a little ringing against a little blur). Measured on these cases: mean |difference|
    # 1.1-2.0 levels of 255, 99th percentile 12-16 (a few edge pixels up to ~60, the most at the
    # 2x upscale); 0 for the 4/8 reduction (the same DCT scale as simplejpeg's). Bound with some
    # room for other libjpeg-turbo versions: mean <= 3, 99th percentile <= 20.
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert diff.mean() <= 3.0, diff.mean()
    assert np.percentile(diff, 99) <= 20, np.percentile(diff, 99)
    assert dct_scale(*size, *resized_size(*size, cfg)) == m


def test_letterbox_bars_are_grey_and_the_window_is_the_image() -> None:
    cfg = InputConfig(kind="image", name="x", width=640, height=640, resize="letterbox")
    photo = np.zeros((384, 512, 3), dtype=np.uint8)
    photo[...] = (200, 40, 90)
    got, geometry = _dct_path(jpeg(photo, 95), cfg)
    assert (geometry.pad_x, geometry.pad_y, geometry.scale_x) == (0.0, 80.0, 1.25)
    assert (got[:80] == LETTERBOX_FILL).all() and (got[560:] == LETTERBOX_FILL).all()
    assert np.abs(got[80:560].astype(int) - (200, 40, 90)).max() <= 4


@pytest.mark.parametrize(
    ("size", "mode"),
    [
        ((500, 500), "letterbox"),
        ((416, 416), "letterbox"),
        ((512, 384), "center-crop"),
        ((300, 451), "stretch"),
    ],
)
def test_sizes_no_dct_scale_gives_take_the_old_path(size: tuple[int, int], mode: str) -> None:
    cfg = InputConfig(kind="image", name="x", width=640, height=640, resize=mode)
    out = np.zeros((640, 640, 3), dtype=np.uint8)
    assert decode_scaled_into(jpeg(_photo(*size)), cfg, 10**8, out) is None
    assert not out.any()  # nothing written


def test_png_cmyk_and_a_missing_library_take_the_old_path(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = InputConfig(kind="image", name="x", width=640, height=640)
    out = np.zeros((640, 640, 3), dtype=np.uint8)
    assert decode_scaled_into(png(_photo(512, 512)), cfg, 10**8, out) is None
    buf = io.BytesIO()
    Image.fromarray(_photo(512, 512)).convert("CMYK").save(buf, format="JPEG")
    assert decode_scaled_into(buf.getvalue(), cfg, 10**8, out) is None
    monkeypatch.setattr(_turbojpeg, "_lib", None)
    assert decode_scaled_into(jpeg(_photo(512, 512)), cfg, 10**8, out) is None
    assert not out.any()


def test_corrupt_jpeg_falls_back_and_gets_the_old_answer() -> None:
    cfg = InputConfig(kind="image", name="x", width=640, height=640)
    body = jpeg(_photo(512, 512))
    out = np.zeros((640, 640, 3), dtype=np.uint8)
    assert decode_scaled_into(body[:200], cfg, 10**8, out) is None  # header cut: the old path's 400
    # the thread's decompressor failed: the next JPEG still decodes (with libjpeg-turbo 2.1 a failed
    # handle read the next header as 0x0 until it was replaced)
    # a truncated scan is a warning, not a failure: the pixels decoded are kept (as strict=False)
    assert decode_scaled_into(body[: len(body) // 2], cfg, 10**8, out) is not None


def test_the_pixel_limit_is_checked_before_decoding() -> None:
    cfg = InputConfig(kind="image", name="x", width=640, height=640)
    with pytest.raises(PayloadTooLarge, match="above the limit"):
        decode_scaled_into(jpeg(_photo(512, 512)), cfg, 512 * 511, np.zeros((640, 640, 3), np.uint8))


class _Stages:
    """The decoders' stage timer (the gateway's records Prometheus histograms)."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        yield

    def record(self, name: str, seconds: float) -> None:
        self.seen[name] = self.seen.get(name, 0.0) + seconds


def test_a_request_batch_gets_the_dct_pixels_in_its_slot() -> None:
    model = ModelConfig.model_validate(
        {
            "name": "m",
            "backend": "b",
            "input": {"kind": "image", "name": "images", "width": 640, "height": 640},
        }
    )
    profile = Profile.load(model)
    body = jpeg(_photo(512, 384), 92)
    want, want_geometry = _dct_path(body, profile.cfg.input)
    stages = _Stages()

    async def main() -> None:
        pool = DecodePool(1, 4, 10**8)
        try:
            got = await decode_infer(profile, body, "image/jpeg", {}, LimitsConfig(), stages, pool)
        finally:
            pool.close()
        assert got.geometries == [want_geometry]
        assert np.array_equal(got.inputs["images"][0], want)

    asyncio.run(main())
    assert stages.seen["decode"] > 0
