"""Canary share: label routing through the gateway to a test backend that records what it was asked."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import replace

import httpx
import numpy as np
import orjson
import pytest

from kubevc.gateway import parse_config, serve
from kubevc.gateway._canary import MISSING_LABEL_SECONDS, LabelRouter, canary_fraction
from kubevc.gateway._config import CanaryConfig
from kubevc.gateway.testing import TestBackend, TestModel, run_test_backend

from .conftest import http_client

N = 400
PERCENT = 25.0


def _tiny(name: str, labels: dict[str, int], versions: tuple[int, ...]) -> TestModel:
    def fn(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["x"].astype(np.float32)
        return {"y": np.stack([x.sum(axis=1), x.max(axis=1)], axis=1)}

    return TestModel(
        name=name,
        inputs={"x": (4,)},
        dtypes=("float32",),
        outputs={"y": (2,)},
        fn=fn,
        version=max(versions),
        labels=labels,
        versions=versions,
    )


@pytest.fixture(scope="module")
def canary_backend() -> Iterator[TestBackend]:
    base = _tiny("tiny", {"stable": 1, "canary": 2}, (1, 2))
    models = {
        "tiny": base,
        "tiny-nostable": replace(base, name="tiny-nostable", labels={"canary": 2}),
        "tiny-nocanary": replace(base, name="tiny-nocanary", labels={"stable": 1}, versions=(1,), version=1),
    }
    with run_test_backend(models) as b:
        yield b


@pytest.fixture(scope="module")
def canary_client(canary_backend: TestBackend) -> Iterator[httpx.Client]:
    def model(name: str, remote: str, canary: dict[str, object] | None) -> dict[str, object]:
        m: dict[str, object] = {
            "name": name,
            "backend": "tf",
            "backendModel": remote,
            "input": {"kind": "tensor", "name": "x", "dtype": "float32"},
            "output": {"name": None, "postprocess": "none"},
        }
        if canary is not None:
            m["canary"] = canary
        return m

    config = {
        "server": {"logLevel": "warning"},
        "backends": [{"name": "tf", "protocol": "tfserving", "address": canary_backend.address}],
        "models": [
            model("split", "tiny", {"label": "canary", "percent": PERCENT}),
            model("all-canary", "tiny", {"percent": 100}),
            model("nostable", "tiny-nostable", {"percent": 0}),
            model("nocanary", "tiny-nocanary", {"percent": 50}),
            model("plain", "tiny", None),
        ],
    }
    with serve(parse_config(config, env={})) as gw, http_client(gw.url) as c:
        yield c


X = np.arange(4, dtype=np.float32).reshape(1, 4)
RAW = {"content-type": "application/octet-stream", "x-tensor-dtype": "float32", "x-tensor-shape": "1,4"}


def _infer(client: httpx.Client, model: str, request_id: str | None = None) -> httpx.Response:
    headers = dict(RAW, **({"x-request-id": request_id} if request_id else {}))
    r = client.post(f"/v1/models/{model}/infer", content=X.tobytes(), headers=headers)
    assert r.status_code == 200, r.text
    return r


def _predict(client: httpx.Client, path: str, request_id: str | None = None) -> httpx.Response:
    headers = {"x-request-id": request_id} if request_id else {}
    r = client.post(
        f"/v1/models/{path}:predict", content=orjson.dumps({"instances": X.tolist()}), headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [[6.0, 3.0]]
    return r


def _within_binomial(k: int, n: int, percent: float) -> None:
    p = percent / 100
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    # 4.5 standard deviations: a correct router fails this about once in 150,000 runs
    assert abs(k - mean) <= 4.5 * sd, f"{k} of {n} went to the canary; expected {mean:.0f} +- {4.5 * sd:.0f}"


def test_random_split_over_infer(canary_client: httpx.Client, canary_backend: TestBackend) -> None:
    # The router draws from the process's `random` (the gateway runs in this process): seeded, the
    # split is the same on every run, and the binomial bound below still checks its share.
    random.seed(20261201)
    line = 'kubevc_gateway_version_label_requests_total{label="canary",model="split"}'
    counted_before = _metric(canary_client, line)  # other tests of this module split "split" too
    start = len(canary_backend.requests)
    answers = [_infer(canary_client, "split") for _ in range(N)]
    labels = [r.headers["x-kubevc-model-version-label"] for r in answers]
    assert set(labels) <= {"canary", "stable"}
    _within_binomial(labels.count("canary"), N, PERCENT)
    # the backend was asked for exactly the label the response names, and that label's version answered
    seen = canary_backend.requests[start:]
    assert [(r[1], r[2], r[3]) for r in seen] == [("tiny", None, label) for label in labels]
    versions = [int(r.headers["x-kubevc-model-version"]) for r in answers]
    assert versions == [2 if label == "canary" else 1 for label in labels] == [r[4] for r in seen]
    assert _metric(canary_client, line) - counted_before == labels.count("canary")


def _metric(client: httpx.Client, line: str) -> float:
    """The value of one sample of ``/metrics`` (0 before it was first counted)."""
    for sample in client.get("/metrics").text.splitlines():
        if sample.startswith(line + " "):
            return float(sample.removeprefix(line + " "))
    return 0.0


def test_request_id_split_is_hash_based_and_sticky(canary_client: httpx.Client) -> None:
    ids = [f"client-{i}" for i in range(N)]
    first = {i: _predict(canary_client, "split", i).headers["x-kubevc-model-version-label"] for i in ids}
    _within_binomial(list(first.values()).count("canary"), N, PERCENT)
    assert first == {i: ("canary" if canary_fraction("split", i) * 100 < PERCENT else "stable") for i in ids}
    for i in ids[:25]:  # the same id sticks, on either route
        assert _predict(canary_client, "split", i).headers["x-kubevc-model-version-label"] == first[i]
        assert _infer(canary_client, "split", i).headers["x-kubevc-model-version-label"] == first[i]


def test_explicit_version_or_label_bypasses_the_split(
    canary_client: httpx.Client, canary_backend: TestBackend
) -> None:
    start = len(canary_backend.requests)
    for _ in range(5):
        assert _predict(canary_client, "all-canary/labels/stable").headers["x-kubevc-model-version"] == "1"
        r = _predict(canary_client, "all-canary/versions/1")
        assert "x-kubevc-model-version-label" not in r.headers and r.headers["x-kubevc-model-version"] == "1"
        assert _predict(canary_client, "all-canary").headers["x-kubevc-model-version-label"] == "canary"
        assert "x-kubevc-model-version-label" not in _predict(canary_client, "plain").headers
        v2 = canary_client.post(
            "/v2/models/all-canary/infer",
            content=orjson.dumps(
                {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0, 1, 2, 3]}]}
            ),
        )
        assert v2.status_code == 200 and v2.headers["x-kubevc-model-version-label"] == "canary", v2.text
    asked = [(r[2], r[3]) for r in canary_backend.requests[start:]]
    assert asked == [(None, "stable"), (1, None), (None, "canary"), (None, None), (None, "canary")] * 5


def test_missing_labels_fall_back_and_are_remembered(
    canary_client: httpx.Client, canary_backend: TestBackend
) -> None:
    start = len(canary_backend.requests)
    for _ in range(10):  # no stable label: the backend's default (newest) version, one probe only
        r = _infer(canary_client, "nostable")
        assert "x-kubevc-model-version-label" not in r.headers and r.headers["x-kubevc-model-version"] == "2"
    asked = [r[3] for r in canary_backend.requests[start:] if r[1] == "tiny-nostable"]
    assert asked == ["stable"] + [None] * 10
    start = len(canary_backend.requests)
    labels = [
        _infer(canary_client, "nocanary", f"id-{i}").headers["x-kubevc-model-version-label"]
        for i in range(40)
    ]
    assert labels == ["stable"] * 40  # half of the ids hash into the canary, which does not exist
    asked = [r[3] for r in canary_backend.requests[start:]]
    assert asked.count("canary") == 1 and asked.count("stable") == 40


def test_router_edges_and_expiry() -> None:
    now = [0.0]
    router = LabelRouter(clock=lambda: now[0], rand=lambda: 0.999)
    off, full, half = CanaryConfig(percent=0), CanaryConfig(percent=100), CanaryConfig(percent=50)
    assert router.choose("m", off, None) == "stable" and router.choose("m", full, None) == "canary"
    assert router.choose("m", half, None) == "stable"  # rand 0.999 is above 50 %
    router.mark_missing("m", "canary")
    assert router.choose("m", full, None) == "stable" and router.choose("other", full, None) == "canary"
    router.mark_missing("m", "stable")
    assert router.choose("m", full, None) is None
    now[0] = MISSING_LABEL_SECONDS + 1  # tried again after a while: the label may have been added
    assert router.choose("m", full, None) == "canary"
    assert canary_fraction("m", "a") == canary_fraction("m", "a") != canary_fraction("m2", "a")
