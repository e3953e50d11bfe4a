"""End to end: promote/rollback in git -> rendered configs -> the real gateway routes by label.

Real parts all the way: the ``kubevc-gen`` CLI on a git fleet repo; real SavedModels (TensorFlow)
published into a temporary store; the serving and gateway charts vendored in the fleet, rendered
by the Helm SDK with the region's values; the gateway (``kubevc.gateway.serve``) started from the
``gateway.yaml`` the gateway chart renders (only the backend address is pointed at the test
backend); and ``kubevc.gateway.testing.TestBackend`` answering like TF Serving with exactly the
versions and version labels of the ``models.config`` the serving chart renders — reloaded after
each commit, as TF Serving re-reads its model config file.
"""

from __future__ import annotations

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
from click.testing import CliRunner
from kubevc.gateway import parse_config, serve
from kubevc.gateway.testing import TestBackend, TestModel, run_test_backend
from kubevc.generator.cli import cli

from tests.generator.model_savedmodels import saved_models

__all__ = ["saved_models"]

REGION = "busan"
MODEL = "scale"


def gen(fleet: Path | None, *args: str) -> str:
    full = (["--fleet", str(fleet)] if fleet else []) + list(args)
    result = CliRunner().invoke(cli, full, prog_name="kubevc-gen", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


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
    """Points the test backend's answer for MODEL at versions/labels, as TF Serving would load them."""

    def __init__(self, backend: TestBackend) -> None:
        self.backend = backend
        self.served: list[int] = []
        original = backend._model

        def resolve(name: str, version: int | None = None, label: str | None = None) -> TestModel:
            if name != MODEL:
                return original(name, version, label)
            if label is not None:
                if label not in self.labels:
                    raise KeyError(f"Unrecognized servable version label: {label}")
                version = self.labels[label]
            chosen = max(self.versions) if version is None else version
            if chosen not in self.versions:
                raise KeyError(f"Servable not found for request: Specific({name}, {chosen})")
            self.served.append(chosen)
            return replace(scale_model(chosen), labels=dict(self.labels))

        backend._model = resolve  # type: ignore[method-assign]
        self.versions: list[int] = []
        self.labels: dict[str, int] = {}

    def load(self, fleet: Path, store: Path) -> None:
        versions, labels = tf_serving_view(fleet)
        on_disk = {int(p.name) for p in (store / MODEL).iterdir() if p.name.isdigit()}
        assert set(versions) <= on_disk, (versions, on_disk)  # TF Serving can load every listed version
        self.versions, self.labels = versions, labels
        self.backend.models[MODEL] = scale_model(max(versions))


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cfg = tmp_path / "gitconfig"
    cfg.write_text("[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = tmp_path / "fleet"
    gen(None, "init", str(root))
    gen(root, "region", "add", REGION, "--api-endpoint", "https://10.9.0.1:6443", "--nfs-server", "10.9.0.20",
        "--nfs-path", "/export/models")  # fmt: skip
    gen(root, "model", "add", MODEL, "--region", REGION, "--profile", "tensor")
    return root


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

    # the gateway config as the gateway chart renders it from the fleet; only the address is local
    rendered = yaml.safe_load(render(fleet, "kubevc-gateway", "configmap.yaml")["data"]["gateway.yaml"])
    assert [m["name"] for m in rendered["models"]] == [MODEL]
    for b in rendered["backends"]:
        b["address"] = backend.address
    config = parse_config(rendered, env={})
    with serve(config) as gw, httpx.Client(base_url=gw.url, timeout=30) as client:
        assert predict(client, "/labels/stable") == [1.0] * 4
        assert predict(client, "/labels/canary") == [2.0] * 4
        assert predict(client, "/versions/2") == [2.0] * 4
        assert serving.served[-3:] == [1, 2, 2]
        r = client.post(f"/v1/models/{MODEL}/labels/beta:predict", json={"instances": [[1.0] * 4]})
        assert r.status_code == 404 and "beta" in r.text
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
        assert r.status_code == 404  # the canary graduated, then stable was rolled back: no canary label
