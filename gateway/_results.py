"""Backend outputs -> the JSON answer of ``/v1/models/{name}/infer``, per ``output.postprocess``.

The numeric work (YOLO decoding, NMS, top-k) lives in ``_postprocess``; this module picks the
outputs a profile names, pairs results with the images they came from and shapes the document.
"""

from __future__ import annotations

from typing import Any

import numpy.typing as npt

from kubevc.gateway._errors import BackendError
from kubevc.gateway._postprocess import model_detections, tensor_json, topk, yolo_detections
from kubevc.gateway._preprocess import Geometry
from kubevc.gateway._profile import Profile

__all__ = ["infer_result"]

Array = npt.NDArray[Any]


def infer_result(
    profile: Profile,
    outputs: dict[str, Array],
    geometries: list[Geometry],
    times: list[float] | None,
) -> dict[str, Any]:
    out = profile.cfg.output
    name = profile.cfg.name
    if out.postprocess == "none":
        chosen = outputs if out.name is None else {out.name: _pick(outputs, out.name)}
        return {"model": name, "outputs": {k: tensor_json(v) for k, v in chosen.items()}}
    if out.postprocess == "detections":
        results = _graph_detections(profile, outputs, geometries)
    elif out.postprocess == "topk":
        results = _classes(profile, outputs)
    else:
        results = _yolo_detections(profile, outputs, geometries)
    if times is not None:
        for item, t in zip(results, times, strict=False):
            item["time"] = t
    return {"model": name, "results": results}


def _classes(profile: Profile, outputs: dict[str, Array]) -> list[dict[str, Any]]:
    """``postprocess: topk``: the best classes of each image."""
    out = profile.cfg.output
    arr = _pick(outputs, out.name)
    if arr.dtype.kind not in "fiu" or arr.ndim < 1:
        raise BackendError(f"output {out.name!r} is not a numeric tensor")
    return [{"classes": c} for c in topk(arr if arr.ndim > 1 else arr[None], out.top_k, profile.labels)]


def _yolo_detections(
    profile: Profile, outputs: dict[str, Array], geometries: list[Geometry]
) -> list[dict[str, Any]]:
    """``postprocess: yolo``: YOLO rows -> boxes after NMS, in the original image's coordinates."""
    out = profile.cfg.output
    arr = _pick(outputs, out.name)
    if arr.ndim not in (2, 3) or arr.shape[-1] < 6:
        raise BackendError(f"output {out.name!r} has shape {list(arr.shape)}, not YOLO rows")
    batch = arr.shape[0] if arr.ndim == 3 else 1
    geometries = _per_image(profile, geometries, batch)
    dets = yolo_detections(
        arr,
        geometries,
        (profile.cfg.input.width, profile.cfg.input.height),
        confidence=out.confidence_threshold,
        iou=out.iou_threshold,
        max_detections=out.max_detections,
        labels=profile.labels,
    )
    return _per_image_detections(dets, geometries)


def _graph_detections(
    profile: Profile, outputs: dict[str, Array], geometries: list[Geometry]
) -> list[dict[str, Any]]:
    """``postprocess: detections``: a model that ran NMS itself (TF detection exports)."""
    out = profile.cfg.output
    boxes = _pick(outputs, out.boxes_name)
    num = _pick(outputs, out.num_detections_name) if out.num_detections_name else None
    batch = boxes.shape[0] if boxes.ndim == 3 else 1
    geometries = _per_image(profile, geometries, batch)
    try:
        dets = model_detections(
            boxes,
            _pick(outputs, out.scores_name),
            _pick(outputs, out.classes_name),
            num,
            geometries,
            (profile.cfg.input.width, profile.cfg.input.height),
            box_format=out.box_format,
            box_units=out.box_units,
            confidence=out.confidence_threshold,
            max_detections=out.max_detections,
            labels=profile.labels,
        )
    except ValueError as exc:
        raise BackendError(f"model {profile.cfg.name!r}: detection outputs unusable: {exc}") from None
    return _per_image_detections(dets, geometries)


def _per_image_detections(
    dets: list[list[dict[str, Any]]], geometries: list[Geometry]
) -> list[dict[str, Any]]:
    return [
        {"width": g.width, "height": g.height, "detections": d} for d, g in zip(dets, geometries, strict=True)
    ]


def _per_image(profile: Profile, geometries: list[Geometry], batch: int) -> list[Geometry]:
    """One geometry per image; a raw tensor batch shares the identity geometry."""
    if not geometries:
        w, h = profile.cfg.input.width, profile.cfg.input.height
        geometries = [Geometry(w, h, 1.0, 1.0, 0.0, 0.0)]
    return [geometries[min(i, len(geometries) - 1)] for i in range(batch)]


def _pick(outputs: dict[str, Array], name: str | None) -> Array:
    if name is None:
        if len(outputs) != 1:
            raise BackendError(f"backend returned outputs {sorted(outputs)}; set output.name to choose one")
        return next(iter(outputs.values()))
    if name not in outputs:
        raise BackendError(f"backend response has no output {name!r} (has {sorted(outputs)})")
    return outputs[name]
