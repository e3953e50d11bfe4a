"""End to end: promote/rollback in git -> rendered configs -> the real gateway routes by label.

Real parts all the way: the ``kubevc-gen`` CLI on a git fleet repo; real SavedModels (TensorFlow)
published into a temporary store; the serving and gateway charts vendored in the fleet, rendered
by the Helm SDK with the region's values; the gateway (``kubevc.gateway.serve``) started from the
``gateway.yaml`` the gateway chart renders (only the backend address is pointed at the test
backend); and ``kubevc.gateway.testing.TestBackend`` answering like TF Serving with exactly the
versions and version labels of the ``models.config`` the serving chart renders — reloaded after
each commit, as TF Serving re-reads its model config file.

The canary share (``model promote --canary-percent`` / ``model canary``) is measured the same way:
requests that name no version or label, with and without ``X-Request-Id``, must split between the
stable and the canary version within a binomial bound and keep their side per request id.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import helm_python
import httpx
import numpy as np
import pytest
import yaml

from kubevc.gateway import GatewayConfig, parse_config, serve
from kubevc.gateway.testing import TestBackend, TestModel, run_test_backend
from tests.generator.model_savedmodels import saved_models

from .conftest import gen

__all__ = ["saved_models"]

REGION = "busan"
MODEL = "scale"


def values(fleet: Path, app: str) -> dict[str, Any]:
    cm = yaml.safe_load((fleet / f"apps/{REGION}/{app}-values.yaml").read_text())
    loaded = yaml.safe_load(cm["data"]["values.yaml"])
    assert isinstance(loaded, dict)
    return loaded


def render(fleet: Path, app: str, template: str) -> dict[str, Any]:
    chart = helm_python.Chart.load(str(fleet / "charts" / app))
    out = chart.render(values(fleet, app), name=app, namespace="kubevc")
    doc = yaml.safe_load(out[f"{app}/templates/{template}"])
    assert isinstance(doc, dict)
    return doc


def tf_serving_view(fleet: Path) -> tuple[list[int], dict[str, int]]:
    """Loaded versions and version labels of MODEL in the serving chart's rendered models.config."""
    text = render(fleet, "kubevc-serving", "configmap.yaml")["data"]["models.config"]
    block = re.search(r'name: "' + MODEL + r'"\n(.*?)\n  \}', text, re.S)
    assert block, text
    versions = [int(v) for v in re.findall(r"versions: (\d+)", block.group(1))]
    labels = {k: int(v) for k, v in re.findall(r'key: "(\w+)"\n\s+value: (\d+)', block.group(1))}
    return versions, labels


def scale_model(version: int) -> TestModel:
    """Version N answers x * N (the SavedModels published below compute the same)."""
    return TestModel(
        name=MODEL,
        inputs={"input": (4,)},
        dtypes=("float32",),
        outputs={"output0": (4,)},
        fn=lambda inputs: {"output0": (inputs["input"] * float(version)).astype(np.float32)},
        version=version,
    )


class ServingLike:
    """Loads MODEL into the test backend with the versions and labels of the rendered models.config,
    as TF Serving would (it re-reads that file); each version answers with its own ``scale_model``."""

    def __init__(self, backend: TestBackend) -> None:
        self.backend = backend
        self.served: list[int] = []
        original = backend._model

        def resolve(name: str, version: int | None = None, label: str | None = None) -> tuple[TestModel, int]:
            model, chosen = original(name, version, label)  # unknown versions/labels fail as in TF Serving
            if name != MODEL:
                return model, chosen
            self.served.append(chosen)
            return replace(model, fn=scale_model(chosen).fn), chosen

        backend._model = resolve  # type: ignore[method-assign]
        self.versions: list[int] = []
        self.labels: dict[str, int] = {}

    def load(self, fleet: Path, store: Path) -> None:
        versions, labels = tf_serving_view(fleet)
        on_disk = {int(p.name) for p in (store / MODEL).iterdir() if p.name.isdigit()}
        assert set(versions) <= on_disk, (versions, on_disk)  # TF Serving can load every listed version
        self.versions, self.labels = versions, labels
        # without a version or label TF Serving answers with the newest loaded version
        self.backend.models[MODEL] = replace(
            scale_model(max(versions)), versions=tuple(versions), labels=dict(labels)
        )


