"""Signatures from the backend (issue 18): read at start and on readiness changes, config narrowed
by them and checked against them, JSON ``:predict`` converted to the signature's dtypes, text ids
in the signature's integer dtype, and the v2 metadata and versioned ready routes.

The test backend declares real signatures over both protocols (GetModelMetadata signature_def and
v2 ModelMetadata): int64 BERT ids, a float32 ``regressor``, a string input ``strings`` and
``kinds`` (float64, int8, uint16, bool, float16, int64), each refusing any other dtype."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from kubevc.gateway import parse_config, serve
from kubevc.gateway._rest import parse_predict_body
from kubevc.gateway.testing import (
    TestBackend,
    backend_doc,
    config_doc,
    detections_profile,
    multipart,
    tensor_profile,
    text_profile,
    yolo_profile,
)


@pytest.fixture(scope="module")
def sig_client(backend: TestBackend, vocab_file: Path) -> Iterator[httpx.Client]:
    models: list[dict[str, Any]] = []
    for p in ("tf", "v2"):
        models += [
            {
                **tensor_profile(f"regressor-{p}", p, backend_model="regressor"),
                "input": {"kind": "tensor", "name": "x"},
            },
            {
                **tensor_profile(f"strings-{p}", p, backend_model="strings"),
                "input": {"kind": "tensor", "name": "text"},
            },
            {
                **tensor_profile(f"kinds-{p}", p, backend_model="kinds"),
                "input": {"kind": "tensor", "name": "f64"},
            },
            {
                **detections_profile(f"encoded-{p}", p, backend_model="yolov5-encoded"),
                "input": {"kind": "image", "name": "image_bytes"},  # no dtype: the signature says string
            },
            {
                **text_profile(f"bert-{p}", p, vocab_file=vocab_file, sequence_length=500),
                "backendModel": "bert",
            },
        ]
    wrong = yolo_profile("wrong", "tf", backend_model="yolov5")
    wrong["input"]["dtype"] = "float32"  # the backend declares uint8
    narrowed = {
        "name": "narrowed",
        "backend": "tf",
        "backendModel": "mobilenet",
        # dtype and size left at their defaults (uint8, 640x640): the signature says float32, 224
        "input": {"kind": "image", "name": "input", "resize": "stretch"},
        "output": {"name": "output0", "postprocess": "topk", "topK": 2},
    }
    doc = config_doc(
        [backend_doc("tf", backend.address), backend_doc("v2", backend.address, "v2")],
        [*models, wrong, narrowed],
    )
    with serve(parse_config(doc, env={})) as gw, httpx.Client(base_url=gw.url, timeout=60) as c:
        _wait_for_signatures(c, [m["name"] for m in models])
        yield c


def _wait_for_signatures(client: httpx.Client, names: list[str], bound: float = 120.0) -> None:
    """Until the gateway has read every model's signature: its first read at start has a short
    budget that a loaded machine can miss, and the tests here are about what it does once read.
    (``/v2/health/ready`` makes it ask again; the bound only stops a hang.)"""
    deadline = time.monotonic() + bound
    missing = list(names)
    while missing and time.monotonic() < deadline:
        client.get("/v2/health/ready")
        missing = [n for n in missing if client.get(f"/v2/models/{n}").json()["kubevc"]["signature"] is None]
        if missing:
            time.sleep(0.5)
    assert not missing, f"signatures never read for {missing}"


def _predict(client: httpx.Client, model: str, doc: dict[str, Any]) -> httpx.Response:
    return client.post(f"/v1/models/{model}:predict", json=doc)


@pytest.mark.parametrize("p", ["tf", "v2"])
def test_predict_converts_to_the_signature_dtype(
    sig_client: httpx.Client, backend: TestBackend, p: str
) -> None:
    # integers into a float32 model: the default config dtype (uint8) no longer decides
    r = _predict(sig_client, f"regressor-{p}", {"instances": [[1, 2, 3, 4], [0.5, 0.5, 0.5, 0.5]]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [[10.0], [2.0]]}
    assert backend.received["regressor"] == {"x": "float32"}
    row = {
        "f64": [1, 2.5],
        "i8": [-3, 4],
        "u16": [65535, 0],
        "flag": [True, False],
        "half": [1, 0.5],
        "i64": [2**40, -1],
    }
    r = _predict(sig_client, f"kinds-{p}", {"instances": [row]})
    assert r.status_code == 200, r.text
    assert backend.received["kinds"] == {
        "f64": "float64",
        "i8": "int8",
        "u16": "uint16",
        "flag": "bool",
        "half": "float16",
        "i64": "int64",
    }
    out = r.json()["predictions"][0]
    assert out["i64_out"] == [2**40, -1] and out["flag_out"] == [True, False] and out["u16_out"] == [65535, 0]
    assert out["half_out"] == [1.0, 0.5] and out["f64_out"] == [1.0, 2.5]
    # columnar, too
    r = _predict(sig_client, f"kinds-{p}", {"inputs": {k: [v] for k, v in row.items()}})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("p", ["tf", "v2"])
def test_strings_and_b64_reach_a_string_input(sig_client: httpx.Client, p: str) -> None:
    r = _predict(
        sig_client,
        f"strings-{p}",
        {"instances": ["abc", {"b64": base64.b64encode(b"\x00\xff\x01").decode()}]},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [3, 3]}


@pytest.mark.parametrize("p", ["tf", "v2"])
def test_wrong_kinds_and_shapes_are_refused_before_the_backend(
    sig_client: httpx.Client, backend: TestBackend, p: str
) -> None:
    before = backend.inference_calls()
    cases = [
        (
            "regressor",
            {"instances": [["a", "b", "c", "d"]]},
            "strings given, but the model input takes float32",
        ),
        (
            "regressor",
            {"instances": [[{"b64": "AAAA"}] * 4]},
            "strings given, but the model input takes float32",
        ),
        ("strings", {"instances": [1, 2]}, "takes strings"),
        ("regressor", {"instances": [[1, 2, 3]]}, "does not match the signature [-1, 4]"),
        (
            "kinds",
            {
                "instances": [
                    {
                        "f64": [1, 2],
                        "i8": [300, 1],
                        "u16": [1, 1],
                        "flag": [True, True],
                        "half": [1, 1],
                        "i64": [1, 1],
                    }
                ]
            },
            "values outside -128..127 for dtype int8",
        ),
        (
            "kinds",
            {
                "instances": [
                    {
                        "f64": [1, 2],
                        "i8": [1, 1],
                        "u16": [1, 1],
                        "flag": [1, 0],
                        "half": [1, 1],
                        "i64": [1, 1],
                    }
                ]
            },
            "expected true/false for dtype bool",
        ),
        ("regressor", {"inputs": {"y": [[1, 2, 3, 4]]}}, "input 'y' is not in the model's signature"),
        # numbers a float input cannot hold: inf or a rounded integer would reach the model
        ("regressor", {"instances": [[1e39, 1, 1, 1]]}, "values outside ±3.4028235e+38 for dtype float32"),
        (
            "regressor",
            {"instances": [[16777217, 1, 1, 1]]},
            "integers outside ±16777215 are not exact in dtype float32",
        ),
        (
            "kinds",
            {
                "instances": [
                    {
                        "f64": [1, 2],
                        "i8": [1, 1],
                        "u16": [1, 1],
                        "flag": [True, False],
                        "half": [70000.5, 1],
                        "i64": [1, 1],
                    }
                ]
            },
            "values outside ±65504 for dtype float16",
        ),
    ]
    for model, doc, message in cases:
        r = _predict(sig_client, f"{model}-{p}", doc)
        assert r.status_code == 400 and message in r.json()["error"], (model, doc, r.text)
    assert backend.inference_calls() == before


@pytest.mark.parametrize("p", ["tf", "v2"])
def test_text_ids_go_in_the_signature_integer_dtype(
    sig_client: httpx.Client, backend: TestBackend, p: str
) -> None:
    r = sig_client.post(
        f"/v1/models/bert-{p}/infer", content=b"the edge gateway", headers={"content-type": "text/plain"}
    )
    assert r.status_code == 200, r.text
    assert backend.received["bert"] == {"input_ids": "int64", "attention_mask": "int64"}


def test_a_config_that_contradicts_the_signature_is_not_ready(
    sig_client: httpx.Client, backend: TestBackend
) -> None:
    ready = sig_client.get("/readyz")
    assert ready.status_code == 503
    doc = ready.json()
    assert doc["models"]["wrong"] is False and doc["models"]["regressor-tf"] is True
    reason = doc["errors"]["wrong"]
    for part in ("model 'wrong'", "input 'images'", "config input.dtype is float32", "dtype uint8"):
        assert part in reason, reason
    assert set(doc["errors"]) == {"wrong"}
    before = backend.inference_calls()
    r = sig_client.post(
        "/v1/models/wrong/infer", content=b"\xff\xd8\xff", headers={"content-type": "image/jpeg"}
    )
    assert r.status_code == 503 and "config input.dtype is float32" in r.json()["error"]
    assert backend.inference_calls() == before


def test_the_config_is_narrowed_by_the_signature(sig_client: httpx.Client, astronaut_jpeg: bytes) -> None:
    # mobilenet takes float32 (N, 224, 224, 3): with the config's defaults (uint8 640x640) it
    # would refuse every request
    r = sig_client.post(
        "/v1/models/narrowed/infer", content=astronaut_jpeg, headers={"content-type": "image/jpeg"}
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["results"][0]["classes"]) == 2
    meta = sig_client.get("/v1/models/narrowed/metadata").json()
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["input"]["dtype"] == "DT_FLOAT"


@pytest.mark.parametrize("p", ["tf", "v2"])
def test_v2_metadata_is_the_backend_s(sig_client: httpx.Client, p: str) -> None:
    doc = sig_client.get(f"/v2/models/bert-{p}").json()
    assert doc["name"] == f"bert-{p}" and doc["versions"] == ["1"]
    inputs = {i["name"]: i for i in doc["inputs"]}
    assert inputs["input_ids"] == {"name": "input_ids", "datatype": "INT64", "shape": [-1, 500]}
    assert doc["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 2]}]
    strings = sig_client.get(f"/v2/models/strings-{p}/versions/1").json()
    assert strings["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert strings["outputs"] == [{"name": "length", "datatype": "INT64", "shape": [-1]}]
    missing = sig_client.get(f"/v2/models/strings-{p}/versions/7")
    assert missing.status_code == 404 and missing.json()["status"] == 404


@pytest.mark.parametrize("p", ["tf", "v2"])
def test_versioned_ready_routes(sig_client: httpx.Client, p: str) -> None:
    ok = sig_client.get(f"/v2/models/regressor-{p}/versions/1/ready")
    assert ok.status_code == 200 and ok.json() == {"name": f"regressor-{p}", "ready": True, "version": "1"}
    gone = sig_client.get(f"/v2/models/regressor-{p}/versions/9/ready")
    assert gone.status_code == 503 and gone.json()["ready"] is False
    bad = sig_client.get(f"/v2/models/regressor-{p}/versions/x/ready")
    assert bad.status_code == 400
    assert sig_client.get("/v2/models/wrong/ready").json()["ready"] is False  # its config contradicts


@pytest.mark.parametrize("p", ["tf", "v2"])
def test_encoded_images_pass_through_to_a_model_that_decodes_them(
    sig_client: httpx.Client, backend: TestBackend, astronaut_jpeg: bytes, coffee_png: bytes, p: str
) -> None:
    r = sig_client.post(
        f"/v1/models/encoded-{p}/infer", content=astronaut_jpeg, headers={"content-type": "image/jpeg"}
    )
    assert r.status_code == 200, r.text
    assert backend.received["yolov5-encoded"] == {"image_bytes": "object"}  # bytes, not pixels
    detections = r.json()["results"][0]["detections"]
    assert detections and all(0 <= d["box"][0] <= d["box"][2] <= 512 for d in detections)
    body, ctype = multipart([("image/jpeg", astronaut_jpeg), ("image/png", coffee_png)])
    r = sig_client.post(f"/v1/models/encoded-{p}/infer", content=body, headers={"content-type": ctype})
    assert r.status_code == 200 and len(r.json()["results"]) == 2, r.text
    meta = sig_client.get(f"/v2/models/encoded-{p}").json()
    assert meta["inputs"] == [{"name": "image_bytes", "datatype": "BYTES", "shape": [-1]}]
    assert meta["kubevc"]["wire_form"] == "encoded"
    video = sig_client.post(
        f"/v1/models/encoded-{p}/infer", content=b"\x00" * 64, headers={"content-type": "video/mp4"}
    )
    assert video.status_code == 415


def test_the_wire_form_is_reported(sig_client: httpx.Client) -> None:
    forms = {
        "encoded-tf": "encoded",
        "narrowed": "float32",
        "bert-tf": "int64 ids",
        "regressor-tf": "as sent",
        "wrong": "float32",  # as configured: its signature contradicts it, so it is not ready
    }
    for model, form in forms.items():
        assert sig_client.get(f"/v2/models/{model}").json()["kubevc"]["wire_form"] == form, model
    metrics = sig_client.get("/metrics").text
    for model, form in forms.items():
        assert f'kubevc_gateway_wire_form{{form="{form}",model="{model}"}} 1.0' in metrics, (model, form)
    assert sig_client.get("/v2/models/wrong").json()["kubevc"]["ready_error"]


def test_float_inputs_take_every_number_the_dtype_holds() -> None:
    """The largest float32, the largest exact integer and a decimal that rounds are all taken."""
    body = b'{"instances": [[3.4028235e38, -3.4028235e38, 16777215, 16777217.0]]}'
    (inputs, _, _) = parse_predict_body(body, "x", {"x": "float32"})
    expected = np.array(
        [[np.finfo(np.float32).max, np.finfo(np.float32).min, 16777215, 16777216]], np.float32
    )
    np.testing.assert_array_equal(inputs["x"], expected)
