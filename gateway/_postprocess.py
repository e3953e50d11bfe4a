"""Model outputs -> JSON-ready results: top-k classes, YOLO detections (decode + class-wise NMS),
detections of models with NMS in their graph, or raw tensors. Vectorised numpy; the only loop in
NMS runs once per *kept* box. Both detection paths map boxes back to the original image through
one function, :func:`detections_json` (the inverse of the letterbox/resize, ``Geometry``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from kubevc.gateway._preprocess import Geometry

__all__ = ["detections_json", "model_detections", "nms", "tensor_json", "topk", "yolo_detections"]

Array = npt.NDArray[Any]
_MAX_WH = 7680.0  # class offset for batched class-wise NMS (larger than any box coordinate)
_MAX_CANDIDATES = 30000
_PAIRWISE_NMS = 256  # up to this many candidates NMS compares all pairs at once (256^2 floats)


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


def nms(boxes: Array, scores: Array, iou_threshold: float, max_keep: int) -> Array:
    """Greedy NMS; returns kept indices, best score first.

    Each round keeps the best remaining box and drops, in one vectorised step, every remaining box
    that overlaps it by more than ``iou_threshold``: rounds = kept boxes, not candidates."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[order, k], dtype=np.float32) for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    if order.size <= _PAIRWISE_NMS:
        return order[_nms_pairwise(x1, y1, x2, y2, areas, iou_threshold, max_keep)]
    alive = np.arange(order.size)
    keep: list[int] = []
    while alive.size and len(keep) < max_keep:
        i = int(alive[0])
        keep.append(i)
        rest = alive[1:]
        if not rest.size:
            break
        w = np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])
        h = np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])
        inter = np.maximum(w, 0) * np.maximum(h, 0)
        # iou <= t  <=>  inter <= t * union (no division)
        alive = rest[inter <= iou_threshold * (areas[i] + areas[rest] - inter)]
    return order[np.asarray(keep, dtype=np.int64)]


def _nms_pairwise(
    x1: Array, y1: Array, x2: Array, y2: Array, areas: Array, iou_threshold: float, max_keep: int
) -> Array:
    """``nms`` for a few hundred boxes (sorted best first): every pair's overlap in one
    vectorised step, then the greedy pass ORs one row of the boolean matrix per kept box.
    Keeps exactly the boxes the round-by-round version keeps."""
    w = np.minimum(x2[:, None], x2[None, :]) - np.maximum(x1[:, None], x1[None, :])
    h = np.minimum(y2[:, None], y2[None, :]) - np.maximum(y1[:, None], y1[None, :])
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    overlaps = inter > iou_threshold * (areas[:, None] + areas[None, :] - inter)
    suppressed = np.zeros(len(areas), dtype=bool)
    keep: list[int] = []
    for i in range(len(areas)):
        if suppressed[i]:
            continue
        keep.append(i)
        if len(keep) >= max_keep:
            break
        suppressed |= overlaps[i]
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
        results.append(detections_json(boxes[keep], score[keep], cls[keep], geom, labels))
    return results


def detections_json(
    boxes: Array, scores: Array, classes: Array, geometry: Geometry, labels: list[str]
) -> list[dict[str, Any]]:
    """Boxes ``x1, y1, x2, y2`` in model-input pixels -> detections in original-image pixels.

    The one place where boxes leave model-input coordinates, for both the ``yolo`` and the
    ``detections`` post-processing."""
    kept = geometry.to_original(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
    return [
        {
            "box": [round(float(v), 2) for v in box],
            "score": round(float(s), 5),
            "class": int(c),
            "label": labels[int(c)] if 0 <= int(c) < len(labels) else str(int(c)),
        }
        for box, s, c in zip(kept.tolist(), scores.tolist(), classes.tolist(), strict=True)
    ]


def model_detections(
    boxes: Array,
    scores: Array,
    classes: Array,
    num: Array | None,
    geometries: list[Geometry],
    input_size: tuple[int, int],
    *,
    box_format: str,
    box_units: str,
    confidence: float,
    max_detections: int,
    labels: list[str],
) -> list[list[dict[str, Any]]]:
    """Outputs of a model with NMS in its graph -> per image detections in original pixels.

    ``boxes (N, K, 4)``, ``scores (N, K)``, ``classes (N, K)`` and optionally ``num (N,)`` (valid
    rows per image; TF's ``num_detections``), as TensorFlow detection exports emit them. Boxes are
    ``yxyx`` or ``xyxy``, ``normalized`` to 0..1 or in model-input ``pixels``. Rows with a score
    above ``confidence`` are kept, best first, at most ``max_detections``. ``ValueError`` when the
    shapes do not fit together."""
    if boxes.ndim == 2:
        boxes, scores, classes = boxes[None], scores.reshape(1, -1), classes.reshape(1, -1)
    if boxes.ndim != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes have shape {list(boxes.shape)}, not [N, K, 4]")
    n, k = boxes.shape[:2]
    if scores.shape != (n, k) or classes.shape != (n, k):
        raise ValueError(
            f"scores {list(scores.shape)} and classes {list(classes.shape)} do not match boxes"
            f" {list(boxes.shape)}"
        )
    counts = np.full(n, k, dtype=np.int64)
    if num is not None:
        flat = np.asarray(num).reshape(-1)
        if flat.size != n:
            raise ValueError(f"num_detections has {flat.size} values for a batch of {n}")
        counts = np.clip(flat.astype(np.int64), 0, k)
    width, height = input_size
    order_xyxy = [1, 0, 3, 2] if box_format == "yxyx" else [0, 1, 2, 3]
    scale = np.array([width, height, width, height], dtype=np.float32)
    results: list[list[dict[str, Any]]] = []
    for b in range(n):
        c = int(counts[b])
        sc = scores[b, :c].astype(np.float32)
        keep = np.flatnonzero(sc > confidence)
        keep = keep[np.argsort(-sc[keep], kind="stable")][:max_detections]
        bx = boxes[b, keep][:, order_xyxy].astype(np.float32)
        if box_units == "normalized":
            bx *= scale
        cls = np.rint(classes[b, keep]).astype(np.int64)
        geom = geometries[b] if b < len(geometries) else geometries[-1]
        results.append(detections_json(bx, sc[keep], cls, geom, labels))
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
