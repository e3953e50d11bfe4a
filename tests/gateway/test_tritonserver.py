"""The real ``tritonserver`` of ``nvidia-pytriton`` (its own venv) answers the gateway over v2 gRPC."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from kubevc.gateway import parse_config, serve
from kubevc.gateway._proto.inference import grpc_predict_v2_pb2 as v2pb
from kubevc.gateway._proto.inference import grpc_predict_v2_pb2_grpc as v2grpc
from kubevc.gateway.testing import TritonServer, run_tritonserver, triton_install, write_triton_add_model

from .conftest import http_client

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

CONFIG = """backend: "python"
max_batch_size: 0
input [ { name: "X" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "Y" data_type: TYPE_FP32 dims: [ -1 ] } ]
"""


@pytest.fixture(scope="module")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    python = os.environ.get("KUBEVC_TRITON_PYTHON") or str(REPO / ".tools/triton/bin/python")
    try:
        install = triton_install(python)
    except FileNotFoundError as missing:
        pytest.fail(f"{missing}: run `make tools` (or set KUBEVC_TRITON_PYTHON)")
    repository = tmp_path_factory.mktemp("triton-models")
    write_triton_add_model(repository / "add_one" / "1", addend=1, input_name="X", output_name="Y")
    (repository / "add_one" / "config.pbtxt").write_text(CONFIG)
    with run_tritonserver(repository, install=install) as server:
        yield server


def test_python_backend_model_answers_over_v2_grpc(triton: TritonServer) -> None:
    values = np.array([1.5, -2.0, 3.25], dtype=np.float32)
    request = v2pb.ModelInferRequest(model_name="add_one")
    tensor = request.inputs.add(name="X", datatype="FP32", shape=[3])
    request.raw_input_contents.append(values.tobytes())
    assert tensor.name == "X"
    with grpc.insecure_channel(triton.grpc_target) as channel:
        stub = v2grpc.GRPCInferenceServiceStub(channel)
        metadata = stub.ModelMetadata(v2pb.ModelMetadataRequest(name="add_one"), timeout=30)
        answer = stub.ModelInfer(request, timeout=30)
    assert [i.name for i in metadata.inputs] == ["X"]
    assert metadata.inputs[0].datatype == "FP32"
    got = np.frombuffer(answer.raw_output_contents[0], dtype=np.float32)
    np.testing.assert_array_equal(got, values + 1)


def test_a_canary_version_triton_has_not_loaded_falls_back_to_stable(triton: TritonServer) -> None:
    """The repository has version 1 only; real Triton answers a request for version 2 with
    NOT_FOUND ("... version 2 is not found"): the gateway sends the request again to the stable
    version, answers 200, and says which version answered."""
    doc = {
        "server": {"logLevel": "warning"},
        "backends": [{"name": "triton", "protocol": "v2", "address": triton.grpc_target}],
        "models": [
            {
                "name": "add",
                "backend": "triton",
                "backendModel": "add_one",
                "input": {"kind": "tensor", "name": "X", "dtype": "float32"},
                "output": {"name": None, "postprocess": "none"},
                "canary": {"percent": 100, "versions": {"stable": 1, "canary": 2}},
            }
        ],
    }
    values = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    headers = {"content-type": "application/octet-stream", "x-tensor-dtype": "float32", "x-tensor-shape": "3"}
    with serve(parse_config(doc, env={})) as gw, http_client(gw.url) as client:
        for _ in range(2):  # the first finds version 2 missing, the second skips it
            r = client.post("/v1/models/add/infer", content=values.tobytes(), headers=headers)
            assert r.status_code == 200, r.text
            assert r.headers["x-kubevc-model-version-label"] == "stable"
            assert r.headers["x-kubevc-model-version"] == "1"
            assert r.json()["outputs"]["Y"]["data"] == (values + 1).tolist()
        explicit = client.post("/v1/models/add/versions/2:predict", json={"instances": values.tolist()})
    assert explicit.status_code == 404, explicit.text
    assert "version 2" in explicit.json()["error"]


def test_missing_install_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBEVC_TRITON_PYTHON", raising=False)
    with pytest.raises(FileNotFoundError, match="KUBEVC_TRITON_PYTHON"):
        triton_install()
