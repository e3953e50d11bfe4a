"""Canary share on v2 backends (Triton, MLServer): no version labels there, so ``canary.versions``
maps stable/canary to a ``model_version``; checked against the test backend's Open Inference
Protocol service, which records the version each request asked for."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import replace

import httpx
import numpy as np
import pytest

from kubevc.gateway import ConfigError, parse_config, serve
from kubevc.gateway._canary import canary_fraction
from kubevc.gateway.testing import TestBackend, TestModel, run_test_backend

from .conftest import http_client

N = 400
PERCENT = 25.0
X = np.arange(4, dtype=np.float32).reshape(1, 4)
RAW = {"content-type": "application/octet-stream", "x-tensor-dtype": "float32", "x-tensor-shape": "1,4"}


def _tiny(name: str) -> TestModel:
    return TestModel(
        name=name,
        inputs={"x": (4,)},
        dtypes=("float32",),
        outputs={"y": (4,)},
        fn=lambda inputs: {"y": inputs["x"].astype(np.float32)},
        version=2,  # the newest loaded version: what a request naming none gets
        labels={},  # v2: no labels
        versions=(1, 2),
    )


def _model(name: str, canary: dict[str, object] | None) -> dict[str, object]:
    doc: dict[str, object] = {
        "name": name,
        "backend": "triton",
        "backendModel": "tiny",
        "input": {"kind": "tensor", "name": "x", "dtype": "float32"},
        "output": {"name": None, "postprocess": "none"},
    }
    if canary is not None:
        doc["canary"] = canary
    return doc


def _config(address: str, models: list[dict[str, object]], protocol: str = "v2") -> dict[str, object]:
    return {
        "server": {"logLevel": "warning"},
        "backends": [{"name": "triton", "protocol": protocol, "address": address}],
        "models": models,
    }


@pytest.fixture(scope="module")
def v2_backend() -> Iterator[TestBackend]:
    base = _tiny("tiny")
    with run_test_backend(
        {"tiny": base, "tiny-one": replace(base, name="tiny-one", versions=(1,), version=1)}
    ) as b:
        yield b


@pytest.fixture(scope="module")
def v2_client(v2_backend: TestBackend) -> Iterator[httpx.Client]:
    versions = {"stable": 1, "canary": 2}
    models = [
        _model("split", {"percent": PERCENT, "versions": versions}),
        _model("all-stable", {"percent": 0, "versions": versions}),
        {**_model("gone", {"percent": 100, "versions": versions}), "backendModel": "tiny-one"},
    ]
    with serve(parse_config(_config(v2_backend.address, models), env={})) as gw, http_client(gw.url) as c:
        yield c


def _infer(client: httpx.Client, path: str, request_id: str | None = None) -> httpx.Response:
    headers = dict(RAW, **({"x-request-id": request_id} if request_id else {}))
    r = client.post(f"/v1/models/{path}", content=X.tobytes(), headers=headers)
    assert r.status_code == 200, r.text
    return r


def _predict(client: httpx.Client, path: str) -> httpx.Response:
    r = client.post(f"/v1/models/{path}:predict", json={"instances": X.tolist()})
    assert r.status_code == 200, r.text
    return r


def _within_binomial(k: int, n: int, percent: float) -> None:
    p = percent / 100
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    # 4.5 standard deviations: a correct router fails this about once in 150,000 runs
    assert abs(k - mean) <= 4.5 * sd, f"{k} of {n} went to the canary; expected {mean:.0f} +- {4.5 * sd:.0f}"


def test_split_asks_for_each_labels_version_and_sticks_by_request_id(
    v2_client: httpx.Client, v2_backend: TestBackend
) -> None:
    ids = [f"client-{i}" for i in range(N)]
    start = len(v2_backend.requests)
    first = {i: _infer(v2_client, "split/infer", i) for i in ids}
    labels = {i: r.headers["x-kubevc-model-version-label"] for i, r in first.items()}
    _within_binomial(list(labels.values()).count("canary"), N, PERCENT)
    assert labels == {i: ("canary" if canary_fraction("split", i) * 100 < PERCENT else "stable") for i in ids}
    # the backend was asked for the label's version by number, and that version answered
    asked = [(r[0], r[2], r[3]) for r in v2_backend.requests[start:]]
    assert asked == [("ModelInfer", 2 if labels[i] == "canary" else 1, None) for i in ids]
    assert all(
        r.headers["x-kubevc-model-version"] == str(2 if labels[i] == "canary" else 1)
        for i, r in first.items()
    )
    for i in ids[:25]:  # the same id sticks
        assert _infer(v2_client, "split/infer", i).headers["x-kubevc-model-version-label"] == labels[i]


def test_share_zero_pins_stable_and_explicit_labels_map_to_versions(
    v2_client: httpx.Client, v2_backend: TestBackend
) -> None:
    start = len(v2_backend.requests)
    for i in range(20):  # without the map a v2 server would answer with its newest version (2)
        r = _infer(v2_client, "all-stable/infer", f"id-{i}")
        assert r.headers["x-kubevc-model-version"] == "1"
    canary = _predict(v2_client, "all-stable/labels/canary")
    assert canary.headers["x-kubevc-model-version-label"] == "canary"
    explicit = _predict(v2_client, "all-stable/versions/2")
    assert "x-kubevc-model-version-label" not in explicit.headers
    assert [r[2] for r in v2_backend.requests[start:]] == [1] * 20 + [2, 2]


def test_a_version_the_server_has_not_loaded_falls_back_to_stable(
    v2_client: httpx.Client, v2_backend: TestBackend
) -> None:
    start = len(v2_backend.requests)
    labels = [
        _infer(v2_client, "gone/infer", f"id-{i}").headers["x-kubevc-model-version-label"] for i in range(10)
    ]
    assert labels == ["stable"] * 10  # every request goes to the canary (100 %), which is not loaded
    asked = [r[2] for r in v2_backend.requests[start:]]
    assert asked == [2] + [1] * 10  # tried once, then remembered as missing


@pytest.mark.parametrize(
    ("protocol", "canary", "message"),
    [
        ("v2", {"percent": 10}, "('triton' is v2); on v2 give canary.versions"),
        ("tfserving", {"percent": 10, "versions": {"stable": 1, "canary": 2}}, "only for v2 backends"),
        ("v2", {"percent": 10, "versions": {"stable": 1}}, "give exactly the 'stable' and 'canary'"),
        ("v2", {"percent": 10, "versions": {"stable": 1, "canary": 0}}, "greater than 0"),
    ],
)
def test_canary_config_checks(protocol: str, canary: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(_config("127.0.0.1:1", [_model("m", canary)], protocol), env={})
