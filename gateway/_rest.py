"""TF Serving REST JSON (``instances`` row format, ``inputs`` columnar format) <-> numpy tensors."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from kubevc.gateway._errors import BadRequest
from kubevc.gateway._jsonints import read_integer_array
from kubevc.gateway._signature import STRING

__all__ = ["format_predict", "json_to_array", "parse_predict", "parse_predict_body"]

Array = npt.NDArray[Any]
_KEYS = {"signature_name", "instances", "inputs"}


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _first_leaf(value: Any) -> Any:
    while isinstance(value, list) and value:
        value = value[0]
    return value


def _decode_strings(value: Any, field: str) -> Any:
    if isinstance(value, list):
        return [_decode_strings(v, field) for v in value]
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError):
            raise BadRequest(f"{field}: invalid base64 in 'b64'") from None
    if isinstance(value, str):
        return value.encode()
    raise BadRequest(f"{field}: mixes strings with {type(value).__name__} values")


def json_to_array(value: Any, field: str, dtype: str | None) -> Array:
    """A JSON (nested list) value as a rectangular numpy array; 400 naming ``field`` otherwise.

    ``dtype`` is the dtype the model input declares (None: inferred, float -> float32, int ->
    int32 when it fits, else int64): a numpy dtype name, or ``"string"`` (strings and
    ``{"b64": ...}`` only). Numbers are converted to it when they fit; strings where the input
    takes numbers, numbers where it takes strings, and anything but true/false for ``bool`` are 400s."""
    leaf = _first_leaf(value)
    if isinstance(leaf, str) or _is_b64(leaf):
        if dtype is not None and dtype != STRING:
            raise BadRequest(f"{field}: strings given, but the model input takes {dtype}")
        strings = _decode_strings(value, field)
        try:
            arr = np.array(strings, dtype=object)
        except ValueError:
            raise BadRequest(f"{field}: ragged nested lists (every row must have the same length)") from None
        if arr.dtype != object or any(not isinstance(v, bytes) for v in arr.reshape(-1)):
            raise BadRequest(f"{field}: ragged nested lists (every row must have the same length)")
        return arr
    if isinstance(value, list) and not value:
        raise BadRequest(f"{field}: empty list")
    if dtype == STRING:
        raise BadRequest(f'{field}: the model input takes strings (or {{"b64": ...}}), not numbers')
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        raise BadRequest(f"{field}: ragged nested lists (every row must have the same length)") from None
    if arr.dtype.kind not in "biuf":
        raise BadRequest(f"{field}: expected numbers, got {type(_bad_leaf(value)).__name__} values")
    return _numbers_as(arr, field, dtype)


def _numbers_as(arr: Array, field: str, dtype: str | None) -> Array:
    """A numeric array (as numpy reads JSON numbers: bool, int64 or float64) -> the input's dtype,
    400 when the values do not fit it (see ``json_to_array``)."""
    if dtype is None:
        if arr.dtype.kind == "f":
            return _as_float(arr, field, np.dtype(np.float32))
        if arr.dtype.kind == "b":
            return arr
        if arr.size and (arr.min() < -(2**31) or arr.max() >= 2**31):
            return arr.astype(np.int64)
        return arr.astype(np.int32)
    if dtype == "bool":
        if arr.dtype.kind != "b":
            raise BadRequest(f"{field}: expected true/false for dtype bool")
        return arr
    try:
        target = np.dtype(dtype)
    except TypeError:
        raise BadRequest(f"{field}: the model input's dtype {dtype} cannot be sent as JSON") from None
    if arr.dtype.kind == "b":
        raise BadRequest(f"{field}: expected numbers for dtype {dtype}, got true/false")
    if target.kind in "iu":
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise BadRequest(f"{field}: expected integers for dtype {dtype}")
        info = np.iinfo(target)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise BadRequest(f"{field}: values outside {info.min}..{info.max} for dtype {dtype}")
    elif target.kind == "f":
        return _as_float(arr, field, target)
    else:
        raise BadRequest(f"{field}: the model input's dtype {dtype} cannot be sent as JSON")
    return arr.astype(target)


def _as_float(arr: Array, field: str, target: np.dtype[Any]) -> Array:
    """``arr`` as float dtype ``target``; 400 for numbers it cannot hold, as TF Serving's REST API
    refuses them: a decimal beyond the type's range (it would reach the model as inf) and an
    integer beyond the type's exact integers (it would be rounded: 16777217 is not a float32).
    JSON has no inf or NaN, so an inf here is an overflow of the cast."""
    if arr.size and arr.dtype.kind in "iu":
        exact = (1 << (np.finfo(target).nmant + 1)) - 1
        if int(arr.min()) < -exact or int(arr.max()) > exact:
            raise BadRequest(
                f"{field}: integers outside ±{exact} are not exact in dtype {target} (send them as decimals)"
            )
    with np.errstate(over="ignore"):
        out = arr.astype(target)
    if arr.dtype.kind == "f" and target.itemsize < arr.dtype.itemsize and np.isinf(out).any():
        limit = float(np.finfo(target).max)
        raise BadRequest(f"{field}: values outside ±{limit:.8g} for dtype {target}")
    return out


def _bad_leaf(value: Any) -> Any:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif not isinstance(v, int | float | bool):
            return v
    return value


def parse_predict_body(
    body: bytes, default_input: str, dtypes: dict[str, str]
) -> tuple[dict[str, Array], bool, str | None]:
    """The raw body of ``:predict`` -> (inputs, columnar?, signature_name).

    One rectangular array of integers for a numeric input (images, token ids) is read without a
    Python object per number (``_jsonints``), then given the same dtype checks; every other body
    is parsed as JSON and goes through :func:`parse_predict`."""
    ints = read_integer_array(body)
    dtype = dtypes.get(default_input)
    if ints is not None and dtype not in (STRING, "bool"):  # their errors: the general path's
        key, array, signature = ints
        return {default_input: _numbers_as(array, key, dtype)}, key == "inputs", signature
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not valid JSON") from None
    return parse_predict(doc, default_input, dtypes)


def parse_predict(
    doc: Any, default_input: str, dtypes: dict[str, str]
) -> tuple[dict[str, Array], bool, str | None]:
    """The body of ``:predict`` -> (inputs, columnar?, signature_name)."""
    if not isinstance(doc, dict):
        raise BadRequest("body must be a JSON object with 'instances' or 'inputs'")
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise BadRequest(f"unknown key {unknown[0]!r} (expected signature_name, instances or inputs)")
    if ("instances" in doc) == ("inputs" in doc):
        raise BadRequest("exactly one of 'instances' or 'inputs' is required")
    signature = doc.get("signature_name")
    if signature is not None and not isinstance(signature, str):
        raise BadRequest("signature_name: must be a string")
    if "instances" in doc:
        rows = doc["instances"]
        if not isinstance(rows, list) or not rows:
            raise BadRequest("instances: must be a non-empty list")
        if isinstance(rows[0], dict) and not _is_b64(rows[0]):
            keys = set(rows[0])
            if not keys:
                raise BadRequest("instances[0]: empty object")
            for i, row in enumerate(rows):
                if not isinstance(row, dict) or set(row) != keys:
                    raise BadRequest(f"instances[{i}]: must be an object with the keys {sorted(keys)}")
            inputs = {
                k: json_to_array([row[k] for row in rows], f"instances[*].{k}", dtypes.get(k))
                for k in sorted(keys)
            }
        else:
            inputs = {default_input: json_to_array(rows, "instances", dtypes.get(default_input))}
        return inputs, False, signature
    cols = doc["inputs"]
    if isinstance(cols, dict) and not _is_b64(cols):
        if not cols:
            raise BadRequest("inputs: empty object")
        return {k: json_to_array(v, f"inputs.{k}", dtypes.get(k)) for k, v in cols.items()}, True, signature
    return {default_input: json_to_array(cols, "inputs", dtypes.get(default_input))}, True, signature


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode()}
    return value


def _jsonable(array: Any) -> Any:
    if not isinstance(array, np.ndarray):  # one element of a row: a numpy scalar or bytes
        return _text(array)
    if array.dtype.kind in "OS":
        flat = np.empty(array.size, dtype=object)
        flat[:] = [_text(v) for v in array.reshape(-1).tolist()]
        return flat.reshape(array.shape).tolist()
    if array.dtype == np.float16:
        return array.astype(np.float32)
    return np.ascontiguousarray(array)


def format_predict(outputs: dict[str, Array], columnar: bool) -> dict[str, Any]:
    """TF Serving's response shape: ``predictions`` (row) or ``outputs`` (columnar)."""
    if columnar:
        if len(outputs) == 1:
            return {"outputs": _jsonable(next(iter(outputs.values())))}
        return {"outputs": {k: _jsonable(v) for k, v in outputs.items()}}
    if len(outputs) == 1:
        return {"predictions": _jsonable(next(iter(outputs.values())))}
    batch = min((v.shape[0] for v in outputs.values() if v.ndim), default=1)
    return {
        "predictions": [
            {k: _jsonable(v[i] if v.ndim else v) for k, v in outputs.items()} for i in range(batch)
        ]
    }
