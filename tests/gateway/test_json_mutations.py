"""Random byte mutations of valid integer ``:predict`` bodies (issue 18's vectorised readers):
whatever the mutation, the fast path answers exactly as the general JSON path does (the same
array and dtype, or the same 400), so a check the fast path skips can never change an answer."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from .conftest import general_predict_answer, predict_answer

# bytes a mutation writes: the JSON array alphabet, whitespace, and bytes of floats and literals
ALPHABET = b'0123456789-,[] \n.eE+"nt{}:'


def _same(body: bytes, dtypes: dict[str, str]) -> None:
    expect, got = general_predict_answer(body, dtypes), predict_answer(body, dtypes)
    if isinstance(expect, str):
        assert got == expect, body
        return
    assert not isinstance(got, str), (body, got)
    assert got[1:] == expect[1:] and got[0].keys() == expect[0].keys(), body
    for name, array in got[0].items():
        want = expect[0][name]
        assert array.dtype == want.dtype and array.shape == want.shape, body
        assert np.array_equal(array, want), body


def _valid_body(rng: np.random.Generator) -> bytes:
    shape = tuple(int(d) for d in rng.integers(1, 4, rng.integers(1, 5)))
    digits = rng.integers(1, 6, shape)
    values = (rng.random(shape) * 10.0**digits).astype(np.int64)
    if rng.random() < 0.3:
        values *= rng.choice([-1, 1], shape)
    return orjson.dumps({"instances": values.tolist()})


@pytest.mark.parametrize("seed", range(8))
def test_mutated_integer_bodies_answer_as_the_general_path(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(250):
        body = bytearray(_valid_body(rng))
        start, end = body.index(b"["), body.rindex(b"]") + 1
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(start, end))
            kind = rng.integers(3)
            if kind == 0:
                body[at] = ALPHABET[int(rng.integers(len(ALPHABET)))]
            elif kind == 1:
                del body[at]
                end -= 1
            else:
                body.insert(at, ALPHABET[int(rng.integers(len(ALPHABET)))])
                end += 1
        for dtypes in ({}, {"x": "int64"}, {"x": "uint8"}):
            _same(bytes(body), dtypes)


@pytest.mark.parametrize("seed", range(4))
def test_swapped_separators_answer_as_the_general_path(seed: int) -> None:
    """Separators of the right length with their brackets moved ("],[" -> ",[[", "]],"): only a
    check of every bracket's place tells these from rectangular arrays."""
    rng = np.random.default_rng(100 + seed)
    for _ in range(200):
        body = _valid_body(rng)
        swaps = [(b"],[", b",[["), (b"],[", b"]],"), (b"],[", b"[,]"), (b",", b"]"), (b",", b"[")]
        old, new = swaps[int(rng.integers(len(swaps)))]
        at = [i for i in range(len(body)) if body.startswith(old, i)]
        if not at:
            continue
        for i in rng.choice(at, size=min(len(at), int(rng.integers(1, 3))), replace=False):
            body = body[:i] + new + body[i + len(old) :]
        _same(body, {"x": "int64"})
