"""Triton and MLServer, each loading what ``model publish`` wrote, answer through the gateway.

Real parts: the region spec of a fleet with a Triton (Python backend) and an MLServer model; the
store folder that :func:`kubevc.generator.models.publish_model` writes (as the NFS/iSCSI PV
presents it to the pods); the real ``tritonserver`` (``.tools/triton``, started with the flags the
serving chart gives its Triton Deployment: explicit model control, only its model loaded) and the
real MLServer (``.tools/mlserver``, started on the model's folder as the chart mounts it, ports
from the same environment variables); the gateway (``kubevc.gateway.serve``) started from the
``gateway.yaml`` the gateway chart renders with the values ``render`` produced for the region, only
each backend's Service address pointed at the local server.

Then through the ``kubevc-gen`` CLI on a git fleet: ``model promote``/``rollback`` rewrite Triton's
config.pbtxt and MLServer's model-settings.json in the store, and the real servers, loading again
(as the serving chart's restart makes them), serve exactly the promoted versions; a canary is split
by version number through the gateway. Last, the issue's "done when": one fleet with a TF Serving
model (played by the gateway's test PredictionService), a Triton and an MLServer model, each its
own Deployment of the rendered serving chart, one gateway answering all three.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import helm_python
import httpx
import numpy as np
import pytest
import yaml

from kubevc.gateway import GatewayConfig, parse_config, serve
from kubevc.gateway._proto.inference import grpc_predict_v2_pb2 as v2pb
from kubevc.gateway._proto.inference import grpc_predict_v2_pb2_grpc as v2grpc
from kubevc.gateway.testing import (
    TestModel,
    TritonServer,
    run_mlserver,
    run_test_backend,
    run_tritonserver,
    triton_install,
    write_mlserver_settings,
    write_triton_add_model,
)
from kubevc.generator.models import LocalStore, publish_model
from kubevc.generator.render import chart_region_values
from kubevc.generator.repo import load_profiles
from kubevc.generator.spec import FleetConfig, RegionSpec

from .conftest import gen

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

# MLServer custom runtime (code the serving image would carry): output0 = input * the scale in the
# published version folder's scale.json (so the answer shows which version MLServer serves).
SCALE_RUNTIME = """
import json
from pathlib import Path

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class Scale(MLModel):
    async def load(self) -> bool:
        folder = Path(await get_model_uri(self.settings))
        self._scale = float(json.loads((folder / "scale.json").read_text())["scale"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("output0", x * self._scale)]
        )
"""

MODELS: list[dict[str, Any]] = [
    {
        "name": "add-one",
        "basePath": "/models/add-one",
        "runtime": "triton",
        "profile": "tensor",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1]}],
        "outputs": [{"name": "output0", "datatype": "FP32", "shape": [-1]}],
    },
    {"name": "scale", "basePath": "/models/scale", "runtime": "mlserver", "profile": "tensor"},
]


def region() -> RegionSpec:
    return RegionSpec.model_validate(
        {
            "name": "seoul",
            "apiEndpoint": "https://10.0.0.1:6443",
            "storage": {"nfs": {"server": "10.0.0.5", "path": "/srv/models"}},
            "git": {"url": "https://git.example.com/ops/fleet.git"},
            "models": MODELS,
        }
    )


def rendered_gateway_yaml() -> dict[str, Any]:
    """gateway.yaml as the gateway chart renders it from the values ``render`` produced."""
    values = chart_region_values(region(), "kubevc-gateway", FleetConfig(), load_profiles())
    chart = helm_python.Chart.load(str(REPO / "charts/kubevc-gateway"))
    out = chart.render(values, name="kubevc-gateway", namespace="kubevc")
    configmap = yaml.safe_load(out["kubevc-gateway/templates/configmap.yaml"])
    doc: dict[str, Any] = yaml.safe_load(configmap["data"]["gateway.yaml"])
    return doc


def gateway_for(backend: str, address: str) -> Any:
    """The rendered config with ``backend``'s Service address pointed at the local server."""
    doc = rendered_gateway_yaml()
    services = {b["name"]: b["address"] for b in doc["backends"]}
    assert services == {"add-one": "kubevc-serving-add-one:8001", "scale": "kubevc-serving-scale:8081"}
    for b in doc["backends"]:
        b["retries"] = 0
        if b["name"] == backend:
            b["address"] = address
    doc["models"] = [m for m in doc["models"] if m["backend"] == backend]
    return parse_config(doc, env={})


