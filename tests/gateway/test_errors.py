"""Bad input and faults: short JSON errors, no stack traces, and no backend call where the gateway
can tell on its own. The test backend counts every inference call it receives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
from skimage import data

from kubevc.gateway import _decode, parse_config, serve
from kubevc.gateway.testing import TestBackend, run_test_backend

from .conftest import gateway_config, jpeg

pytestmark = pytest.mark.slow


def error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    doc = r.json()
    assert set(doc) == {"error", "status"} and doc["status"] == status
    assert "Traceback" not in r.text and len(r.text) < 600
    return str(doc["error"])


@pytest.fixture
def no_backend_call(calls) -> Iterator[None]:
    before = calls()
    yield
    assert calls() == before, "the backend was called for a request the gateway should have refused"


def test_unknown_model_and_route(client: httpx.Client, no_backend_call: None) -> None:
    assert "nope" in error(client.post("/v1/models/nope:predict", content=b"{}"), 404)
    assert "nope" in error(client.post("/v1/models/nope/infer", content=b"x"), 404)
    assert "nope" in error(client.post("/v2/models/nope/infer", content=b"{}"), 404)
    error(client.post("/v1/models/yolov5:explain", content=b"{}"), 404)
    error(client.get("/no/such/route"), 404)
    error(client.get("/v1/models/yolov5:predict"), 405)


def test_body_over_limit_by_content_length(client: httpx.Client, no_backend_call: None) -> None:
    body = b"\xff" * ((8 << 20) + 1)
    assert "above the limit" in error(
        client.post("/v1/models/yolov5/infer", content=body, headers={"content-type": "image/jpeg"}), 413
    )


def test_body_over_limit_while_streaming(client: httpx.Client, no_backend_call: None) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for _ in range(20):
            yield b"\xff" * (1 << 20)

    r = client.post("/v1/models/yolov5/infer", content=chunks(), headers={"content-type": "image/jpeg"})
    assert "above the limit" in error(r, 413)


def test_unsupported_media_type(client: httpx.Client, no_backend_call: None) -> None:
    assert "accepts" in error(
        client.post("/v1/models/yolov5/infer", content=b"GIF89a", headers={"content-type": "image/gif"}), 415
    )
    error(
        client.post(
            "/v1/models/bert/infer", content=jpeg(data.coffee()), headers={"content-type": "image/jpeg"}
        ),
        415,
    )
    error(
        client.post("/v1/models/yolov5/infer", content=b"hello", headers={"content-type": "text/plain"}), 415
    )


def test_undecodable_images(client: httpx.Client, no_backend_call: None) -> None:
    photo = jpeg(data.astronaut())
    assert "undecodable" in error(
        client.post("/v1/models/yolov5/infer", content=photo[:200], headers={"content-type": "image/jpeg"}),
        400,
    )
    assert "not a JPEG or PNG" in error(
        client.post("/v1/models/yolov5/infer", content=b"plain text", headers={"content-type": "image/jpeg"}),
        400,
    )
    png_head = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    error(
        client.post("/v1/models/yolov5/infer", content=png_head, headers={"content-type": "image/png"}), 400
    )
    error(
        client.post("/v1/models/yolov5/infer", content=b"\x00" * 100, headers={"content-type": "video/mp4"}),
        400,
    )


def test_video_without_pyav_names_the_extra(
    client: httpx.Client, no_backend_call: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway image ships without PyAV (the `video` extra): video is refused before decoding.
    monkeypatch.setattr(_decode, "video_supported", lambda: False)
    message = error(
        client.post("/v1/models/yolov5/infer", content=b"\x00" * 100, headers={"content-type": "video/mp4"}),
        415,
    )
    assert "kubevc[video]" in message
    # images still work the same
    assert "undecodable" not in error(
        client.post("/v1/models/yolov5/infer", content=b"\x00" * 100, headers={"content-type": "text/plain"}),
        415,
    )


def test_image_bomb_is_refused_from_the_header(client: httpx.Client, no_backend_call: None) -> None:
    # 2500 x 2000 = 5 Mpx of flat colour compresses to a few KB but is above the 4 Mpx limit
    bomb = jpeg(np.full((2000, 2500, 3), 200, np.uint8), 50)
    assert len(bomb) < 200_000
    assert "pixels" in error(
        client.post("/v1/models/yolov5/infer", content=bomb, headers={"content-type": "image/jpeg"}), 413
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"instances": [], "inputs": []}', "exactly one of"),
        (b'{"instances": []}', "instances: must be a non-empty list"),
        (b'{"instances": [[1, 2], [3]]}', "instances: ragged"),
        (b'{"instances": [["a", 1]]}', "instances"),
        (b'{"instances": [[1, 2, 3]]}', "instances: shape [1, 3] does not match"),
        (b'{"inputs": {"images": [[[[300]]]]}}', "inputs.images: values outside 0..255"),
        (b'{"instances": [{"input": 1}, {"other": 2}]}', "instances[1]: must be an object with the keys"),
        (b'{"instances": [1], "extra": 1}', "unknown key 'extra'"),
    ],
)
def test_wrong_json_names_the_field(
    client: httpx.Client, no_backend_call: None, body: bytes, field: str
) -> None:
    assert field in error(client.post("/v1/models/yolov5:predict", content=body), 400)


def test_wrong_shapes_on_v2_and_raw_routes(client: httpx.Client, no_backend_call: None) -> None:
    body = {"inputs": [{"name": "images", "shape": [1, 2], "datatype": "UINT8", "data": [1, 2]}]}
    r = client.post("/v2/models/yolov5/infer", content=orjson.dumps(body))
    assert "inputs[0]: shape [1, 2] does not match the model input [-1, 640, 640, 3]" in error(r, 400)
    r = client.post(
        "/v1/models/bert/infer",
        content=np.zeros((1, 7), np.int32).tobytes(),
        headers={
            "content-type": "application/octet-stream",
            "x-tensor-dtype": "int32",
            "x-tensor-shape": "1,7",
        },
    )
    assert "body: shape [1, 7] does not match the model input [-1, 500]" in error(r, 400)


def test_bert_ids_must_be_integers(client: httpx.Client, no_backend_call: None) -> None:
    body = orjson.dumps({"instances": [[0.5] * 500]})
    assert "expected integers" in error(client.post("/v1/models/bert:predict", content=body), 400)


def test_bad_v2_and_raw_tensor_bodies(client: httpx.Client, no_backend_call: None) -> None:
    r = client.post(
        "/v2/models/raw/infer",
        content=orjson.dumps(
            {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2]}]}
        ),
    )
    assert "inputs[0].data" in error(r, 400)
    r = client.post(
        "/v2/models/raw/infer",
        content=orjson.dumps(
            {"inputs": [{"name": "input", "shape": [2], "datatype": "COMPLEX", "data": [1, 2]}]}
        ),
    )
    assert "COMPLEX" in error(r, 400)
    header = orjson.dumps(
        {
            "inputs": [
                {"name": "input", "shape": [4], "datatype": "FP32", "parameters": {"binary_data_size": 8}}
            ]
        }
    )
    r = client.post(
        "/v2/models/raw/infer",
        content=header + b"\0" * 8,
        headers={"inference-header-content-length": str(len(header))},
    )
    assert "binary_data_size" in error(r, 400)
    r = client.post(
        "/v1/models/raw/infer",
        content=b"\0" * 12,
        headers={
            "content-type": "application/octet-stream",
            "x-tensor-dtype": "float32",
            "x-tensor-shape": "2,2",
        },
    )
    assert "needs 16" in error(r, 400)
    r = client.post(
        "/v1/models/raw/infer", content=b"\0" * 12, headers={"content-type": "application/octet-stream"}
    )
    assert "X-Tensor-Dtype" in error(r, 400)
    r = client.post("/v1/models/raw/infer", content=b"not npy", headers={"content-type": "application/x-npy"})
    assert ".npy" in error(r, 400)


def test_backend_invalid_argument_is_400_with_its_message(client: httpx.Client, backend: TestBackend) -> None:
    before = backend.calls["Predict", "mobilenet"]
    # the shape fits the signature (the gateway checks that now); raw tensors are sent as they
    # are, so the dtype is the backend's to refuse
    x = np.zeros((1, 224, 224, 3), np.float64)
    r = client.post(
        "/v1/models/raw/infer",
        content=x.tobytes(),
        headers={
            "content-type": "application/octet-stream",
            "x-tensor-dtype": "float64",
            "x-tensor-shape": "1,224,224,3",
        },
    )
    assert "but float64 is provided" in error(r, 400)
    assert backend.calls["Predict", "mobilenet"] == before + 1


@pytest.fixture
def own_backend() -> Iterator[TestBackend]:
    with run_test_backend() as b:
        yield b


def test_backend_deadline_is_504(own_backend: TestBackend, vocab_file: Path) -> None:
    own_backend.delay_seconds = 3.0
    cfg = parse_config(
        gateway_config(own_backend.address, vocab_file, backend_overrides={"deadlineSeconds": 0.3}), env={}
    )
    with serve(cfg) as gw, httpx.Client(base_url=gw.url, timeout=30) as c:
        r = c.post(
            "/v1/models/mobilenet/infer", content=jpeg(data.coffee()), headers={"content-type": "image/jpeg"}
        )
        assert "deadline" in error(r, 504)
        assert own_backend.calls["Predict", "mobilenet"] == 1  # deadline exceeded is not retried


def test_request_budget_is_504(own_backend: TestBackend, vocab_file: Path) -> None:
    own_backend.delay_seconds = 3.0
    cfg = parse_config(
        gateway_config(own_backend.address, vocab_file, limits={"requestTimeoutSeconds": 0.3}), env={}
    )
    with serve(cfg) as gw, httpx.Client(base_url=gw.url, timeout=30) as c:
        r = c.post(
            "/v1/models/mobilenet/infer", content=jpeg(data.coffee()), headers={"content-type": "image/jpeg"}
        )
        error(r, 504)


def test_backend_down_gives_503_then_breaker_answers_without_calling(vocab_file: Path) -> None:
    overrides = {
        "retries": 1,
        "retryBackoffSeconds": 0.01,
        "breaker": {"failureThreshold": 2, "resetSeconds": 300},
    }
    with run_test_backend() as probe:  # find a port, then free it: nothing listens there
        port = probe.port
    cfg = parse_config(gateway_config(f"127.0.0.1:{port}", vocab_file, backend_overrides=overrides), env={})
    with serve(cfg) as gw, httpx.Client(base_url=gw.url, timeout=30) as c:
        photo = jpeg(data.coffee())
        for _ in range(2):
            assert "unavailable" in error(
                c.post("/v1/models/mobilenet/infer", content=photo, headers={"content-type": "image/jpeg"}),
                503,
            )
        assert "circuit open" in error(
            c.post("/v1/models/mobilenet/infer", content=photo, headers={"content-type": "image/jpeg"}), 503
        )
        assert 'kubevc_gateway_backend_up{backend="tf"} 0.0' in c.get("/metrics").text
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["ready"] is False
        # the backend comes back on the same port: the open breaker still answers 503 fast, no call made
        with run_test_backend(port=port) as back:
            r = c.post("/v1/models/mobilenet/infer", content=photo, headers={"content-type": "image/jpeg"})
            assert "circuit open" in error(r, 503)
            assert back.inference_calls() == 0