def gateway_config(fleet: Path, backend: TestBackend) -> GatewayConfig:
    """The gateway config as the gateway chart renders it from the fleet; only the address is local."""
    rendered = yaml.safe_load(render(fleet, "kubevc-gateway", "configmap.yaml")["data"]["gateway.yaml"])
    assert [m["name"] for m in rendered["models"]] == [MODEL]
    for b in rendered["backends"]:
        b["address"] = backend.address
    return parse_config(rendered, env={})


@pytest.fixture
def fleet_region() -> str:
    """The region of the shared ``fleet`` fixture (tests/e2e/conftest.py)."""
    return REGION


@pytest.fixture
def fleet(fleet: Path) -> Path:
    """The shared one-region fleet with MODEL added (a TF Serving model, the tensor profile)."""
    gen(fleet, "model", "add", MODEL, "--region", REGION, "--profile", "tensor")
    return fleet


@pytest.fixture
def backend() -> Iterator[TestBackend]:
    with run_test_backend({}) as b:
        yield b


def predict(client: httpx.Client, route: str) -> list[float]:
    r = client.post(f"/v1/models/{MODEL}{route}:predict", json={"instances": [[1.0, 1.0, 1.0, 1.0]]})
    assert r.status_code == 200, r.text
    out = np.asarray(r.json()["predictions"], dtype=np.float32).reshape(-1)
    return [float(x) for x in out]


