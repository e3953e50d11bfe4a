"""Open Inference Protocol v2 REST bodies (JSON and the binary-data extension) <-> numpy.

In the binary-data extension numeric tensors are their little-endian bytes, row-major; BYTES
tensors are their elements in row-major order, each a 4-byte little-endian length followed by the
element's bytes (``binary_data_size`` counts the prefixes too)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from kubevc.gateway._errors import BadRequest
from kubevc.gateway._tensors import numpy_to_v2_datatype, pack_bytes, unpack_bytes, v2_datatype_to_numpy

__all__ = ["HEADER_LENGTH", "V2Request", "format_v2", "parse_v2"]

Array = npt.NDArray[Any]
HEADER_LENGTH = "inference-header-content-length"


class V2Request:
    def __init__(
        self, id: str | None, inputs: dict[str, Array], outputs: list[str], binary: set[str], all_binary: bool
    ) -> None:
        self.id = id
        self.inputs = inputs
        self.outputs = outputs
        self.binary = binary
        self.all_binary = all_binary


def _shape(value: Any, field: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(v, int) and v >= 0 for v in value):
        raise BadRequest(f"{field}: must be a list of non-negative integers")
    return tuple(value)


def parse_v2(body: bytes, header_length: str | None) -> V2Request:
    """Parse an inference request; ``header_length`` is the Inference-Header-Content-Length value."""
    blob = b""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise BadRequest("Inference-Header-Content-Length: not an integer") from None
        if not 0 < n <= len(body):
            raise BadRequest("Inference-Header-Content-Length: outside the body")
        body, blob = body[:n], body[n:]
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise BadRequest("body must be a JSON object")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise BadRequest("inputs: must be a non-empty list")
    inputs: dict[str, Array] = {}
    pos = 0
    for i, item in enumerate(raw_inputs):
        field = f"inputs[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{field}: must be an object")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{field}.name: required string")
        shape = _shape(item.get("shape"), f"{field}.shape")
        datatype = item.get("datatype")
        if not isinstance(datatype, str):
            raise BadRequest(f"{field}.datatype: required string")
        params = item.get("parameters") or {}
        if not isinstance(params, dict):
            raise BadRequest(f"{field}.parameters: must be an object")
        count = int(np.prod(shape)) if shape else 1
        size = params.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0 or pos + size > len(blob):
                raise BadRequest(f"{field}.parameters.binary_data_size: outside the binary data")
            if datatype.upper() == "BYTES":
                # each element: a 4-byte little-endian length, then that many bytes
                try:
                    arr = unpack_bytes(memoryview(blob)[pos : pos + size], count).reshape(shape)
                except ValueError as exc:
                    raise BadRequest(f"{field}: binary BYTES data: {exc}") from None
                pos += size
                if name in inputs:
                    raise BadRequest(f"{field}.name: duplicate input {name!r}")
                inputs[name] = arr
                continue
            dtype = v2_datatype_to_numpy(datatype)
            if size != count * dtype.itemsize:
                raise BadRequest(
                    f"{field}.parameters.binary_data_size: {size} bytes for shape {list(shape)} {datatype}"
                    f" needs {count * dtype.itemsize}"
                )
            arr = np.frombuffer(blob, dtype=dtype.newbyteorder("<"), count=count, offset=pos).reshape(shape)
            pos += size
        else:
            if "data" not in item:
                raise BadRequest(f"{field}.data: required (or parameters.binary_data_size)")
            data = item["data"]
            if datatype.upper() == "BYTES":
                flat = _flatten(data)
                if not all(isinstance(v, str) for v in flat):
                    raise BadRequest(f"{field}.data: BYTES data must be strings")
                arr = np.empty(len(flat), dtype=object)
                arr[:] = [v.encode() for v in flat]
            else:
                dtype = v2_datatype_to_numpy(datatype)
                try:
                    arr = np.asarray(data, dtype=dtype).reshape(-1)
                except (ValueError, TypeError, OverflowError):
                    raise BadRequest(f"{field}.data: not a list of {datatype} values") from None
            if arr.size != count:
                raise BadRequest(f"{field}.data: {arr.size} values for shape {list(shape)}")
            arr = arr.reshape(shape)
        if name in inputs:
            raise BadRequest(f"{field}.name: duplicate input {name!r}")
        inputs[name] = arr
    if pos != len(blob):
        raise BadRequest("binary data longer than the inputs' binary_data_size")
    outputs: list[str] = []
    binary: set[str] = set()
    for i, item in enumerate(doc.get("outputs") or []):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest(f"outputs[{i}].name: required string")
        outputs.append(item["name"])
        if (item.get("parameters") or {}).get("binary_data"):
            binary.add(item["name"])
    req_params = doc.get("parameters") or {}
    request_id = doc.get("id")
    return V2Request(
        str(request_id) if request_id is not None else None,
        inputs,
        outputs,
        binary,
        bool(isinstance(req_params, dict) and req_params.get("binary_data_output")),
    )


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [x for v in value for x in _flatten(v)]
    return [value]


def format_v2(
    model: str, version: str, request: V2Request, outputs: dict[str, Array]
) -> tuple[bytes, int | None]:
    """Response body and, when binary outputs follow the JSON, the JSON header's length."""
    items: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, arr in outputs.items():
        item: dict[str, Any] = {
            "name": name,
            "datatype": numpy_to_v2_datatype(arr.dtype),
            "shape": list(arr.shape),
        }
        if request.all_binary or name in request.binary:
            raw = pack_bytes(arr) if arr.dtype.kind in "SUO" else np.ascontiguousarray(arr).tobytes()
            item["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        elif arr.dtype.kind in "SUO":
            item["data"] = [
                v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in arr.reshape(-1)
            ]
        else:
            item["data"] = np.ascontiguousarray(arr.reshape(-1))
        items.append(item)
    doc: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": items}
    if request.id is not None:
        doc["id"] = request.id
    header = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)
