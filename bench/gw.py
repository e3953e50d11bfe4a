"""Adapters to the gateway's own code (pre-processing, post-processing, app).

The benchmarks measure the gateway's real functions; where one is not importable (the gateway is
being built in parallel) the caller records a skip with the reason instead of a number.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy.typing as npt

Array = npt.NDArray[Any]

# The 80 COCO class names YOLOv5 is trained on (so detection JSON carries real label lengths).
COCO = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic_light",
    "fire_hydrant",
    "stop_sign",
    "parking_meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports_ball",
    "kite",
    "baseball_bat",
    "baseball_glove",
    "skateboard",
    "surfboard",
    "tennis_racket",
    "bottle",
    "wine_glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot_dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted_plant",
    "bed",
    "dining_table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell_phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy_bear",
    "hair_drier",
    "toothbrush",
]
COCO_LABELS = [name.replace("_", " ") for name in COCO]


class Missing(RuntimeError):
    """The gateway part a benchmark needs is not importable."""


def _attr(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise Missing(f"{module}.{name} not available: {exc}") from exc


def input_config(size: int, dtype: str = "uint8", resize: str = "letterbox", name: str = "images") -> Any:
    cls = _attr("kubevc.gateway._config", "InputConfig")
    return cls(kind="image", name=name, width=size, height=size, dtype=dtype, resize=resize)


def identity_geometry(size: int) -> Any:
    geometry = _attr("kubevc.gateway._preprocess", "Geometry")
    return geometry(size, size, 1.0, 1.0, 0.0, 0.0)


def detections(output: Array, size: int = 640) -> list[dict[str, Any]]:
    """The gateway's YOLO decode + class-wise NMS on one (1, 25200, 85) output (profile defaults)."""
    fn = _attr("kubevc.gateway._postprocess", "yolo_detections")
    result: list[list[dict[str, Any]]] = fn(
        output,
        [identity_geometry(size)],
        (size, size),
        confidence=0.25,
        iou=0.45,
        max_detections=300,
        labels=COCO_LABELS,
    )
    return result[0]


def model_detections(outputs: dict[str, Array], size: int = 640) -> list[dict[str, Any]]:
    """The gateway's ``postprocess: detections`` (NMS ran in the model graph) on one image's TF
    detection-export outputs (profile defaults: yxyx boxes normalised to the model input)."""
    fn = _attr("kubevc.gateway._postprocess", "model_detections")
    result: list[list[dict[str, Any]]] = fn(
        outputs["detection_boxes"],
        outputs["detection_scores"],
        outputs["detection_classes"],
        outputs.get("num_detections"),
        [identity_geometry(size)],
        (size, size),
        box_format="yxyx",
        box_units="normalized",
        confidence=0.25,
        max_detections=300,
        labels=COCO_LABELS,
    )
    return result[0]


def read_response(data: bytes, wanted: set[str]) -> dict[str, Array]:
    """The gateway's zero-copy ``PredictResponse`` reader + tensor views, as its backend client
    does with every answer."""
    read = _attr("kubevc.gateway._wire", "read_predict_response")
    convert = _attr("kubevc.gateway._tensors", "from_tensor_proto")
    outputs, _spec = read(data, wanted)
    return {name: convert(proto, content) for name, (proto, content) in outputs.items()}


def topk(output: Array, k: int = 5) -> list[dict[str, Any]]:
    """The gateway's top-k on one (1, classes) output."""
    fn = _attr("kubevc.gateway._postprocess", "topk")
    result: list[list[dict[str, Any]]] = fn(output, k, [])
    return result[0]


def preprocess_jpeg(data: bytes, size: int = 640) -> Array:
    """The gateway's JPEG decode (header check, reduced-scale DCT) + letterbox to the model input."""
    decode = _attr("kubevc.gateway._preprocess", "decode_image")
    prepare = _attr("kubevc.gateway._preprocess", "prepare_images")
    image = decode(data, "image/jpeg", 40_000_000, target=(size, size))
    batch, _geometries = prepare([image], input_config(size))
    out: Array = batch
    return out


def response_json(payload: Any) -> bytes:
    """A JSON response body as Litestar writes it (msgspec); orjson when msgspec is absent."""
    try:
        import msgspec

        data: bytes = msgspec.json.encode(payload)
        return data
    except ImportError:
        import orjson

        return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
