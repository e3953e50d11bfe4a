"""The integer fast path of ``:predict`` bodies (``_jsonints``) answers exactly as the general
JSON path does: the same arrays and dtypes, or the same 400, for valid and malformed bodies."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

from kubevc.gateway._jsonints import read_integer_array

from .conftest import general_predict_answer, predict_answer

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
# The vectorised reader (issue 18: <= 5 ms per MiB): signs, leading zeros, whitespace, values
# that overflow the dtype, ragged and misplaced brackets, empty lists, long numbers.
ADVERSARIAL = [
    b'{"instances": [[-5, -0, 3], [-128, 127, -1]]}',
    b'{"instances": [0, -0, 10, 100, -100, 1000000, 123456789, 1234567890123]}',
    b'{"instances": [0, 00]}',
    b'{"instances": [0, 1, 02]}',
    b'{"instances": [10, -007]}',
    b'{"instances":\n[\n [ 1 ,2 ] ,\n\t[3,\r4]\n]\n}',
    b'{"instances": [ [ 1 ] , [ 2 ] ] }',
    b'{"instances": [1 ,- 2]}',
    b'{"instances": [1 2, 3]}',
    b'{"instances": [[1 2, 3], [4, 5, 6]]}',
    b'{"instances": [[1, 2] , [3 4]]}',
    b'{"instances": [[1 2], [3, ]]}',
    b'{"instances": [1\t2]}',
    b'{"instances": [1\xc2\xa02]}',
    b'{"instances": [1,\x0b2]}',
    b'{"instances": [256, 0]}',
    b'{"instances": [-1, 0]}',
    b'{"instances": [127, -128, 128]}',
    b'{"instances": [32767, -32768]}',
    b'{"instances": [32768, 65535, 65536]}',
    b'{"instances": [2147483647, -2147483648]}',
    b'{"instances": [-2147483649]}',
    b'{"instances": [999999999999999999, -999999999999999999]}',
    b'{"instances": [9223372036854775807, 1]}',
    b'{"instances": [-9223372036854775809, 1]}',
    b'{"instances": [123456789012345678901234567890]}',
    b'{"instances": [[[1, 2], [3, 4]], [[5, 6]]]}',
    b'{"instances": [[[1, 2], [3, 4]], [[5, 6], [7]]]}',
    b'{"instances": [[[1, 2], [3, 4]], [[5, 6], [7, 8, 9]]]}',
    b'{"instances": [[1, 2], 3]}',
    b'{"instances": [1, [2, 3]]}',
    b'{"instances": [[1, 2][3, 4]]}',
    b'{"instances": [[1, 2],, [3, 4]]}',
    b'{"instances": [[1, 2], [3, 4], ]}',
    b'{"instances": [[1, 2]5, [3, ]]}',
    b'{"instances": [[1, 2]], [[3, 4]]}',
    b'{"instances": [[1, 2], [3, 4]]]}',
    b'{"instances": [[[1, 2], [3, 4]]}',
    b'{"instances": [[1, 2], [3, 4]}',
    b'{"instances": [[1, 2], [[3, 4]]]}',
    b'{"instances": [[[1], [2]], [[3]], [4]]]}',
    b'{"instances": [[[1], [2]], [[3], [4]]]}',
    b'{"instances": [[1, 2], [3, 4]], "signature_name": "serving_default"}',
    b'{"instances": [[], []]}',
    b'{"instances": [[[]]]}',
    b'{"instances": [5]}',
    b'{"instances": [[[[7]]]]}',
    b'{"instances": [-, 1]}',
    b'{"instances": [1-, 2]}',
    b'{"instances": [1, 2-]}',
    b'{"instances": [1, -a]}',
    b'{"instances": [1, 2] ]}',
    b'{"inputs": [[1, 2], [3, 4]]}',
    b'{"instances": [[1, 2], [3, 4]] , "inputs": [[1]]}',
]
DTYPES = [
    {},
    {"x": "uint8"},
    {"x": "int8"},
    {"x": "int16"},
    {"x": "int32"},
    {"x": "int64"},
    {"x": "float32"},
    {"x": "bool"},
    {"x": "string"},
]


@pytest.mark.parametrize("dtypes", DTYPES, ids=lambda d: d.get("x", "none"))
@pytest.mark.parametrize("body", BODIES + ADVERSARIAL, ids=range(len(BODIES) + len(ADVERSARIAL)))
def test_fast_path_answers_as_the_general_path(body: bytes, dtypes: dict[str, str]) -> None:
    expect, got = general_predict_answer(body, dtypes), predict_answer(body, dtypes)
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


@pytest.mark.parametrize("seed", range(12))
def test_random_integer_arrays_read_as_the_general_path(seed: int) -> None:
    """Random shapes (1-5 dimensions), numbers of 1-18 digits with signs, separators with and
    without whitespace (json.dumps with indent, orjson): the same array as the JSON parser."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in rng.integers(1, 5, rng.integers(1, 6)))
    digits = rng.integers(1, 19, shape)
    values = (rng.random(shape) * 10.0**digits).astype(np.int64) * rng.choice([-1, 1], shape)
    doc = {"inputs" if seed % 2 else "instances": values.tolist()}
    indent = [None, 0, 2, "\t"][seed % 4]
    separators = [(",", ":"), (", ", ": "), (" ,", " : ")][seed % 3]
    for body in (orjson.dumps(doc), json.dumps(doc, indent=indent, separators=separators).encode()):
        found = read_integer_array(body)
        assert found is not None, body[:200]
        assert np.array_equal(found[1], values) and found[1].shape == values.shape
        expect, got = general_predict_answer(body, {"x": "int64"}), predict_answer(body, {"x": "int64"})
        assert np.array_equal(got[0]["x"], expect[0]["x"]) and got[0]["x"].dtype == expect[0]["x"].dtype


def test_the_vectorised_reader_takes_the_valid_adversarial_bodies() -> None:
    """Which of ADVERSARIAL are read here (the rest go to the general path): every valid rectangular
    integer array of numbers up to 18 digits, whatever the dtype will say of its values."""
    taken = [i for i, body in enumerate(ADVERSARIAL) if read_integer_array(body) is not None]
    assert taken == [0, 1, 5, 6, *range(15, 23), 41, 42, 45, 46, 52]