def infer_labelled(
    client: httpx.Client, model: str, values: np.ndarray, request_id: str | None = None
) -> tuple[np.ndarray, str]:
    """POST a float32 tensor to the gateway; the answer and the version label that served it."""
    headers = {
        "content-type": "application/octet-stream",
        "x-tensor-dtype": "float32",
        "x-tensor-shape": ",".join(str(d) for d in values.shape),
    }
    if request_id is not None:
        headers["x-request-id"] = request_id
    answer = client.post(f"/v1/models/{model}/infer", content=values.tobytes(), headers=headers)
    assert answer.status_code == 200, answer.text
    out = np.asarray(answer.json()["outputs"]["output0"]["data"], dtype=np.float32)
    return out, answer.headers.get("x-kubevc-model-version-label", "")


def infer(gateway_url: str, model: str, values: np.ndarray) -> np.ndarray:
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        return infer_labelled(client, model, values)[0]


# --------------------------------------------------------------------------- Triton


@pytest.fixture(scope="module")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    python = os.environ.get("KUBEVC_TRITON_PYTHON") or str(REPO / ".tools/triton/bin/python")
    try:
        install = triton_install(python)
    except FileNotFoundError as missing:
        pytest.fail(f"{missing}: run `make tools` (or set KUBEVC_TRITON_PYTHON)")
    work = tmp_path_factory.mktemp("triton")
    store = work / "store"  # the PV's root, as the Triton Deployment mounts it at /models
    store.mkdir()
    src = write_triton_add_model(work / "add-one-src", addend=1)
    (add_one,) = [m for m in region().models if m.name == "add-one"]
    publish_model(LocalStore(store), model=add_one, folder="add-one", version=1, src=src)
    (store / "other-tf-model" / "1").mkdir(parents=True)  # another model's folder: not loaded
    # the flags of the chart's Triton container (charts/kubevc-serving deployment.yaml)
    flags = ("--model-control-mode=explicit", "--load-model=add-one", "--strict-readiness=true")
    with run_tritonserver(store, install=install, extra_args=flags, ready_timeout=600) as server:
        yield server


def test_triton_loads_the_published_repository_and_answers_through_the_gateway(triton: TritonServer) -> None:
    with grpc.insecure_channel(triton.grpc_target) as channel:
        stub = v2grpc.GRPCInferenceServiceStub(channel)
        assert stub.ModelReady(v2pb.ModelReadyRequest(name="add-one", version="1"), timeout=30).ready
        try:  # explicit model control: the store's other model folders are not loaded
            other = stub.ModelReady(v2pb.ModelReadyRequest(name="other-tf-model"), timeout=30).ready
        except grpc.RpcError:
            other = False
    assert not other
    cfg = gateway_for("add-one", triton.grpc_target)
    values = np.array([1.5, -2.0, 3.25], dtype=np.float32)
    with serve(cfg) as gw:
        np.testing.assert_array_equal(infer(gw.url, "add-one", values), values + 1)


# --------------------------------------------------------------------------- MLServer


def _mlserver() -> Path:
    path = Path(os.environ.get("KUBEVC_MLSERVER") or REPO / ".tools/mlserver/bin/mlserver")
    if not path.exists():
        pytest.fail(f"MLServer not found at {path}: run `make tools` (or set KUBEVC_MLSERVER)")
    return path


@contextlib.contextmanager
def chart_mlserver(store: Path, models: tuple[str, ...], work: Path) -> Iterator[str]:
    """The real MLServer started as the chart's MLServer container is: each model folder of the
    store mounted at /mnt/models/<name>, `mlserver start /mnt/models`, ports from the environment.
    Yields its gRPC address once every model is ready."""
    exe = _mlserver()
    work.mkdir(parents=True, exist_ok=True)
    code = work / "image-code"  # the runtime's code, which the serving image would carry
    code.mkdir(exist_ok=True)
    (code / "scale_runtime.py").write_text(SCALE_RUNTIME)
    mnt = work / "mnt-models"
    mnt.mkdir()
    for name in models:
        (mnt / name).symlink_to(store / name, target_is_directory=True)
    with run_mlserver(
        exe,
        mnt,
        models=models,
        python_path=(code,),
        env={"MLSERVER_LOAD_MODELS_AT_STARTUP": "true"},  # as the chart's container sets it
        log=work / "mlserver.log",
    ) as server:
        yield server.grpc_target


