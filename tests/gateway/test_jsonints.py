"""The integer fast path of ``:predict`` bodies (``_jsonints``) answers exactly as the general
JSON path does: the same arrays and dtypes, or the same 400, for valid and malformed bodies."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from kubevc.gateway import BadRequest
from kubevc.gateway._jsonints import read_integer_array
from kubevc.gateway._rest import parse_predict, parse_predict_body


def _general(body: bytes, dtypes: dict[str, str]) -> Any:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "body is not valid JSON"
    try:
        return parse_predict(doc, "x", dtypes)
    except BadRequest as exc:
        return exc.message


def _fast(body: bytes, dtypes: dict[str, str]) -> Any:
    try:
        return parse_predict_body(body, "x", dtypes)
    except BadRequest as exc:
        return exc.message


IMAGE = np.random.default_rng(0).integers(0, 256, (2, 5, 4, 3)).tolist()
BODIES = [
    orjson.dumps({"instances": IMAGE}),
    orjson.dumps({"inputs": IMAGE, "signature_name": "serving_default"}),
    b'{"signature_name": "s", "instances" : [ [1, 2 ,3],\n [4,5,6] ] }',
    b'{"instances": [[-1, 0, 7], [300, -0, 2147483648]]}',
    b'{"instances": [[1, 2], [3]]}',  # ragged
    b'{"instances": [[1, 2], [3, 4], []]}',
    b'{"instances": []}',
    b'{"instances": [[]]}',
    b'{"instances": [1, 2, ]}',  # trailing comma
    b'{"instances": [1,, 2]}',
    b'{"instances": [1 2]}',
    b'{"instances": [01, 2]}',  # leading zero
    b'{"instances": [00, 2]}',
    b'{"instances": [-01, 2]}',
    b'{"instances": [- 1, 2]}',
    b'{"instances": [+1, 2]}',
    b'{"instances": [1, 2.5]}',
    b'{"instances": [1, 2e3]}',
    b'{"instances": [99999999999999999999, 1]}',
    b'{"instances": [-9223372036854775808, 1]}',
    b'{"instances": [1, true]}',
    b'{"instances": [[1, 2], [3, 4]], "inputs": [1]}',
    b'{"instances": [[1, 2], [3, 4]], "extra": 1}',
    b'{"instances": [[1, 2], [3, 4]]',  # not JSON
    b'{"instances": [[1, 2], [3, 4]], "signature_name": 5}',
    b'{"instances": [[[1]]]}',
    b'{"inputs": {"x": [1, 2]}}',
    b'{"instances": [{"x": [1, 2]}]}',
    b"[1, 2]",
    b'{"instances": [1-2]}',
    b'{"instances": [1--2, 3]}',
    b'{"instances": [-]}',
    b'{"instances": [1, -]}',
    b'{"instances": [1], "instances": 0}',  # repeated key: the last wins
    b'{"\\u0069nstances": [1], "instances": 0}',
    b'{"signature_name": "a\\"b", "instances": [1, 2]}',
]
DTYPES = [
    {},
    {"x": "uint8"},
    {"x": "int32"},
    {"x": "int64"},
    {"x": "float32"},
    {"x": "bool"},
    {"x": "string"},
]


@pytest.mark.parametrize("dtypes", DTYPES, ids=lambda d: d.get("x", "none"))
@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_fast_path_answers_as_the_general_path(body: bytes, dtypes: dict[str, str]) -> None:
    expect, got = _general(body, dtypes), _fast(body, dtypes)
    if isinstance(expect, str):
        assert got == expect
        return
    assert not isinstance(got, str), got
    (inputs, columnar, signature), (want, want_columnar, want_signature) = got, expect
    assert (columnar, signature) == (want_columnar, want_signature)
    assert inputs.keys() == want.keys()
    for name, array in inputs.items():
        assert array.dtype == want[name].dtype and array.shape == want[name].shape
        assert np.array_equal(array, want[name])


def test_the_fast_path_takes_integer_arrays_and_nothing_else() -> None:
    found = read_integer_array(orjson.dumps({"instances": IMAGE}))
    assert found is not None and found[0] == "instances" and found[1].shape == (2, 5, 4, 3)
    assert read_integer_array(BODIES[25]) is not None
    for body in BODIES[4:25] + BODIES[26:]:  # ragged, malformed, not integers, other keys, not JSON
        assert read_integer_array(body) is None, body
