"""Triton and MLServer, each loading what ``model publish`` wrote, answer through the gateway.

Real parts: the region spec of a fleet with a Triton (Python backend) and an MLServer model; the
store folder that :func:`kubevc.generator.models.publish_model` writes (as the NFS/iSCSI PV
presents it to the pods); the real ``tritonserver`` (``.tools/triton``, started with the flags the
serving chart gives its Triton Deployment: explicit model control, only its model loaded) and the
real MLServer (``.tools/mlserver``, started on the model's folder as the chart mounts it, ports
from the same environment variables); the gateway (``kubevc.gateway.serve``) started from the
``gateway.yaml`` the gateway chart renders with the values ``render`` produced for the region, only
each backend's Service address pointed at the local server.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import helm_python
import httpx
import numpy as np
import pytest
import yaml

from kubevc.gateway import parse_config, serve
from kubevc.gateway._proto.inference import grpc_predict_v2_pb2 as v2pb
from kubevc.gateway._proto.inference import grpc_predict_v2_pb2_grpc as v2grpc
from kubevc.gateway.testing import TritonServer, free_port, run_tritonserver, triton_install
from kubevc.generator.models import LocalStore, publish_model
from kubevc.generator.render import chart_region_values
from kubevc.generator.repo import load_profiles
from kubevc.generator.spec import FleetConfig, RegionSpec

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

# Triton Python backend: output0 = input + 1.
ADD_ONE = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        answers = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "input").as_numpy()
            out = pb_utils.Tensor("output0", (x + 1).astype(np.float32))
            answers.append(pb_utils.InferenceResponse([out]))
        return answers
"""

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


def infer(gateway_url: str, model: str, values: np.ndarray) -> np.ndarray:
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        answer = client.post(
            f"/v1/models/{model}/infer",
            content=values.tobytes(),
            headers={
                "content-type": "application/octet-stream",
                "x-tensor-dtype": "float32",
                "x-tensor-shape": ",".join(str(d) for d in values.shape),
            },
        )
    assert answer.status_code == 200, answer.text
    return np.asarray(answer.json()["outputs"]["output0"]["data"], dtype=np.float32)


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
    src = work / "add-one-src"
    src.mkdir()
    (src / "model.py").write_text(ADD_ONE)
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


@pytest.fixture(scope="module")
def mlserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = _mlserver()
    work = tmp_path_factory.mktemp("mlserver")
    store = work / "store"
    store.mkdir()
    (scale,) = [m for m in region().models if m.name == "scale"]
    for version, factor in ((1, 2.0), (2, 3.0)):
        src = work / f"scale-v{version}"
        src.mkdir()
        (src / "model-settings.json").write_text(json.dumps({"implementation": "scale_runtime.Scale"}))
        (src / "scale.json").write_text(json.dumps({"scale": factor}))
        publish_model(LocalStore(store), model=scale, folder="scale", version=version, src=src)
    code = work / "image-code"  # the runtime's code, which the serving image would carry
    code.mkdir()
    (code / "scale_runtime.py").write_text(SCALE_RUNTIME)
    # the chart mounts each model folder at /mnt/models/<name> and runs `mlserver start /mnt/models`
    mnt = work / "mnt-models"
    mnt.mkdir()
    (mnt / "scale").symlink_to(store / "scale", target_is_directory=True)
    grpc_port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "MLSERVER_HOST": "127.0.0.1",
        "MLSERVER_HTTP_PORT": str(free_port()),
        "MLSERVER_GRPC_PORT": str(grpc_port),
        "MLSERVER_METRICS_PORT": str(free_port()),
        "MLSERVER_LOAD_MODELS_AT_STARTUP": "true",
        "MLSERVER_PARALLEL_WORKERS": "0",
    }
    log_path = work / "mlserver.log"
    address = f"127.0.0.1:{grpc_port}"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(exe), "start", str(mnt)], cwd=work, stdout=log, stderr=subprocess.STDOUT, env=env
        )
        try:
            deadline = time.monotonic() + 300
            with grpc.insecure_channel(address) as channel:
                stub = v2grpc.GRPCInferenceServiceStub(channel)
                while True:
                    if proc.poll() is not None:
                        pytest.fail(f"MLServer exited: {log_path.read_text()[-3000:]}")
                    try:
                        if stub.ModelReady(v2pb.ModelReadyRequest(name="scale"), timeout=1).ready:
                            break
                    except grpc.RpcError:
                        pass
                    if time.monotonic() > deadline:
                        pytest.fail(f"MLServer not ready: {log_path.read_text()[-3000:]}")
                    time.sleep(0.3)
            yield address
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_mlserver_loads_the_published_settings_and_answers_through_the_gateway(mlserver: str) -> None:
    cfg = gateway_for("scale", mlserver)
    values = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    with serve(cfg) as gw:
        # model-settings.json serves the newest published version: version 2 scales by 3
        # (MLServer's NumPy codec answers a 1-D tensor as [N, 1])
        np.testing.assert_array_equal(infer(gw.url, "scale", values).ravel(), values * 3)
