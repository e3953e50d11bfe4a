"""TF Serving REST ``:predict`` bodies that are one rectangular array of JSON integers, read
without a Python object per number (issue 18: the JSON path's cost per MiB).

Images and token ids sent as JSON are lists of small integers: parsing them with a JSON parser
makes a Python int for every number and a list for every pixel, which costs ~100 ms per MiB, and
numpy's text parser (``fromstring``, the first fast path) still ~20. Here the array is read by
numpy operations over its bytes, a few passes in all (see ``_integer_array``): number tokens from
the edges of digit runs, the shape and its check from the separators between them, values from
the digits two decimal places at a time. Only a body this module fully understands takes this path:
``{"instances": ARRAY}`` or ``{"inputs": ARRAY}`` (with an optional ``signature_name``), ARRAY a
nested list of integers, every row of the same length, written as valid JSON. Anything else
(floats, strings, objects, ``b64``, booleans, ragged or malformed arrays, numbers JSON does not
allow, numbers of more than 18 digits) returns None, and the caller takes the general path, whose
answers and error messages stay exactly as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

__all__ = ["read_integer_array"]

Array = npt.NDArray[Any]

_SPACE = b" \t\r\n"
# a byte of most floats (".") and of every string or object (a quote): a memchr each, before any
# pass (an exponent, a literal or any other byte fails the separator checks)
_NOT_INTEGERS = b'."'
_MAX_DIGITS = 18  # every number of up to 18 digits fits int64; longer ones: the general path
_OPEN, _CLOSE, _COMMA, _MINUS, _ZERO = b"[],-0"


def read_integer_array(body: bytes) -> tuple[str, Array, str | None] | None:
    """``(key, integer array, signature_name)`` of a body whose ``instances`` / ``inputs`` is one
    rectangular array of JSON integers; None when the body is anything else. The array's dtype is
    the narrowest of int16, int32, int64 that holds every number as written (its values are what
    matter: the caller converts them to the model's dtype)."""
    start = body.find(b"[")
    end = body.rfind(b"]") + 1
    if start < 0 or end <= start:
        return None
    found = _key_of_body(body[:start] + b"0" + body[end:])
    if found is None:
        return None
    array = _integer_array(body[start:end])
    if array is None:
        return None
    key, signature = found
    return key, array, signature


def _integer_array(text: bytes) -> Array | None:
    """The nested JSON list ``text`` (from its "[" to its "]") as an array, when it is a
    rectangular list of integers of at most 18 digits written as JSON allows; else None.

    Vectorised over the bytes, no text parser: the number tokens are the runs of digit and minus
    bytes (their edges from one comparison of neighbours); the separators between them must be
    what a rectangular list of some shape has between two elements ("," inside a row, "],[" between
    rows, "]],[[" between planes, ...): the shape comes from where the first longer separators
    are, then every separator is checked against it: the one-comma ones by counting, the longer
    ones byte by byte. Each number's value is summed from its digits right to left, one gather
    per two decimal places over all the numbers. Few passes over all the bytes, fewer over all
    the numbers, and every large array freed when done (issue 18: <= 5 ms per MiB)."""
    if any(byte in text for byte in _NOT_INTEGERS):
        return None  # floats, strings, true/false/null, objects: one memchr each, before any pass
    signed = _MINUS in text  # most images and ids have no minus: two passes fewer
    raw = np.frombuffer(text, dtype=np.uint8)
    is_digit, is_number = _classes(raw, signed)
    if any(space in text for space in _SPACE):
        # whitespace may separate tokens, never split one ("1 2", "- 1"): as many tokens without it
        tokens = int(np.count_nonzero(is_number[1:] > is_number[:-1]))
        text = text.translate(None, _SPACE)
        raw = np.frombuffer(text, dtype=np.uint8)
        is_digit, is_number = _classes(raw, signed)
    else:
        tokens = -1
    # (position before each token, position of its last byte): text starts with "[", ends with "]"
    edges = np.flatnonzero(is_number[1:] != is_number[:-1])
    # contiguous int32 copies (a text is far below 2 GiB): every later pass reads them
    before, last = np.ascontiguousarray(edges.reshape(-1, 2).T, dtype=np.int32)
    # (each step frees what it no longer needs: a smaller peak keeps glibc from returning the
    # memory to the kernel and faulting it back in at every request)
    del edges
    count = len(before)
    if count == 0 or tokens not in (-1, count):
        return None
    depth = int(before[0]) + 1
    if text[:depth] != b"[" * depth or text[int(last[-1]) + 1 :] != b"]" * depth:
        return None
    shape = _separators_shape(before, last, depth, raw)
    if shape is None:
        return None
    # Every byte is now a number byte, one of the brackets ``_separators_shape`` checked, or the one byte
    # left in each separator: those are all commas when the text has one comma per separator.
    if int(np.count_nonzero(raw == _COMMA)) != count - 1:
        return None
    # a leading zero ("07", "-00"): a 0 after a non-digit, followed by a digit; JSON has none
    if signed:
        if ((raw[1:-1] == _ZERO) & ~is_digit[:-2] & is_digit[2:]).any():
            return None
    elif ((raw[1:-1] == _ZERO) & (is_digit[2:] > is_digit[:-2])).any():
        return None  # (no minus: "after a non-digit, followed by a digit" is one comparison)
    lengths = last - before  # bytes of each token
    negative = None
    if signed:
        minus = raw == _MINUS
        # a minus only first in a token and followed by a digit ("1-2", "--1", "-" are no numbers)
        if (minus[1:-1] & (is_number[:-2] | ~is_digit[2:])).any():
            return None
        negative = np.take(raw, before + 1, mode="clip") == _MINUS
        lengths -= negative  # digits of each number
    longest = int(lengths.max())
    if longest > _MAX_DIGITS:
        return None  # numbers that may not fit int64: the general path judges them
    dtype = np.int16 if longest <= 4 else np.int32 if longest <= 9 else np.int64
    # Each byte's digit (0 for the bytes between numbers) plus ten times the previous byte's,
    # after ``longest`` zeros: the pair ending ``place`` bytes left of a token's last byte is
    # ``pairs[longest - place:][last]`` (no index array per place). The byte before a number is
    # no digit, so the pair at an even place inside a number holds its digits at ``place`` and
    # ``place + 1`` (0 for the second where the number ends at ``place``): one gather per two
    # decimal places, masked where the number is shorter.
    pairs = np.empty(longest + len(raw), dtype=np.uint8)
    pairs[:longest] = 0
    np.subtract(raw, np.uint8(_ZERO), out=pairs[longest:])
    pairs[longest:] *= is_digit.view(np.uint8)  # (a bool operand takes a slower loop)
    del is_digit, is_number
    pairs[longest:] += pairs[longest - 1 : -1] * np.uint8(10)
    # numpy gathers with intp indices (the int32 ones would be converted at every gather);
    # the indices are in range by construction: mode="clip" skips the bounds-checking pass
    last_index = last.astype(np.intp)
    values = np.take(pairs[longest:], last_index, mode="clip").astype(dtype)
    for place in range(2, longest, 2):
        step = np.take(pairs[longest - place :], last_index, mode="clip")
        step *= (lengths > place).view(np.uint8)
        values += step * dtype(10**place)
    if negative is not None:
        np.negative(values, out=values, where=negative)
    array: Array = values.reshape(shape)
    return array


def _classes(raw: Array, signed: bool) -> tuple[Array, Array]:
    """Whether each byte is a digit, and whether it is a digit or a minus (``signed``: the text
    has a minus at all)."""
    is_digit = raw - np.uint8(_ZERO) < 10  # bytes below "0" wrap above 9
    return is_digit, (is_digit | (raw == _MINUS)) if signed else is_digit


def _separators_shape(before: Array, last: Array, depth: int, raw: Array) -> tuple[int, ...] | None:
    """The shape of the list whose ``depth`` opening brackets come before token 0 and closing
    ones after the last, when the separators between the tokens are those of a rectangular list
    of that shape (their lengths, and their brackets byte by byte); else None.

    Between tokens i and i + 1 a list of shape (..., d2, d1) has "]" * j + "," + "[" * j, j the
    number of innermost dimensions that end at token i: j >= 1 every d1 tokens, j >= 2 every
    d1 * d2, ... So the first separator longer than 2j - 1 bytes gives the block of level j, the
    blocks give the shape and the length every separator must have."""
    count = len(before)
    gaps = before[1:] - last[:-1]  # separator lengths
    blocks = [1]  # tokens per list at each level, innermost first
    longer = gaps > 1
    at = int(longer.argmax()) if count > 1 else 0
    row = at + 1 if count > 1 and longer[at] else count  # the first separator longer than ","
    row_gaps = gaps[row - 1 :: row]
    for level in range(1, depth):
        # outer lists end where inner ones do: their blocks from the separators after each row
        # (a wrong guess on a malformed text fails the checks below, which see every separator)
        longer = row_gaps > 2 * level - 1
        at = int(longer.argmax()) if len(longer) else 0
        block = (at + 1) * row if len(longer) and longer[at] else count
        if block % blocks[-1]:
            return None
        blocks.append(block)
    if count % blocks[-1]:
        return None
    # the separators longer than one comma are exactly those at the ends of rows, of the lengths
    # their levels give: the rest (most of them) are checked by counting, not one by one
    row = blocks[1] if depth > 1 else count
    expected = np.full(count // row - 1, 3, dtype=gaps.dtype)
    for level in range(2, depth):
        expected[blocks[level] // row - 1 :: blocks[level] // row] = 2 * level + 1
    if int(np.count_nonzero(gaps != 1)) != len(expected):
        return None
    if not np.array_equal(gaps[row - 1 :: row], expected):
        return None
    for level in range(1, depth):  # the level-th "]" after and "[" before each separator of level >= level
        block = blocks[level]
        closing = np.take(raw[level:], last[block - 1 : count - 1 : block], mode="clip")
        opening = before[block:count:block]
        opening = np.take(raw, opening if level == 1 else opening + (1 - level), mode="clip")
        if not ((closing == _CLOSE).all() and (opening == _OPEN).all()):
            return None
    return (count // blocks[-1], *(blocks[i] // blocks[i - 1] for i in range(depth - 1, 0, -1)))


def _key_of_body(rest: bytes) -> tuple[str, str | None] | None:
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
