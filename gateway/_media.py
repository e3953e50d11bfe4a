"""Request bodies for ``/v1/models/{name}/infer``: media types -> model input tensors."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import numpy.typing as npt

from kubevc.gateway._errors import BadRequest

__all__ = ["parse_multipart", "parse_npy", "parse_raw_tensor"]

Array = npt.NDArray[Any]
_TENSOR_DTYPES = {
    "uint8",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "bool",
}


def _param(content_type: str, key: str) -> str | None:
    for part in content_type.split(";")[1:]:
        k, _, v = part.strip().partition("=")
        if k.strip().lower() == key:
            return v.strip().strip('"')
    return None


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """multipart/form-data -> [(part content type, part body)] for the parts that carry files."""
    boundary = _param(content_type, "boundary")
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary")
    delim = b"--" + boundary.encode("latin-1")
    parts: list[tuple[str, bytes]] = []
    chunks = body.split(delim)
    if len(chunks) < 3:
        raise BadRequest("multipart body has no parts")
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n")
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise BadRequest("malformed multipart part (no header end)")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        ctype = headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
        if "filename=" in headers.get("content-disposition", "") or ctype != "text/plain":
            parts.append((ctype, content.removesuffix(b"\r\n")))
    return parts


def parse_npy(body: bytes) -> Array:
    try:
        arr = np.load(io.BytesIO(body), allow_pickle=False)
    except Exception as exc:
        raise BadRequest(f"body is not a .npy array: {exc}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise BadRequest("the .npy array must be numeric")
    return arr


def parse_raw_tensor(body: bytes, dtype: str | None, shape: str | None) -> Array:
    """application/octet-stream: little-endian bytes described by X-Tensor-Dtype / X-Tensor-Shape."""
    if not dtype or not shape:
        raise BadRequest("application/octet-stream needs the headers X-Tensor-Dtype and X-Tensor-Shape")
    dtype = dtype.strip().lower()
    if dtype not in _TENSOR_DTYPES:
        raise BadRequest(f"X-Tensor-Dtype: {dtype!r} is not one of {sorted(_TENSOR_DTYPES)}")
    try:
        dims = tuple(int(d) for d in shape.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise BadRequest(f"X-Tensor-Shape: {shape!r} is not a comma-separated list of integers") from None
    if not dims or any(d < 0 for d in dims):
        raise BadRequest(f"X-Tensor-Shape: {shape!r} is not a shape")
    dt = np.dtype(dtype).newbyteorder("<")
    need = int(np.prod(dims)) * dt.itemsize
    if len(body) != need:
        raise BadRequest(f"body has {len(body)} bytes, X-Tensor-Shape {list(dims)} {dtype} needs {need}")
    return np.frombuffer(body, dtype=dt).reshape(dims)