def test_gateway_routes_by_the_labels_git_promoted_and_rolled_back(
    fleet: Path, tmp_path: Path, backend: TestBackend, saved_models: Path
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    for v in (1, 2, 3):
        gen(
            fleet,
            "model",
            "publish",
            MODEL,
            str(saved_models / f"v{v}"),
            "--version",
            str(v),
            "--store",
            str(store),
        )
    serving = ServingLike(backend)
    promote = ["model", "promote", MODEL, "--store", str(store)]
    gen(fleet, *promote, "--version", "1", "--label", "stable")
    gen(fleet, *promote, "--version", "2", "--label", "canary")
    serving.load(fleet, store)
    assert (serving.versions, serving.labels) == ([1, 2], {"stable": 1, "canary": 2})

    with serve(gateway_config(fleet, backend)) as gw, httpx.Client(base_url=gw.url, timeout=30) as client:
        assert predict(client, "/labels/stable") == [1.0] * 4
        assert predict(client, "/labels/canary") == [2.0] * 4
        assert predict(client, "/versions/2") == [2.0] * 4
        assert serving.served[-3:] == [1, 2, 2]
        r = client.post(f"/v1/models/{MODEL}/labels/beta:predict", json={"instances": [[1.0] * 4]})
        assert r.status_code == 400 and "Unrecognized servable version label: beta" in r.text
        r = client.post(f"/v1/models/{MODEL}/versions/3:predict", json={"instances": [[1.0] * 4]})
        assert r.status_code == 404  # published, but not loaded: the canary config lists 1 and 2

        gen(fleet, *promote, "--version", "2", "--label", "stable")
        gen(fleet, *promote, "--version", "3", "--label", "canary")
        serving.load(fleet, store)
        assert predict(client, "/labels/stable") == [2.0] * 4
        assert predict(client, "/labels/canary") == [3.0] * 4

        gen(fleet, *promote, "--version", "3", "--label", "stable")
        gen(fleet, "model", "rollback", MODEL)
        serving.load(fleet, store)
        assert serving.labels == {"stable": 2}
        assert predict(client, "/labels/stable") == [2.0] * 4
        r = client.post(f"/v1/models/{MODEL}/labels/canary:predict", json={"instances": [[1.0] * 4]})
        assert r.status_code == 400  # the canary graduated, then stable was rolled back: no canary label


# --------------------------------------------------------------------------- canary share

N = 400  # requests per measured split
Z = 4.5  # a correct split fails the bound with probability < 1e-5; a wrong share fails it for sure


def split(
    client: httpx.Client, serving: ServingLike, ids: list[str] | None, n: int = N
) -> dict[str, list[int]]:
    """Send requests that name no version or label; the versions that answered, by request id."""
    answered: dict[str, list[int]] = {}
    for i in range(n):
        rid = ids[i % len(ids)] if ids else None
        headers = {"X-Request-Id": rid} if rid else {}
        r = client.post(f"/v1/models/{MODEL}:predict", json={"instances": [[1.0] * 4]}, headers=headers)
        assert r.status_code == 200, r.text
        version = int(r.headers["X-Kubevc-Model-Version"])
        out = np.asarray(r.json()["predictions"], dtype=np.float32).reshape(-1)
        assert out.tolist() == [float(version)] * 4  # the body came from that version
        label = r.headers.get("X-Kubevc-Model-Version-Label")  # set when the canary split routed it
        assert label is None or serving.labels[label] == version, (label, version, serving.labels)
        answered.setdefault(rid or f"anonymous-{i}", []).append(version)
    return answered


def assert_binomial(hits: int, n: int, percent: float) -> None:
    p = percent / 100
    bound = Z * math.sqrt(n * p * (1 - p))
    assert abs(hits - n * p) <= bound, (
        f"{hits}/{n} requests on the canary, expected {percent}% +- {bound:.1f}"
    )


def test_gateway_splits_unlabelled_requests_by_the_canary_share(
    fleet: Path, tmp_path: Path, backend: TestBackend, saved_models: Path
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    for v in (1, 2):
        gen(fleet, "model", "publish", MODEL, str(saved_models / f"v{v}"), "--version", str(v),
            "--store", str(store))  # fmt: skip
    serving = ServingLike(backend)
    promote = ["model", "promote", MODEL, "--store", str(store)]
    gen(fleet, *promote, "--version", "1", "--label", "stable")
    gen(fleet, *promote, "--version", "2", "--label", "canary")  # no share given: 0%
    serving.load(fleet, store)
    assert (serving.versions, serving.labels) == ([1, 2], {"stable": 1, "canary": 2})
    assert values(fleet, "kubevc-gateway")["config"]["models"][0]["canary"] == {
        "label": "canary",
        "percent": 0,
    }
    ids = [f"client-{i}" for i in range(N)]

    # 0%: TF Serving's default would be the newest version (the canary); the gateway keeps stable
    with serve(gateway_config(fleet, backend)) as gw, httpx.Client(base_url=gw.url, timeout=30) as client:
        assert predict(client, "") == [1.0] * 4
        assert {v for vs in split(client, serving, ids, 100).values() for v in vs} == {1}
        assert predict(client, "/labels/canary") == [2.0] * 4  # the canary is reachable by its label

    # 30%: a binomial split, sticky per X-Request-Id
    gen(fleet, "model", "canary", MODEL, "--percent", "30")
    assert values(fleet, "kubevc-gateway")["config"]["models"][0]["canary"] == {
        "label": "canary",
        "percent": 30,
    }
    serving.load(fleet, store)  # versions and labels did not change
    with serve(gateway_config(fleet, backend)) as gw, httpx.Client(base_url=gw.url, timeout=30) as client:
        first = split(client, serving, ids)
        canary_30 = {rid for rid, vs in first.items() if vs == [2]}
        assert_binomial(len(canary_30), N, 30)
        again = split(client, serving, ids[:100] * 3, 300)  # the same ids again, three times each
        assert all(vs == first[rid] * 3 for rid, vs in again.items()), "a request id changed sides"
        anonymous = split(client, serving, None)  # no X-Request-Id: random per request
        assert_binomial(sum(vs == [2] for vs in anonymous.values()), N, 30)
        served = serving.served[-N:]
        assert set(served) == {1, 2}

    # 60%: everyone who was on the canary at 30% stays there (the share only adds clients)
    gen(fleet, "model", "canary", MODEL, "--percent", "60")
    with serve(gateway_config(fleet, backend)) as gw, httpx.Client(base_url=gw.url, timeout=30) as client:
        canary_60 = {rid for rid, vs in split(client, serving, ids).items() if vs == [2]}
        assert_binomial(len(canary_60), N, 60)
        assert canary_30 <= canary_60

    # graduation: no canary block any more; every request goes to the new stable version
    gen(fleet, *promote, "--version", "2", "--label", "stable")
    assert "canary" not in values(fleet, "kubevc-gateway")["config"]["models"][0]
    serving.load(fleet, store)
    assert (serving.versions, serving.labels) == ([2], {"stable": 2})
    with serve(gateway_config(fleet, backend)) as gw, httpx.Client(base_url=gw.url, timeout=30) as client:
        assert {v for vs in split(client, serving, ids, 100).values() for v in vs} == {2}