def write_scale_version(folder: Path, factor: float) -> Path:
    """A ``model publish`` source of the Scale runtime answering input * ``factor``."""
    write_mlserver_settings(folder, "scale_runtime.Scale")
    (folder / "scale.json").write_text(json.dumps({"scale": factor}))
    return folder


@pytest.fixture(scope="module")
def mlserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("mlserver")
    store = work / "store"
    store.mkdir()
    (scale,) = [m for m in region().models if m.name == "scale"]
    for version, factor in ((1, 2.0), (2, 3.0)):
        src = write_scale_version(work / f"scale-v{version}", factor)
        publish_model(LocalStore(store), model=scale, folder="scale", version=version, src=src)
    with chart_mlserver(store, ("scale",), work / "server") as address:
        yield address


def test_mlserver_loads_the_published_settings_and_answers_through_the_gateway(mlserver: str) -> None:
    cfg = gateway_for("scale", mlserver)
    values = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    with serve(cfg) as gw:
        # model-settings.json serves the newest published version: version 2 scales by 3
        # (MLServer's NumPy codec answers a 1-D tensor as [N, 1])
        np.testing.assert_array_equal(infer(gw.url, "scale", values).ravel(), values * 3)


# --------------------------------------------------------------------------- promote / rollback

REGION = "seoul"
N = 200  # requests of a canary split


@pytest.fixture
def fleet_region() -> str:
    """The region of the shared ``fleet`` fixture (tests/e2e/conftest.py)."""
    return REGION


def fleet_values(fleet: Path, app: str) -> dict[str, Any]:
    configmap = yaml.safe_load((fleet / f"apps/{REGION}/{app}-values.yaml").read_text())
    loaded: dict[str, Any] = yaml.safe_load(configmap["data"]["values.yaml"])
    return loaded


def fleet_chart(fleet: Path, app: str) -> dict[str, str]:
    """``app``'s chart as vendored in the fleet, rendered with the region's values."""
    chart = helm_python.Chart.load(str(fleet / "charts" / app))
    rendered: dict[str, str] = chart.render(fleet_values(fleet, app), name=app, namespace="kubevc")
    return rendered


def fleet_gateway(fleet: Path, addresses: dict[str, str]) -> GatewayConfig:
    """gateway.yaml as the fleet's gateway chart renders it; each backend pointed at a local server."""
    configmap = yaml.safe_load(
        fleet_chart(fleet, "kubevc-gateway")["kubevc-gateway/templates/configmap.yaml"]
    )
    doc = yaml.safe_load(configmap["data"]["gateway.yaml"])
    assert {b["name"] for b in doc["backends"]} == set(addresses)
    for b in doc["backends"]:
        b["address"] = addresses[b["name"]]
        b["retries"] = 0
    return parse_config(doc, env={})


def triton_loaded(server: TritonServer, model: str, candidates: tuple[int, ...]) -> set[int]:
    loaded = set()
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = v2grpc.GRPCInferenceServiceStub(channel)
        for version in candidates:
            try:
                request = v2pb.ModelReadyRequest(name=model, version=str(version))
                if stub.ModelReady(request, timeout=30).ready:
                    loaded.add(version)
            except grpc.RpcError:
                pass
    return loaded


def triton_reload(server: TritonServer, model: str) -> None:
    """What the restarted pod does (the serving chart restarts it on a change): load the model
    again from the repository, with the config.pbtxt now in the store."""
    url = f"http://127.0.0.1:{server.http_port}/v2/repository/models/{model}/load"
    answer = httpx.post(url, timeout=300)
    assert answer.status_code == 200, answer.text


def assert_binomial(hits: int, n: int, percent: float) -> None:
    p = percent / 100
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    # 4.5 standard deviations: a correct router fails this about once in 150,000 runs
    assert abs(hits - mean) <= 4.5 * sd, (
        f"{hits} of {n} went to the canary; expected {mean:.0f} +- {4.5 * sd:.0f}"
    )


