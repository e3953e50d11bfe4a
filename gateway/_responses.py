"""The bytes and headers of the gateway's HTTP answers: JSON bodies, JSON errors, version headers."""

from __future__ import annotations

from typing import Any

import numpy.typing as npt
import orjson
from litestar import Response

from kubevc.gateway._errors import GatewayError

__all__ = [
    "JSON",
    "LABEL_HEADER",
    "REQUEST_ID",
    "VERSION_HEADER",
    "dumps",
    "error_response",
    "is_big",
    "json_response",
    "version_headers",
]

Array = npt.NDArray[Any]
JSON = "application/json"
REQUEST_ID = "x-request-id"
LABEL_HEADER = "X-Kubevc-Model-Version-Label"
VERSION_HEADER = "X-Kubevc-Model-Version"
_BIG_ELEMENTS = 100_000  # above this many output elements, JSON encoding leaves the event loop


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


def json_response(obj: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(dumps(obj), status_code=status_code, media_type=JSON, headers=headers)


def error_response(exc: GatewayError) -> Response[bytes]:
    return Response(dumps(exc.to_dict()), status_code=exc.status_code, media_type=JSON)


def version_headers(info: dict[str, Any]) -> dict[str, str]:
    """``X-Kubevc-Model-Version[-Label]``: the version label a call went to and the version that answered."""
    headers = {}
    if info.get("label"):
        headers[LABEL_HEADER] = str(info["label"])
    if info.get("version") is not None:
        headers[VERSION_HEADER] = str(info["version"])
    return headers


def is_big(outputs: dict[str, Array]) -> bool:
    return sum(v.size for v in outputs.values()) > _BIG_ELEMENTS
