"""Adapters to the gateway's own code (post-processing, pre-processing, app factory).

The benchmarks measure the gateway's real functions; where one is not importable (the gateway is
being built in parallel) the caller records a skip with the reason instead of a number.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


class Missing(RuntimeError):
    """The gateway part a benchmark needs is not importable."""


def _import(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Missing(f"{module} not importable: {exc}") from exc


def detections(output: Array, size: int = 640) -> list[dict[str, Any]]:
    """The gateway's YOLO decode + class-wise NMS on one (1, 25200, 85) output."""
    raise Missing("kubevc.gateway post-processing not available yet")


def topk(output: Array, k: int = 5) -> list[dict[str, Any]]:
    """The gateway's top-k with labels on one (1, classes) output."""
    raise Missing("kubevc.gateway post-processing not available yet")


def preprocess_jpeg(data: bytes, size: int = 640) -> Array:
    """The gateway's JPEG decode + letterbox to the model input."""
    raise Missing("kubevc.gateway pre-processing not available yet")


def response_json(payload: Any) -> bytes:
    """Bytes of a JSON response body as the gateway writes it (orjson when the gateway uses it)."""
    import orjson

    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)


__all__ = ["Missing", "detections", "np", "preprocess_jpeg", "response_json", "topk"]