def assert_canary_split(
    client: httpx.Client, model: str, x: np.ndarray, answers: dict[str, np.ndarray], percent: float
) -> None:
    """N requests with distinct request ids split within a binomial bound, each answered by the
    version of the label the gateway names; a request id keeps its side."""
    sides = {}
    for i in range(N):
        out, label = infer_labelled(client, model, x, f"client-{i}")
        np.testing.assert_array_equal(out.ravel(), answers[label])
        sides[i] = label
    assert_binomial(list(sides.values()).count("canary"), N, percent)
    for i in range(10):
        assert infer_labelled(client, model, x, f"client-{i}")[1] == sides[i]


def test_triton_serves_what_promote_and_rollback_set(fleet: Path, tmp_path: Path) -> None:
    """publish v1 (+1) and v2 (+2); each promote/rollback rewrites config.pbtxt in the store, and
    the real tritonserver, loading the model again, serves exactly the promoted versions."""
    python = os.environ.get("KUBEVC_TRITON_PYTHON") or str(REPO / ".tools/triton/bin/python")
    try:
        install = triton_install(python)
    except FileNotFoundError as missing:
        pytest.fail(f"{missing}: run `make tools` (or set KUBEVC_TRITON_PYTHON)")
    gen(fleet, "model", "add", "add-one", "--region", REGION, "--profile", "tensor", "--runtime", "triton",
        "--input", "input:FP32:-1", "--output", "output0:FP32:-1")  # fmt: skip
    store = tmp_path / "store"
    store.mkdir()
    for version in (1, 2):
        src = write_triton_add_model(tmp_path / f"add-{version}", addend=version)
        gen(fleet, "model", "publish", "add-one", str(src), "--version", str(version), "--store", str(store))
    flags = ("--model-control-mode=explicit", "--load-model=add-one", "--strict-readiness=true")
    x = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    with run_tritonserver(store, install=install, extra_args=flags, ready_timeout=600) as server:
        assert triton_loaded(server, "add-one", (1, 2)) == {2}  # published, unlabelled: the newest
        phases: list[tuple[list[str], set[int], int | None]] = [
            (["promote", "add-one", "--version", "1", "--label", "stable"], {1}, 1),
            # a canary: both versions loaded, the gateway splits by version number (v2 has no labels)
            (
                ["promote", "add-one", "--version", "2", "--label", "canary", "--canary-percent", "30"],
                {1, 2},
                None,
            ),
            (["promote", "add-one", "--version", "2", "--label", "stable"], {2}, 2),
            (["rollback", "add-one"], {1}, 1),
        ]
        for args, loaded, addend in phases:
            gen(fleet, "model", *args, "--store", str(store))
            triton_reload(server, "add-one")
            assert triton_loaded(server, "add-one", (1, 2)) == loaded, args
            cfg = fleet_gateway(fleet, {"add-one": server.grpc_target})
            with serve(cfg) as gw, httpx.Client(base_url=gw.url, timeout=60) as client:
                if addend is not None:
                    out, _label = infer_labelled(client, "add-one", x, "any")
                    np.testing.assert_array_equal(out, x + addend)
                    continue
                assert_canary_split(client, "add-one", x, {"stable": x + 1, "canary": x + 2}, 30.0)


def mlserver_loaded(address: str, model: str, candidates: tuple[int, ...]) -> set[int]:
    loaded = set()
    with grpc.insecure_channel(address) as channel:
        stub = v2grpc.GRPCInferenceServiceStub(channel)
        for version in candidates:
            try:
                if stub.ModelReady(
                    v2pb.ModelReadyRequest(name=model, version=str(version)), timeout=30
                ).ready:
                    loaded.add(version)
            except grpc.RpcError:
                pass
    return loaded


