"""Backend behaviour over real gRPC: retries on UNAVAILABLE only, cancellation on deadline, message
limits, breaker recovery, backend NOT_FOUND, and large photos mapped back to their own pixels."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from skimage import data

from kubevc.gateway import CircuitBreaker, GatewayServer, parse_config, serve
from kubevc.gateway.testing import TestBackend, run_test_backend

from .conftest import gateway_config, jpeg

pytestmark = pytest.mark.slow
JPEG = {"content-type": "image/jpeg"}


@pytest.fixture
def own_backend() -> Iterator[TestBackend]:
    with run_test_backend() as b:
        yield b


def _serve(backend: TestBackend, vocab: Path, **overrides) -> GatewayServer:
    return serve(parse_config(gateway_config(backend.address, vocab, backend_overrides=overrides), env={}))


def test_unavailable_is_retried_other_codes_are_not(own_backend: TestBackend, vocab_file: Path) -> None:
    photo = jpeg(data.coffee())
    with (
        _serve(own_backend, vocab_file, retries=2, retryBackoffSeconds=0.01) as gw,
        httpx.Client(base_url=gw.url, timeout=30) as c,
    ):
        own_backend.fail_next = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]
        assert c.post("/v1/models/mobilenet/infer", content=photo, headers=JPEG).status_code == 200
        assert own_backend.calls["Predict", "mobilenet"] == 3  # two refusals, then the answer
        own_backend.fail_next = [grpc.StatusCode.INTERNAL]
        r = c.post("/v1/models/mobilenet/infer", content=photo, headers=JPEG)
        assert r.status_code == 502 and r.json()["error"] == "backend tf failed: INTERNAL"
        assert own_backend.calls["Predict", "mobilenet"] == 4  # not retried
        own_backend.fail_next = [grpc.StatusCode.UNAVAILABLE] * 3
        assert c.post("/v1/models/mobilenet/infer", content=photo, headers=JPEG).status_code == 503
        assert own_backend.calls["Predict", "mobilenet"] == 7  # 1 + 2 retries, then give up


def test_deadline_cancels_the_backend_call(own_backend: TestBackend, vocab_file: Path) -> None:
    own_backend.delay_seconds = 5.0
    with (
        _serve(own_backend, vocab_file, deadlineSeconds=0.3) as gw,
        httpx.Client(base_url=gw.url, timeout=30) as c,
    ):
        r = c.post("/v1/models/mobilenet/infer", content=jpeg(data.coffee()), headers=JPEG)
        assert r.status_code == 504
        limit = time.monotonic() + 10
        while own_backend.cancelled < 1 and time.monotonic() < limit:
            time.sleep(0.05)
        assert own_backend.cancelled == 1


def test_message_limits(own_backend: TestBackend, vocab_file: Path) -> None:
    with (
        _serve(own_backend, vocab_file, maxMessageBytes=1 << 20) as gw,
        httpx.Client(base_url=gw.url, timeout=30) as c,
    ):
        # mobilenet: 602 KB float32 in, 4 KB out: fits
        assert (
            c.post("/v1/models/mobilenet/infer", content=jpeg(data.coffee()), headers=JPEG).status_code == 200
        )
        # yolov5: 1.2 MB uint8 tensor in is above 1 MiB: refused before it leaves
        r = c.post("/v1/models/yolov5/infer", content=jpeg(data.coffee()), headers=JPEG)
        assert r.status_code == 413 and "too large" in r.json()["error"]
    with (
        _serve(own_backend, vocab_file, maxMessageBytes=2 << 20) as gw,
        httpx.Client(base_url=gw.url, timeout=30) as c,
    ):
        # 8.5 MB of YOLO rows back is above 2 MiB: the backend's answer is refused (502)
        r = c.post("/v1/models/yolov5/infer", content=jpeg(data.coffee()), headers=JPEG)
        assert r.status_code == 502 and "larger than max" in r.json()["error"]


def test_breaker_half_opens_and_recovers(vocab_file: Path) -> None:
    with run_test_backend() as probe:
        port = probe.port
    overrides = {"retries": 0, "breaker": {"failureThreshold": 1, "resetSeconds": 0.5}}
    cfg = parse_config(gateway_config(f"127.0.0.1:{port}", vocab_file, backend_overrides=overrides), env={})
    photo = jpeg(data.coffee())
    with serve(cfg) as gw, httpx.Client(base_url=gw.url, timeout=30) as c:
        assert c.post("/v1/models/mobilenet/infer", content=photo, headers=JPEG).status_code == 503
        assert "circuit open" in c.post("/v1/models/mobilenet/infer", content=photo, headers=JPEG).text
        with run_test_backend(port=port) as back:
            limit = time.monotonic() + 20
            while time.monotonic() < limit:  # half-open after resetSeconds: one trial call closes it
                r = c.post("/v1/models/mobilenet/infer", content=photo, headers=JPEG)
                if r.status_code == 200:
                    break
                time.sleep(0.2)
            assert r.status_code == 200, r.text
            assert back.inference_calls() >= 1
            assert 'kubevc_gateway_backend_up{backend="tf"} 1.0' in c.get("/metrics").text


def test_circuit_breaker_states() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, reset_seconds=10, clock=lambda: now[0])
    assert breaker.allow() and breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.5
    assert breaker.state == "half-open"
    assert breaker.allow() and not breaker.allow()  # exactly one trial call
    breaker.failure()
    assert breaker.state == "open"  # trial failed: open again for another reset period
    now[0] = 21
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()


def test_backend_not_found_version_is_404(client: httpx.Client) -> None:
    x = np.zeros((1, 224, 224, 3), np.uint8).tolist()
    import orjson

    r = client.post("/v1/models/mobilenet/versions/9:predict", content=orjson.dumps({"instances": x}))
    assert r.status_code == 404 and "Specific(mobilenet, 9)" in r.json()["error"]
    r = client.post("/v1/models/mobilenet/labels/canary:predict", content=orjson.dumps({"instances": x}))
    # TF Serving answers an unknown label with INVALID_ARGUMENT (its REST API: 400)
    assert r.status_code == 400 and "Unrecognized servable version label: canary" in r.json()["error"]


def test_large_photo_decoded_at_reduced_scale_keeps_original_coordinates(client: httpx.Client) -> None:
    small = data.astronaut()  # 512 x 512
    big = np.repeat(np.repeat(small, 3, axis=0), 3, axis=1)  # 1536 x 1536, the same picture
    a = client.post("/v1/models/yolov5/infer", content=jpeg(small), headers=JPEG).json()["results"][0]
    b = client.post("/v1/models/yolov5/infer", content=jpeg(big), headers=JPEG).json()["results"][0]
    assert (b["width"], b["height"]) == (1536, 1536)
    assert [d["class"] for d in a["detections"]] == [d["class"] for d in b["detections"]]
    for da, db in zip(a["detections"], b["detections"], strict=True):
        assert np.allclose(np.array(da["box"]) * 3, db["box"], atol=9)  # within 3 px of the small photo
