"""Model outputs -> JSON-ready results: top-k classes, YOLO detections (decode + class-wise NMS),
or raw tensors. Vectorised numpy; the only loop in NMS runs once per *kept* box."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from kubevc.gateway._preprocess import Geometry

__all__ = ["nms", "tensor_json", "topk", "yolo_detections"]

Array = npt.NDArray[Any]
_MAX_WH = 7680.0  # class offset for batched class-wise NMS (larger than any box coordinate)
_MAX_CANDIDATES = 30000


def topk(probs: Array, k: int, labels: list[str]) -> list[list[dict[str, Any]]]:
    """Per batch row: the k best classes ``{"index", "label", "score"}``, best first."""
    scores = probs.reshape(probs.shape[0], -1).astype(np.float32, copy=False)
    k = min(k, scores.shape[1])
    idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part = np.take_along_axis(scores, idx, axis=1)
    order = np.argsort(-part, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1)
    part = np.take_along_axis(part, order, axis=1)
    return [
        [
            {"index": int(i), "label": labels[i] if i < len(labels) else str(int(i)), "score": float(s)}
            for i, s in zip(row_i.tolist(), row_s.tolist(), strict=True)
        ]
        for row_i, row_s in zip(idx, part, strict=True)
    ]


def box_iou(box: Array, boxes: Array) -> Array:
    """IoU of one box against many (x1, y1, x2, y2)."""
    xx1 = np.maximum(box[0], boxes[:, 0])
    yy1 = np.maximum(box[1], boxes[:, 1])
    xx2 = np.minimum(box[2], boxes[:, 2])
    yy2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    result: Array = inter / np.maximum(area + areas - inter, 1e-9)
    return result


def nms(boxes: Array, scores: Array, iou_threshold: float, max_keep: int) -> Array:
    """Greedy NMS; returns kept indices, best score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_keep:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[box_iou(boxes[i], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def yolo_detections(
    output: Array,
    geometries: list[Geometry],
    input_size: tuple[int, int],
    *,
    confidence: float,
    iou: float,
    max_detections: int,
    labels: list[str],
) -> list[list[dict[str, Any]]]:
    """YOLOv5-style ``(N, rows, 5 + classes)`` -> per image detections in original pixels.

    Rows are ``cx, cy, w, h, objectness, class scores...``; coordinates may be normalised (0..1,
    as TensorFlow exports emit them) or in model-input pixels; normalised is assumed when every
    candidate centre lies within 0..1.5.
    """
    if output.ndim == 2:
        output = output[None]
    width, height = input_size
    results: list[list[dict[str, Any]]] = []
    for b in range(output.shape[0]):
        pred = output[b]
        obj = pred[:, 4]
        cand = pred[obj > confidence]
        if cand.shape[0] == 0:
            results.append([])
            continue
        cls_scores = cand[:, 5:] * cand[:, 4:5]
        cls = cls_scores.argmax(axis=1)
        score = cls_scores[np.arange(cls.size), cls]
        mask = score > confidence
        cand, cls, score = cand[mask], cls[mask], score[mask]
        if cand.shape[0] > _MAX_CANDIDATES:
            top = np.argpartition(-score, _MAX_CANDIDATES)[:_MAX_CANDIDATES]
            cand, cls, score = cand[top], cls[top], score[top]
        xywh = cand[:, :4].astype(np.float32)
        if xywh.size and float(np.abs(xywh[:, :2]).max()) <= 1.5:
            xywh = xywh * np.array([width, height, width, height], dtype=np.float32)
        boxes = np.empty_like(xywh)
        boxes[:, :2] = xywh[:, :2] - xywh[:, 2:] / 2
        boxes[:, 2:] = xywh[:, :2] + xywh[:, 2:] / 2
        offset = boxes + (cls.astype(np.float32) * _MAX_WH)[:, None]
        keep = nms(offset, score, iou, max_detections)
        geom = geometries[b] if b < len(geometries) else geometries[-1]
        kept = geom.to_original(boxes[keep])
        results.append(
            [
                {
                    "box": [round(float(v), 2) for v in box],
                    "score": round(float(s), 5),
                    "class": int(c),
                    "label": labels[c] if c < len(labels) else str(int(c)),
                }
                for box, s, c in zip(kept.tolist(), score[keep].tolist(), cls[keep].tolist(), strict=True)
            ]
        )
    return results


def tensor_json(array: Array) -> dict[str, Any]:
    """A raw tensor as ``{"dtype", "shape", "data"}`` (data nested like the shape)."""
    if array.dtype.kind in "SO":
        data: Any = [
            v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in array.reshape(-1).tolist()
        ]
        data = np.asarray(data, dtype=object).reshape(array.shape).tolist()
    else:
        data = array
    return {
        "dtype": str(array.dtype) if array.dtype.kind not in "SO" else "string",
        "shape": list(array.shape),
        "data": data,
    }
