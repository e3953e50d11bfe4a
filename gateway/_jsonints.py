"""TF Serving REST ``:predict`` bodies that are one rectangular array of JSON integers, read
without a Python object per number (issue 18: the JSON path's cost per MiB).

Images and token ids sent as JSON are lists of small integers: parsing them with a JSON parser
makes a Python int for every number and a list for every pixel, which costs ~100 ms per MiB.
Here the array's text is checked and measured with bytes operations (C loops over the body) and
its numbers are parsed by numpy in one call. Only a body this module fully understands takes this
path: ``{"instances": ARRAY}`` or ``{"inputs": ARRAY}`` (with an optional ``signature_name``),
ARRAY a nested list of integers, every row of the same length, written as valid JSON. Anything
else (floats, strings, objects, ``b64``, booleans, ragged or malformed arrays, numbers JSON does
not allow) returns None, and the caller takes the general path, whose answers and error messages
stay exactly as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

__all__ = ["read_integer_array"]

Array = npt.NDArray[Any]

_DIGITS = b"0123456789"
_SPACE = b" \t\r\n"
_STRUCTURE = b"[],"
_BRACKETS_AS_SPACE = bytes.maketrans(b"[]", b"  ")
_INT64 = np.iinfo(np.int64)


def read_integer_array(body: bytes) -> tuple[str, Array, str | None] | None:
    """``(key, int64 array, signature_name)`` of a body whose ``instances`` / ``inputs`` is one
    rectangular array of JSON integers; None when the body is anything else."""
    start = body.find(b"[")
    end = body.rfind(b"]") + 1
    if start < 0 or end <= start:
        return None
    text = body[start:end]
    skeleton = text.translate(None, _DIGITS + b"-" + _SPACE)  # what is left of a nested int list: [ ] ,
    if skeleton.translate(None, _STRUCTURE):
        return None  # floats, strings, objects, true/false/null, another key inside: the general path
    found = _key_of(body[:start] + b"0" + body[end:])
    if found is None:
        return None
    shape = _shape(skeleton)
    if shape is None:
        return None
    if b"-" in text and any(sign in text for sign in (b"- ", b"-\t", b"-\r", b"-\n")):
        return None  # numpy would read "- 1" as -1; JSON has no such number
    try:
        flat = np.fromstring(text.translate(_BRACKETS_AS_SPACE), dtype=np.int64, sep=",")
    except ValueError:  # two numbers without a comma, an empty element, a lone "-"
        return None
    if flat.size != int(np.prod(shape)) or not flat.size:
        return None  # a trailing comma, empty lists
    low, high = int(flat.min()), int(flat.max())
    if low <= _INT64.min or high >= _INT64.max:
        return None  # numpy clamps what does not fit int64: let the general path judge it
    if _leading_zeros(text, flat, max(-low, high)):
        return None
    key, signature = found
    return key, flat.reshape(shape), signature


def _key_of(rest: bytes) -> tuple[str, str | None] | None:
    """The body with the array replaced by ``0`` -> (its key, signature_name), when it is
    ``{"instances"|"inputs": 0}`` plus an optional string ``signature_name`` and nothing else."""
    if b"\\" in rest or rest.count(b'"instances"') + rest.count(b'"inputs"') != 1:
        return None  # an escaped or repeated key: which value wins is the general path's to say
    try:
        doc = orjson.loads(rest)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or not set(doc) <= {"instances", "inputs", "signature_name"}:
        return None
    keys = [k for k in ("instances", "inputs") if k in doc]
    if len(keys) != 1 or type(doc[keys[0]]) is not int or doc[keys[0]] != 0:
        return None
    signature = doc.get("signature_name")
    if signature is not None and not isinstance(signature, str):
        return None
    return keys[0], signature


def _shape(skeleton: bytes) -> tuple[int, ...] | None:
    """The shape of a rectangular nested list from its brackets and commas alone, or None.

    The first list at depth ``j`` (of ``ndim``) ends where the first run of ``ndim - j + 1``
    closing brackets does; its length gives its element count from the length of one element.
    The skeleton a list of that shape would have is then built and compared: any ragged row,
    empty element or stray bracket makes them differ."""
    ndim = len(skeleton) - len(skeleton.lstrip(b"["))
    if ndim == 0:
        return None
    sizes: list[int] = []
    element = 0  # skeleton length of one element of the level being measured (a number: 0)
    for closing in range(1, ndim + 1):
        depth = ndim - closing + 1  # 1: the outermost list
        at = skeleton.find(b"]" * closing)
        if at < 0:
            return None
        length = at + closing - 1 - (depth - 1) + 1
        count, rest = divmod(length - 1, element + 1)  # "[" + count elements + count - 1 commas + "]"
        if rest or count < 1:
            return None
        sizes.append(count)
        element = length
    shape = tuple(reversed(sizes))
    expected = b""
    for size in reversed(shape):
        expected = b"[" + b",".join([expected] * size) + b"]"
    return shape if expected == skeleton else None


def _leading_zeros(text: bytes, values: Array, largest: int) -> bool:
    """Whether a number is written with a leading zero ("07", "-00"): JSON does not allow it.

    Each number is written with at least as many digits as its value has (0: one), and with
    exactly as many unless it has leading zeros: so the digits in the text are counted (one C
    pass) and compared with the values' digits (one numpy comparison per decimal order)."""
    written = len(text.translate(None, b"-[]," + _SPACE))
    needed = values.size
    magnitudes = np.abs(values)
    for order in range(1, len(str(largest))):
        needed += int(np.count_nonzero(magnitudes >= 10**order))
    return written != needed