def test_mlserver_serves_what_promote_and_rollback_set(fleet: Path, tmp_path: Path) -> None:
    """publish v1 (x2) and v2 (x3); each promote/rollback rewrites model-settings.json in the store,
    and the real MLServer, started again (as the chart restarts its pod), serves the promoted one."""
    gen(fleet, "model", "add", "scale", "--region", REGION, "--profile", "tensor", "--runtime", "mlserver")
    store = tmp_path / "store"
    store.mkdir()
    for version, factor in ((1, 2.0), (2, 3.0)):
        src = write_scale_version(tmp_path / f"scale-{version}", factor)
        gen(fleet, "model", "publish", "scale", str(src), "--version", str(version), "--store", str(store))
    x = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    phases: list[tuple[list[str], set[int], float | None]] = [
        (["promote", "scale", "--version", "1", "--label", "stable"], {1}, 2.0),
        (["promote", "scale", "--version", "2", "--label", "canary", "--canary-percent", "30"], {1, 2}, None),
        (["promote", "scale", "--version", "2", "--label", "stable"], {2}, 3.0),
        (["rollback", "scale"], {1}, 2.0),
    ]
    for i, (args, loaded, factor) in enumerate(phases):
        gen(fleet, "model", *args, "--store", str(store))
        with chart_mlserver(store, ("scale",), tmp_path / f"mlserver-{i}") as address:
            assert mlserver_loaded(address, "scale", (1, 2)) == loaded, args
            cfg = fleet_gateway(fleet, {"scale": address})
            with serve(cfg) as gw, httpx.Client(base_url=gw.url, timeout=60) as client:
                if factor is None:
                    assert_canary_split(client, "scale", x, {"stable": x * 2, "canary": x * 3}, 30.0)
                    continue
                out, _label = infer_labelled(client, "scale", x, "any")
                np.testing.assert_array_equal(out.ravel(), x * factor)


# --------------------------------------------------------------------------- one fleet, three runtimes


def tf_serving_stand_in() -> TestModel:
    """Stands in for TF Serving (the test backend's PredictionService, as TF Serving answers it):
    model times-ten, output0 = input * 10."""
    return TestModel(
        name="times-ten",
        inputs={"input": (3,)},
        dtypes=("float32",),
        outputs={"output0": (3,)},
        fn=lambda inputs: {"output0": (inputs["input"] * 10).astype(np.float32)},
    )


def test_one_fleet_three_runtimes_one_gateway(fleet: Path, triton: TritonServer, mlserver: str) -> None:
    """The issue's "done when": one region serves a TF model on TF Serving, a Python-backend model on
    Triton and an MLServer model, each in its own Deployment of the rendered serving chart, and one
    gateway configured from render's values answers all three over real sockets."""
    gen(fleet, "model", "add", "times-ten", "--region", REGION, "--profile", "tensor")
    gen(fleet, "model", "add", "add-one", "--region", REGION, "--profile", "tensor", "--runtime", "triton",
        "--input", "input:FP32:-1", "--output", "output0:FP32:-1")  # fmt: skip
    gen(fleet, "model", "add", "scale", "--region", REGION, "--profile", "tensor", "--runtime", "mlserver")
    gen(fleet, "render", "--check")  # every model add rendered and committed the fleet

    deployments: dict[str, list[str]] = {}
    for template, text in fleet_chart(fleet, "kubevc-serving").items():
        for doc in yaml.safe_load_all(text) if template.endswith(".yaml") else ():
            if doc and doc["kind"] == "Deployment":
                containers = doc["spec"]["template"]["spec"]["containers"]
                deployments[doc["metadata"]["name"]] = [c["name"] for c in containers]
    assert deployments == {
        "kubevc-serving-times-ten": ["tensorflow-serving"],
        "kubevc-serving-add-one": ["triton"],
        "kubevc-serving-scale": ["mlserver"],
    }

    x = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    with run_test_backend({"times-ten": tf_serving_stand_in()}) as tf_serving:
        addresses = {"times-ten": tf_serving.address, "add-one": triton.grpc_target, "scale": mlserver}
        cfg = fleet_gateway(fleet, addresses)
        assert {b.name: b.protocol for b in cfg.backends} == {
            "times-ten": "tfserving",
            "add-one": "v2",
            "scale": "v2",
        }
        with serve(cfg) as gw, httpx.Client(base_url=gw.url, timeout=60) as client:
            assert client.get("/readyz").json()["models"] == {
                "times-ten": True,
                "add-one": True,
                "scale": True,
            }
            # a SavedModel's signature has a batch dimension: [-1, 3]
            batch = x.reshape(1, 3)
            np.testing.assert_array_equal(infer_labelled(client, "times-ten", batch, "a")[0].ravel(), x * 10)
            np.testing.assert_array_equal(infer_labelled(client, "add-one", x, "b")[0].ravel(), x + 1)
            np.testing.assert_array_equal(infer_labelled(client, "scale", x, "c")[0].ravel(), x * 3)
