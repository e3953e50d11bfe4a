"""Preprocessing, post-processing, tokenisation and tensor conversion on real photos and arrays."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from kubevc.gateway import BadRequest, PayloadTooLarge, _postprocess
from kubevc.gateway._config import InputConfig
from kubevc.gateway._postprocess import nms, topk, yolo_detections
from kubevc.gateway._preprocess import (
    Geometry,
    decode_for_model,
    decode_image,
    prepare_images,
    resize_decoded,
    resize_image,
    to_model_tensor,
)
from kubevc.gateway._proto.tensorflow import tensor_pb2, types_pb2
from kubevc.gateway._tensors import from_tensor_proto, to_tensor_proto
from kubevc.gateway._tokenizer import WordPiece

from .conftest import VOCAB, jpeg, png


def test_jpeg_and_png_decode_to_rgb() -> None:
    photo = data.chelsea()  # 300x451
    out = decode_image(jpeg(photo, 95), "image/jpeg", 10**7)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - photo).mean() < 6  # JPEG is lossy, but it is the same photo
    assert np.array_equal(decode_image(png(photo), "image/png", 10**7), photo)


def test_large_jpeg_is_decoded_at_reduced_scale_but_covers_the_target() -> None:
    big = np.ascontiguousarray(np.tile(data.astronaut(), (3, 4, 1)))  # 1536 x 2048
    data_ = jpeg(big)
    cover = decode_image(data_, "image/jpeg", 10**8, target=(224, 224), resize="center-crop")
    assert cover.shape == (384, 512, 3)  # 1/4 scale: the short side still covers 224
    fit = decode_image(data_, "image/jpeg", 10**8, target=(224, 224), resize="letterbox")
    assert fit.shape == (192, 256, 3)  # 1/8 scale: still at least the fitted 224 x 168
    stretch = decode_image(data_, "image/jpeg", 10**8, target=(224, 224), resize="stretch")
    assert stretch.shape == (384, 512, 3)


def test_pixel_limit_is_checked_from_the_header() -> None:
    with pytest.raises(PayloadTooLarge, match="above the limit"):
        decode_image(jpeg(data.astronaut()), "image/jpeg", 512 * 511)
    with pytest.raises(BadRequest, match="not a JPEG or PNG"):
        decode_image(b"GIF89a....", "image/gif", 10**6)
    with pytest.raises(BadRequest, match="undecodable"):
        decode_image(jpeg(data.astronaut())[:300], "image/jpeg", 10**7)


@pytest.mark.parametrize("mode", ["letterbox", "stretch", "center-crop"])
def test_resize_modes_keep_geometry_invertible(mode: str) -> None:
    photo = data.coffee()  # 400 x 600
    cfg = InputConfig(kind="image", name="x", width=320, height=320, resize=mode)
    out, geom = resize_image(photo, cfg)
    assert out.shape == (320, 320, 3)
    corners = np.array([[0, 0, 600, 400]], dtype=np.float32)
    model = corners.copy()
    model[:, [0, 2]] = corners[:, [0, 2]] * geom.scale_x + geom.pad_x
    model[:, [1, 3]] = corners[:, [1, 3]] * geom.scale_y + geom.pad_y
    assert np.allclose(geom.to_original(model), corners, atol=1e-3)
    if mode == "letterbox":
        assert geom.pad_y == 53 and (out[:40] == 114).all()  # grey bars above and below


def test_float32_normalisation_and_nchw() -> None:
    cfg = InputConfig(
        kind="image",
        name="x",
        width=64,
        height=48,
        dtype="float32",
        layout="NCHW",
        resize="stretch",
        mean=[100, 110, 120],
        std=[2, 4, 8],
    )
    tensor, _ = prepare_images([data.astronaut(), data.chelsea()], cfg)
    assert tensor.shape == (2, 3, 48, 64) and tensor.dtype == np.float32 and tensor.flags.c_contiguous
    raw, _ = prepare_images(
        [data.astronaut()], InputConfig(kind="image", name="x", width=64, height=48, resize="stretch")
    )
    expect = (raw[0].astype(np.float32) - [100, 110, 120]) / [2, 4, 8]
    assert np.allclose(tensor[0], expect.transpose(2, 0, 1))


def test_topk_orders_and_labels() -> None:
    probs = np.array([[0.1, 0.5, 0.05, 0.35], [0.7, 0.1, 0.1, 0.1]], dtype=np.float32)
    out = topk(probs, 2, ["a", "b", "c"])
    assert [[c["index"] for c in row] for row in out] == [[1, 3], [0, 1]]
    assert out[0][1]["label"] == "3" and out[0][0]["label"] == "b"


def test_nms_is_class_aware_and_greedy() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    assert nms(boxes, scores, 0.5, 10).tolist() == [0, 2]
    assert nms(boxes, scores, 0.5, 1).tolist() == [0]


def test_yolo_decode_maps_boxes_back_to_the_original_image() -> None:
    rows = np.zeros((1, 100, 85), np.float32)
    # two overlapping rows for one object (class 2) and one for another (class 5), normalised xywh
    rows[0, 0, :5] = [0.5, 0.5, 0.25, 0.25, 0.9]
    rows[0, 1, :5] = [0.51, 0.5, 0.25, 0.25, 0.8]
    rows[0, 2, :5] = [0.5, 0.5, 0.25, 0.25, 0.85]  # same place, other class: kept (class-wise NMS)
    rows[0, :2, 5 + 2] = 1.0
    rows[0, 2, 5 + 5] = 1.0
    geom = Geometry(width=1280, height=720, scale_x=0.5, scale_y=0.5, pad_x=0, pad_y=140)
    dets = yolo_detections(
        rows, [geom], (640, 640), confidence=0.25, iou=0.45, max_detections=10, labels=["a", "b", "car"]
    )[0]
    assert [(d["class"], d["label"]) for d in dets] == [(2, "car"), (5, "5")]
    assert dets[0]["box"] == pytest.approx([480, 200, 800, 520], abs=0.5)  # centre of 1280x720


def test_wordpiece() -> None:
    wp = WordPiece(VOCAB, lowercase=True)
    ids, mask = wp.encode("The edge clusters, running models!", 12)
    tokens = [VOCAB[i] for i in ids[: int(mask.sum())]]
    assert tokens == [
        "[CLS]",
        "the",
        "edge",
        "cluster",
        "##s",
        ",",
        "run",
        "##ning",
        "model",
        "##s",
        "!",
        "[SEP]",
    ]
    ids, mask = wp.encode("Ünrelated zzz", 8)
    assert [VOCAB[i] for i in ids[:4]] == ["[CLS]", "un", "##related", "[UNK]"] and mask.sum() == 5
    ids, mask = wp.encode("the " * 100, 6)
    assert ids.shape == (6,) and VOCAB[ids[-1]] == "[SEP]" and mask.all()


def test_tensor_proto_round_trip_uses_tensor_content() -> None:
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    proto = to_tensor_proto(arr)
    assert proto.dtype == types_pb2.DT_FLOAT and len(proto.tensor_content) == arr.nbytes
    assert not proto.float_val
    assert np.array_equal(from_tensor_proto(proto), arr)
    scalar = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT32, int_val=[7])
    scalar.tensor_shape.dim.add().size = 3
    assert from_tensor_proto(scalar).tolist() == [7, 7, 7]  # TF's single-value shorthand


def test_rest_json_strings_b64_and_dtypes() -> None:
    from kubevc.gateway._rest import format_predict, json_to_array, parse_predict

    arr = json_to_array([{"b64": "AAEC"}, {"b64": "/w=="}], "instances", None)
    assert arr.dtype == object and arr.tolist() == [b"\x00\x01\x02", b"\xff"]
    assert json_to_array([["a", "b"]], "x", None).tolist() == [[b"a", b"b"]]
    assert json_to_array([[1, 2]], "x", None).dtype == np.int32
    assert json_to_array([[1.5, 2]], "x", None).dtype == np.float32
    assert json_to_array([3_000_000_000], "x", None).dtype == np.int64
    with pytest.raises(BadRequest, match="x: invalid base64"):
        json_to_array([{"b64": "!!"}], "x", None)
    with pytest.raises(BadRequest, match="x: expected numbers"):
        json_to_array([[1, None]], "x", None)
    inputs, columnar, sig = parse_predict(
        {"signature_name": "s", "inputs": {"a": [[1, 2]], "b": [0.5]}}, "a", {"a": "uint8"}
    )
    assert columnar and sig == "s" and inputs["a"].dtype == np.uint8 and inputs["b"].dtype == np.float32
    out = format_predict(
        {"p": np.array([[1, 2], [3, 4]], np.float32), "s": np.array([b"x", b"\xff"], object)}, columnar=False
    )
    assert len(out["predictions"]) == 2 and out["predictions"][1]["s"] == {"b64": "/w=="}


def test_boxes_outside_the_image_are_clipped_to_it() -> None:
    geom = Geometry(width=451, height=300, scale_x=640 / 451, scale_y=640 / 451, pad_x=0, pad_y=107)
    out = geom.to_original(np.array([[-20, 50, 700, 600], [10, 120, 20, 130]], np.float32))
    assert out[0].tolist() == pytest.approx([0, 0, 451, 300])
    assert out[1].tolist() == pytest.approx([10 * 451 / 640, 13 * 451 / 640, 20 * 451 / 640, 23 * 451 / 640])


def test_model_detections_formats_units_count_and_threshold() -> None:
    from kubevc.gateway._postprocess import model_detections

    geom = Geometry(width=1280, height=720, scale_x=0.5, scale_y=0.5, pad_x=0, pad_y=140)
    boxes = np.zeros((2, 5, 4), np.float32)
    scores = np.zeros((2, 5), np.float32)
    classes = np.zeros((2, 5), np.float32)
    boxes[0, :3] = [[0.375, 0.25, 0.625, 0.75], [0.5, 0.5, 0.6, 0.6], [0, 0, 0.1, 0.1]]  # yxyx
    scores[0, :3] = [0.6, 0.9, 0.1]
    classes[0, :3] = [2, 1, 3]
    boxes[0, 3], scores[0, 3] = [0.1, 0.1, 0.2, 0.2], 0.99  # past num_detections: ignored
    boxes[1, 0], scores[1, 0], classes[1, 0] = [0.4, 0.4, 0.6, 0.6], 0.7, 1
    num = np.array([3, 1], np.float32)
    kw = {"confidence": 0.25, "max_detections": 10, "labels": ["bg", "person", "car"]}
    out = model_detections(
        boxes, scores, classes, num, [geom, geom], (640, 640), box_format="yxyx", box_units="normalized", **kw
    )
    assert [[d["label"] for d in img] for img in out] == [["person", "car"], ["person"]]
    assert out[0][1]["box"] == pytest.approx([320, 200, 960, 520], abs=0.01)  # centre of 1280x720
    assert out[0][0]["score"] == pytest.approx(0.9)
    no_num = model_detections(
        boxes, scores, classes, None, [geom], (640, 640), box_format="yxyx", box_units="normalized", **kw
    )
    assert no_num[0][0]["score"] == pytest.approx(0.99)  # without num every row counts
    pixels = boxes[:, :, [1, 0, 3, 2]] * 640  # the same boxes as xyxy model-input pixels
    same = model_detections(
        pixels, scores, classes, num, [geom, geom], (640, 640), box_format="xyxy", box_units="pixels", **kw
    )
    assert same == out
    kw["max_detections"] = 1
    top = model_detections(
        boxes, scores, classes, num, [geom, geom], (640, 640), box_format="yxyx", box_units="normalized", **kw
    )
    assert [len(x) for x in top] == [1, 1] and top[0][0]["label"] == "person"
    with pytest.raises(ValueError, match="do not match"):
        model_detections(
            boxes,
            scores[:, :4],
            classes,
            num,
            [geom],
            (640, 640),
            box_format="yxyx",
            box_units="pixels",
            **kw,
        )


def _reference_letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """A straightforward letterbox: Pillow bilinear to the fitted size, pasted on a grey canvas."""
    h, w = image.shape[:2]
    s = min(width / w, height / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    resized = np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.BILINEAR))
    canvas = np.full((height, width, 3), 114, dtype=np.uint8)
    px, py = (width - nw) // 2, (height - nh) // 2
    canvas[py : py + nh, px : px + nw] = resized
    return canvas


@pytest.mark.parametrize(
    ("photo", "size"),
    [(data.astronaut(), (640, 640)), (data.coffee(), (640, 640)), (data.chelsea(), (320, 256))],
)
def test_letterbox_into_the_batch_matches_a_reference_letterbox(
    photo: np.ndarray, size: tuple[int, int]
) -> None:
    width, height = size
    cfg = InputConfig(kind="image", name="x", width=width, height=height)
    batch = np.zeros((2, height, width, 3), dtype=np.uint8)
    out, _ = resize_image(photo, cfg, batch[1])
    assert np.shares_memory(out, batch)  # written in place, not copied into the slot afterwards
    expect = _reference_letterbox(photo, width, height)
    assert np.abs(batch[1].astype(int) - expect).max() <= 1
    assert not batch[0].any()  # the other slot is untouched
    decoded = decode_for_model(jpeg(photo, 95), "image/jpeg", cfg, 10**8)
    from_jpeg, _ = resize_decoded(decoded, cfg)
    assert np.abs(from_jpeg.astype(int) - expect).mean() < 6  # the same photo through JPEG


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "uint8"])
def test_model_tensor_matches_a_reference_normalisation(layout: str, dtype: str) -> None:
    cfg = InputConfig(
        kind="image",
        name="x",
        width=40,
        height=30,
        dtype=dtype,
        layout=layout,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
    )
    rng = np.random.default_rng(3)
    batch = rng.integers(0, 256, (3, 30, 40, 3), dtype=np.uint8)
    batch[0, 0, 0] = [0, 255, 128]  # both ends of the byte range
    tensor = to_model_tensor(batch, cfg)
    expect = batch.astype(np.float64)
    if dtype != "uint8":
        expect = (expect - cfg.mean) / cfg.std
    if layout == "NCHW":
        expect = expect.transpose(0, 3, 1, 2)
    assert tensor.dtype == np.dtype(dtype) and tensor.shape == expect.shape and tensor.flags.c_contiguous
    tolerance = {"uint8": 0, "float32": 1e-5, "float16": 4e-3}[dtype]  # half: 11-bit mantissa
    assert np.abs(tensor.astype(np.float64) - expect).max() <= tolerance


def test_pairwise_nms_keeps_what_the_round_by_round_nms_keeps(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    for _ in range(60):
        n = int(rng.integers(1, 300))
        corner = rng.random((n, 2), dtype=np.float32) * 200
        boxes = np.concatenate([corner, corner + rng.random((n, 2), dtype=np.float32) * 60 + 1], axis=1)
        scores = rng.random(n, dtype=np.float32)
        scores[: n // 3] = scores[0]  # ties keep their order
        iou, keep = float(rng.choice([0.3, 0.45, 0.7])), int(rng.integers(1, 300))
        pairwise = nms(boxes, scores, iou, keep)
        monkeypatch.setattr(_postprocess, "_PAIRWISE_NMS", 0)  # every size round by round
        rounds = nms(boxes, scores, iou, keep)
        monkeypatch.undo()
        assert np.array_equal(pairwise, rounds)
