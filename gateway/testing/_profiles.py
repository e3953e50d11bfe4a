"""Gateway configuration documents (the dicts ``parse_config`` takes) for tests and demos.

Each function returns one entry in the ``gateway.yaml`` form (camelCase keys), for the models
:class:`~kubevc.gateway.testing.TestBackend` serves and for other backends with the same kinds
of model; :func:`config_doc` puts backends and models together. Keys a caller does not set are
left out, so the gateway's defaults apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "backend_doc",
    "classifier_profile",
    "config_doc",
    "detections_profile",
    "tensor_profile",
    "text_profile",
    "yolo_profile",
]

Doc = dict[str, Any]


def backend_doc(
    name: str, address: str, protocol: Literal["tfserving", "v2"] = "tfserving", **options: Any
) -> Doc:
    """A ``backends[]`` entry; ``options`` are further keys as in gateway.yaml (``retries=0``)."""
    return {"name": name, "protocol": protocol, "address": address, **options}


def _model(name: str, backend: str, backend_model: str | None, inp: Doc, out: Doc) -> Doc:
    doc: Doc = {"name": name, "backend": backend}
    if backend_model is not None:
        doc["backendModel"] = backend_model
    doc["input"], doc["output"] = inp, out
    return doc


def yolo_profile(name: str = "yolov5", backend: str = "tf", *, backend_model: str | None = None) -> Doc:
    """A YOLOv5 detector (640x640 uint8 ``images``, rows in ``output0``, NMS in the gateway)."""
    return _model(
        name,
        backend,
        backend_model,
        {"kind": "image", "name": "images"},
        {"name": "output0", "postprocess": "yolo"},
    )


def detections_profile(
    name: str = "yolov5-nms", backend: str = "tf", *, backend_model: str | None = None
) -> Doc:
    """A detector with NMS in its graph (TF detection export outputs)."""
    return _model(
        name, backend, backend_model, {"kind": "image", "name": "images"}, {"postprocess": "detections"}
    )


def classifier_profile(
    name: str,
    backend: str,
    *,
    size: int,
    backend_model: str | None = None,
    dtype: Literal["uint8", "float32"] = "float32",
    resize: Literal["letterbox", "stretch", "center-crop"] = "center-crop",
    mean: float | None = 127.5,
    std: float | None = 127.5,
    top_k: int = 3,
    labels: Sequence[str] | None = None,
) -> Doc:
    """An image classifier on ``input`` (``size`` x ``size``), top-k of ``output0``; ``mean``/``std``
    apply to all three channels (None: the gateway's defaults)."""
    inp: Doc = {"kind": "image", "name": "input", "width": size, "height": size, "dtype": dtype}
    inp["resize"] = resize
    if mean is not None:
        inp["mean"] = [mean] * 3
    if std is not None:
        inp["std"] = [std] * 3
    out: Doc = {"name": "output0", "postprocess": "topk", "topK": top_k}
    if labels is not None:
        out["labels"] = list(labels)
    return _model(name, backend, backend_model, inp, out)


def text_profile(
    name: str,
    backend: str,
    *,
    vocab_file: str | Path,
    sequence_length: int,
    input_name: str = "input_ids",
    mask_name: str | None = "attention_mask",
    output: str = "logits",
) -> Doc:
    """A WordPiece text model (BERT-like): token ids (and mask) in, ``output`` returned as is."""
    inp: Doc = {
        "kind": "text",
        "name": input_name,
        "sequenceLength": sequence_length,
        "vocabFile": str(vocab_file),
    }
    if mask_name is not None:
        inp["maskName"] = mask_name
    return _model(name, backend, None, inp, {"name": output, "postprocess": "none"})


def tensor_profile(
    name: str,
    backend: str,
    *,
    backend_model: str | None = None,
    dtype: Literal["uint8", "float32"] | None = None,
    output: str | None = None,
) -> Doc:
    """Raw tensors in (``input``), raw tensors out: the one output ``output`` names, or every
    output (None)."""
    inp: Doc = {"kind": "tensor", "name": "input"}
    if dtype is not None:
        inp["dtype"] = dtype
    return _model(name, backend, backend_model, inp, {"name": output, "postprocess": "none"})


def config_doc(
    backends: Sequence[Doc],
    models: Sequence[Doc],
    *,
    log_level: str | None = "warning",
    limits: Doc | None = None,
) -> Doc:
    """A whole ``gateway.yaml`` document (``log_level`` None: the default level)."""
    doc: Doc = {}
    if log_level is not None:
        doc["server"] = {"logLevel": log_level}
    if limits is not None:
        doc["limits"] = dict(limits)
    doc["backends"] = list(backends)
    doc["models"] = list(models)
    return doc
