"""BYTES tensors in the Open Inference Protocol binary-data extension (4-byte little-endian length
prefixed elements), through the gateway to TF Serving (DT_STRING) and v2 (raw BYTES) backends."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import httpx
import numpy as np
import orjson
import pytest

from kubevc.gateway import parse_config, serve
from kubevc.gateway.testing import TestBackend, TestModel, run_test_backend

TEXTS = [b"hello", b"", b"\x00\xffbin", "ünïcode".encode()]


def _strings_model() -> TestModel:
    def fn(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        text = inputs["text"]
        upper = np.empty(text.size, dtype=object)
        upper[:] = [bytes(t).upper() + b"!" for t in text.reshape(-1)]
        upper = upper.reshape(text.shape)
        lengths = np.array([len(t) for t in text.reshape(-1)], np.float32).reshape(text.shape)
        factor = inputs.get("factor")
        return {"upper": upper, "score": lengths * (1.0 if factor is None else factor)}

    return TestModel(
        name="strings",
        inputs={"text": (2,)},
        optional_inputs=("factor",),
        dtypes=("object", "float32"),
        outputs={"upper": (2,), "score": (2,)},
        fn=fn,
        signature={"text": "string", "factor": "float32"},
        output_dtypes={"upper": "string"},
    )


@pytest.fixture(scope="module")
def bytes_client() -> Iterator[tuple[httpx.Client, TestBackend]]:
    with run_test_backend({"strings": _strings_model()}) as b:
        config = {
            "server": {"logLevel": "warning"},
            "backends": [
                {"name": "tf", "protocol": "tfserving", "address": b.address},
                {"name": "v2", "protocol": "v2", "address": b.address},
            ],
            "models": [
                {
                    "name": f"strings-{p}",
                    "backend": p,
                    "backendModel": "strings",
                    "input": {"kind": "tensor", "name": "text"},
                    "output": {"name": None, "postprocess": "none"},
                }
                for p in ("tf", "v2")
            ],
        }
        with serve(parse_config(config, env={})) as gw, httpx.Client(base_url=gw.url, timeout=30) as c:
            yield c, b


def pack(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(x)) + x for x in items)


def post(client: httpx.Client, model: str, inputs: list[tuple[dict, bytes]], outputs=None) -> httpx.Response:
    header = orjson.dumps({"inputs": [h for h, _ in inputs], **({"outputs": outputs} if outputs else {})})
    return client.post(
        f"/v2/models/{model}/infer",
        content=header + b"".join(blob for _, blob in inputs),
        headers={
            "inference-header-content-length": str(len(header)),
            "content-type": "application/octet-stream",
        },
    )


def bytes_input(items: list[bytes], shape: list[int] | None = None) -> tuple[dict, bytes]:
    blob = pack(items)
    head = {
        "name": "text",
        "datatype": "BYTES",
        "shape": shape or [len(items)],
        "parameters": {"binary_data_size": len(blob)},
    }
    return head, blob


@pytest.mark.parametrize("backend_kind", ["tf", "v2"])
def test_binary_bytes_in_json_out(bytes_client: tuple[httpx.Client, TestBackend], backend_kind: str) -> None:
    client, _ = bytes_client
    factor = np.array([[1.0, 2.0], [3.0, 0.5]], np.float32)
    fp32 = (
        {
            "name": "factor",
            "datatype": "FP32",
            "shape": [2, 2],
            "parameters": {"binary_data_size": factor.nbytes},
        },
        factor.tobytes(),
    )
    # FP32 first, so the BYTES tensor starts at an offset into the binary data
    r = post(client, f"strings-{backend_kind}", [fp32, bytes_input(TEXTS, shape=[2, 2])])
    assert r.status_code == 200, r.text
    outs = {o["name"]: o for o in r.json()["outputs"]}
    assert outs["upper"]["datatype"] == "BYTES" and outs["upper"]["shape"] == [2, 2]
    assert outs["upper"]["data"][:3] == ["HELLO!", "!", "\x00\ufffdBIN!"]  # not UTF-8: replaced
    assert outs["upper"]["data"][3].encode() == "ünïcode".encode().upper() + b"!"
    assert outs["score"]["data"] == [5.0, 0.0, 15.0, 4.5]  # lengths 5, 0, 5, 9 (UTF-8 bytes) x factor


@pytest.mark.parametrize("backend_kind", ["tf", "v2"])
def test_binary_bytes_out(bytes_client: tuple[httpx.Client, TestBackend], backend_kind: str) -> None:
    client, _ = bytes_client
    r = post(
        client,
        f"strings-{backend_kind}",
        [bytes_input([*TEXTS[:3], b"x" * 70000], shape=[2, 2])],
        outputs=[{"name": "upper", "parameters": {"binary_data": True}}],
    )
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    (out,) = orjson.loads(r.content[:n])["outputs"]
    assert out["shape"] == [2, 2] and out["datatype"] == "BYTES"
    blob = r.content[n:]
    assert out["parameters"]["binary_data_size"] == len(blob)
    want = [b"HELLO!", b"!", b"\x00\xffBIN!", b"X" * 70000 + b"!"]
    assert blob == pack(want)


@pytest.mark.parametrize(
    ("blob", "shape", "size", "message"),
    [
        (struct.pack("<I", 10) + b"abc", [1, 2], None, "length 10 runs past the end"),
        (pack([b"a", b"b", b"c"]), [1, 2], None, "3 BYTES elements for a tensor of 2"),
        (pack([b"a"]) + b"\x01\x00", [1, 2], None, "truncated 4-byte length prefix"),
        (pack([b"a", b"b"]), [1, 2], 99, "binary_data_size: outside the binary data"),
    ],
)
def test_malformed_binary_bytes_are_400_without_a_backend_call(
    bytes_client: tuple[httpx.Client, TestBackend],
    blob: bytes,
    shape: list[int],
    size: int | None,
    message: str,
) -> None:
    client, backend = bytes_client
    before = backend.inference_calls()
    head = {
        "name": "text",
        "datatype": "BYTES",
        "shape": shape,
        "parameters": {"binary_data_size": size or len(blob)},
    }
    r = post(client, "strings-tf", [(head, blob)])
    assert r.status_code == 400 and message in r.json()["error"], r.text
    assert backend.inference_calls() == before
