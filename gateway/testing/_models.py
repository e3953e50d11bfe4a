"""Numpy "models" with the real input and output shapes, for :class:`TestBackend`.

============  ==========================  ===============================  ===================
model         input (name: shape)          output (name: shape)             input dtypes
============  ==========================  ===============================  ===================
mobilenet     ``input: (N, 224, 224, 3)``  ``output0: (N, 1001)`` probs     uint8, float32
inceptionv3   ``input: (N, 299, 299, 3)``  ``output0: (N, 1001)`` probs     uint8, float32
yolov5        ``images: (N, 640, 640, 3)`` ``output0: (N, 25200, 85)``      uint8, float32
yolov5-f32    as ``yolov5``, declared float32
bert          ``input_ids: (N, 500)``      ``logits: (N, 2)``               int32, int64
yolov5-nms    ``images: (N, 640, 640, 3)`` ``detection_boxes: (N, 100, 4)``  uint8, float32
                                           ``detection_scores: (N, 100)``
                                           ``detection_classes: (N, 100)``
                                           ``num_detections: (N,)``
regressor     ``x: (N, 4)``                ``y: (N, 1)`` row sums           float32 only
strings       ``text: (N,)`` strings       ``length: (N,)`` int64           string only
kinds         six ``(N, 2)`` inputs        each echoed as ``<name>_out``    one dtype each
yolov5-       ``image_bytes: (N,)``         as ``yolov5-nms``                string only
encoded       encoded JPEG/PNG, decoded
              in the "graph"
============  ==========================  ===============================  ===================

The signature each model declares (``GetModelMetadata``, v2 ``ModelMetadata``) names one dtype
per input, as a real export does: uint8 for the detectors (float32 for ``yolov5-f32``) and
InceptionV3, float32 for MobileNet, int64 token ids for BERT (which still accepts int32, as the
test configurations send either).

Deterministic but dependent on the input. YOLO rows are ``cx, cy, w, h`` normalised to 0..1 (as
TensorFlow exports of YOLOv5 emit them), objectness, then 80 class scores; a few objects placed
where the image has the most contrast, each reported by several overlapping rows so that NMS has
real work. ``yolov5-nms`` is the same detector exported with NMS in the graph (TF detection export
outputs, boxes as normalised ``ymin, xmin, ymax, xmax``): it reports exactly the best row of each
``yolov5`` object.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = ["KINDS", "NMS_DETECTIONS", "YOLO_CLASSES", "YOLO_ROWS", "TestModel", "default_models", "shapes"]

Array = npt.NDArray[Any]
YOLO_ROWS = 25200  # 3 anchors x (80x80 + 40x40 + 20x20) for a 640x640 input
YOLO_CLASSES = 80


@dataclass(frozen=True)
class TestModel:
    """A numpy "model": named inputs with fixed trailing shapes, a function, named outputs."""

    __test__ = False  # not a pytest test class

    name: str
    inputs: dict[str, tuple[int, ...]]  # input name -> shape without the batch dimension
    dtypes: tuple[str, ...]  # accepted input dtypes
    outputs: dict[str, tuple[int, ...]]
    fn: Callable[[dict[str, Array]], dict[str, Array]]
    optional_inputs: tuple[str, ...] = ()
    version: int = 1  # the latest loaded version: what a request without version or label gets
    labels: dict[str, int] = field(default_factory=lambda: {"stable": 1})  # label -> version
    versions: tuple[int, ...] = ()  # every loaded version (empty: just ``version``)
    # the dtype the signature declares per input ("string" for DT_STRING / BYTES); inputs not
    # listed declare float32 when they accept it, else their first accepted dtype
    signature: dict[str, str] = field(default_factory=dict)
    output_dtypes: dict[str, str] = field(default_factory=dict)  # outputs not listed: float32
    strict: bool = False  # refuse any input dtype but the declared one (as a real graph does)

    @property
    def loaded(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.versions) | {self.version}))

    def declared_dtype(self, name: str) -> str:
        if name in self.signature:
            return self.signature[name]
        return "float32" if "float32" in self.dtypes else self.dtypes[0]

    def accepts(self, name: str, array: Array) -> bool:
        if self.strict:
            declared = self.declared_dtype(name)
            return array.dtype.kind in "OSU" if declared == "string" else array.dtype.name == declared
        return array.dtype.name in self.dtypes


def _features(images: Array, grid: int = 4) -> Array:
    """Per-image mean colour of a grid x grid tiling, scaled to 0..1: shape (N, grid*grid*3)."""
    step = max(1, min(images.shape[1], images.shape[2]) // 64)  # ~64x64 samples are plenty
    x = images[:, ::step, ::step].astype(np.float32)
    if images.dtype == np.uint8 or x.max(initial=0.0) > 2.0:
        x /= 255.0
    n, h, w, c = x.shape
    hs, ws = h // grid, w // grid
    tiles = x[:, : hs * grid, : ws * grid].reshape(n, grid, hs, grid, ws, c).mean(axis=(2, 4))
    result: Array = tiles.reshape(n, -1)
    return result


def _classifier(input_name: str, size: int, seed: int) -> TestModel:
    rng = np.random.default_rng(seed)
    weights = rng.normal(0.0, 4.0, size=(48, 1001)).astype(np.float32)

    def fn(inputs: dict[str, Array]) -> dict[str, Array]:
        logits = (_features(inputs[input_name]) - 0.5) @ weights
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return {"output0": probs.astype(np.float32)}

    return TestModel(
        name="",
        inputs={input_name: (size, size, 3)},
        dtypes=("uint8", "float32"),
        outputs={"output0": (1001,)},
        fn=fn,
    )


_YOLO_OBJECTS = 3  # objects per image
_ROWS_PER_OBJECT = 8
NMS_DETECTIONS = 100  # K of the NMS-in-graph model's outputs


def _yolo_objects(images: Array) -> tuple[Array, Array, Array]:
    """Where the test detectors "see" objects: per image the 3 grid cells with the most contrast.

    Returns boxes ``(N, 3, 4)`` as normalised ``cx, cy, w, h``, classes ``(N, 3)`` and scores
    ``(N, 3)`` (objectness x class score of the best row)."""
    grid = 8
    n = images.shape[0]
    feats = _features(images, grid).reshape(n, grid * grid, 3)
    contrast = np.abs(feats - feats.mean(axis=1, keepdims=True)).sum(axis=2)  # (N, 64)
    cells = np.argsort(-contrast, axis=1, kind="stable")[:, :_YOLO_OBJECTS]  # (N, 3)
    chosen = np.take_along_axis(feats, cells[:, :, None], axis=1)  # (N, 3, 3)
    size = 0.12 + 0.1 * chosen.mean(axis=2)
    boxes = np.stack(
        [(cells % grid + 0.5) / grid, (cells // grid + 0.5) / grid, size, size * 0.8], axis=2
    ).astype(np.float32)
    k = np.arange(_YOLO_OBJECTS)
    classes = (chosen.argmax(axis=2) * 20 + k * 7) % YOLO_CLASSES
    scores = np.full(classes.shape, np.float32(0.95) * np.float32(0.9), dtype=np.float32)
    return boxes, classes, scores


def _yolo() -> TestModel:
    rng = np.random.default_rng(5)
    base = np.empty((YOLO_ROWS, 5 + YOLO_CLASSES), dtype=np.float32)
    base[:, 0:2] = rng.random((YOLO_ROWS, 2))
    base[:, 2:4] = rng.random((YOLO_ROWS, 2)) * 0.2 + 0.01
    base[:, 4] = rng.random(YOLO_ROWS) * 0.02  # background: objectness far below any threshold
    base[:, 5:] = rng.random((YOLO_ROWS, YOLO_CLASSES)) * 0.5
    jitter = _yolo_jitter()

    def fn(inputs: dict[str, Array]) -> dict[str, Array]:
        images = inputs["images"]
        n = images.shape[0]
        out = np.repeat(base[None], n, axis=0)
        boxes, classes, _ = _yolo_objects(images)
        for b in range(n):  # each object reported by 8 overlapping rows: NMS has real work
            for k in range(_YOLO_OBJECTS):
                rows = slice(1000 + k * 4000, 1000 + k * 4000 + _ROWS_PER_OBJECT)
                out[b, rows, 0:4] = boxes[b, k] + jitter
                out[b, rows, 4] = np.linspace(0.95, 0.6, _ROWS_PER_OBJECT, dtype=np.float32)
                out[b, rows, 5:] = 0.01
                out[b, rows, 5 + classes[b, k]] = 0.9
        return {"output0": out}

    return TestModel(
        name="yolov5",
        inputs={"images": (640, 640, 3)},
        dtypes=("uint8", "float32"),
        signature={"images": "uint8"},
        outputs={"output0": (YOLO_ROWS, 5 + YOLO_CLASSES)},
        fn=fn,
    )


def _yolo_jitter() -> Array:
    jitter: Array = np.random.default_rng(6).normal(0.0, 0.004, size=(_ROWS_PER_OBJECT, 4)).astype(np.float32)
    jitter[0] = 0.0  # the best row of each object sits exactly on it
    return jitter


def _yolo_nms() -> TestModel:
    """The same detector exported with NMS in the graph, as TF detection exports do: boxes
    ``(N, 100, 4)`` as normalised ``ymin, xmin, ymax, xmax``, scores and (float) classes
    ``(N, 100)``, ``num_detections (N,)``; rows past ``num_detections`` are zero."""

    def fn(inputs: dict[str, Array]) -> dict[str, Array]:
        images = inputs["images"]
        n = images.shape[0]
        cxcywh, classes, scores = _yolo_objects(images)
        order = np.argsort(-scores, axis=1, kind="stable")
        cxcywh = np.take_along_axis(cxcywh, order[:, :, None], axis=1)
        boxes = np.zeros((n, NMS_DETECTIONS, 4), np.float32)
        cx, cy, w, h = (cxcywh[:, :, i] for i in range(4))
        boxes[:, :_YOLO_OBJECTS] = np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=2)
        out_scores = np.zeros((n, NMS_DETECTIONS), np.float32)
        out_scores[:, :_YOLO_OBJECTS] = np.take_along_axis(scores, order, axis=1)
        out_classes = np.zeros((n, NMS_DETECTIONS), np.float32)
        out_classes[:, :_YOLO_OBJECTS] = np.take_along_axis(classes, order, axis=1)
        return {
            "detection_boxes": boxes,
            "detection_scores": out_scores,
            "detection_classes": out_classes,
            "num_detections": np.full(n, _YOLO_OBJECTS, np.float32),
        }

    return TestModel(
        name="yolov5-nms",
        inputs={"images": (640, 640, 3)},
        dtypes=("uint8", "float32"),
        signature={"images": "uint8"},
        outputs={
            "detection_boxes": (NMS_DETECTIONS, 4),
            "detection_scores": (NMS_DETECTIONS,),
            "detection_classes": (NMS_DETECTIONS,),
            "num_detections": (),
        },
        fn=fn,
    )


def _yolo_encoded() -> TestModel:
    """``yolov5-nms`` exported with image decoding in its graph: ``image_bytes (N,)`` encoded
    JPEG/PNG strings, each decoded and stretched to 640x640 inside the "model"."""
    nms = _yolo_nms()

    def fn(inputs: dict[str, Array]) -> dict[str, Array]:
        images = []
        for data in inputs["image_bytes"].reshape(-1):
            with Image.open(io.BytesIO(bytes(data))) as im:
                images.append(np.asarray(im.convert("RGB").resize((640, 640), Image.Resampling.BILINEAR)))
        return nms.fn({"images": np.stack(images)})

    return replace(
        nms,
        name="yolov5-encoded",
        inputs={"image_bytes": ()},
        dtypes=("object",),
        fn=fn,
        signature={"image_bytes": "string"},
        strict=True,
    )


def _bert() -> TestModel:
    def fn(inputs: dict[str, Array]) -> dict[str, Array]:
        ids = inputs["input_ids"].astype(np.int64)
        mask = inputs.get("attention_mask")
        used = (ids != 0) if mask is None else (mask != 0)
        a = ((ids * 7919) % 1000 * used).sum(axis=1) / 1000.0
        b = used.sum(axis=1).astype(np.float64)
        logits = np.stack([np.sin(a) * 3.0, np.cos(b / 10.0) * 3.0], axis=1)
        return {"logits": logits.astype(np.float32)}

    return TestModel(
        name="bert",
        inputs={"input_ids": (500,)},
        optional_inputs=("attention_mask", "token_type_ids"),
        dtypes=("int32", "int64"),
        # token ids as most BERT exports declare them
        signature={"input_ids": "int64", "attention_mask": "int64", "token_type_ids": "int64"},
        outputs={"logits": (2,)},
        fn=fn,
    )


def _regressor() -> TestModel:
    """A float32 tensor model: ``x (N, 4)`` -> ``y (N, 1)``, the sum of each row."""
    return TestModel(
        name="regressor",
        inputs={"x": (4,)},
        dtypes=("float32",),
        outputs={"y": (1,)},
        fn=lambda inputs: {"y": inputs["x"].sum(axis=1, keepdims=True, dtype=np.float32)},
        strict=True,
    )


def _strings() -> TestModel:
    """A string input model: ``text (N,)`` (DT_STRING / BYTES) -> ``length (N,)`` int64 bytes."""

    def fn(inputs: dict[str, Array]) -> dict[str, Array]:
        return {"length": np.array([len(bytes(v)) for v in inputs["text"].reshape(-1)], dtype=np.int64)}

    return TestModel(
        name="strings",
        inputs={"text": ()},
        dtypes=("object",),
        outputs={"length": ()},
        fn=fn,
        signature={"text": "string"},
        output_dtypes={"length": "int64"},
        strict=True,
    )


KINDS = {"f64": "float64", "i8": "int8", "u16": "uint16", "flag": "bool", "half": "float16", "i64": "int64"}


def _kinds() -> TestModel:
    """One input of each further dtype TF Serving's REST API takes, ``(N, 2)`` each, echoed back
    as ``<name>_out`` in the same dtype."""
    return TestModel(
        name="kinds",
        inputs={k: (2,) for k in KINDS},
        dtypes=tuple(KINDS.values()),
        outputs={f"{k}_out": (2,) for k in KINDS},
        fn=lambda inputs: {f"{k}_out": v for k, v in inputs.items()},
        signature=dict(KINDS),
        output_dtypes={f"{k}_out": v for k, v in KINDS.items()},
        strict=True,
    )


def default_models() -> dict[str, TestModel]:
    """The four models of the paper's Table 5, with their real shapes, ``yolov5-nms``, three that
    declare other dtypes: ``regressor`` (float32 tensors), ``strings`` (a string input) and
    ``kinds`` (float64, int8, uint16, bool, float16, int64 inputs), and ``yolov5-encoded``
    (encoded images in, decoded in the graph)."""
    return {
        "mobilenet": replace(_classifier("input", 224, 1), name="mobilenet", signature={"input": "float32"}),
        "inceptionv3": replace(
            _classifier("input", 299, 2), name="inceptionv3", signature={"input": "uint8"}
        ),
        "yolov5": _yolo(),
        # the same detector exported with a float32 input (TF REST clients send float instances)
        "yolov5-f32": replace(_yolo(), name="yolov5-f32", signature={"images": "float32"}),
        "yolov5-nms": _yolo_nms(),
        "bert": _bert(),
        "regressor": _regressor(),
        "strings": _strings(),
        "kinds": _kinds(),
        "yolov5-encoded": _yolo_encoded(),
    }


def shapes(models: Sequence[TestModel]) -> dict[str, dict[str, tuple[int, ...]]]:
    """Input shapes per model name (documentation helper)."""
    return {m.name: dict(m.inputs) for m in models}
