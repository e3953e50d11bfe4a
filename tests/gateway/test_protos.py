"""The committed generated code is current, and our messages are byte-compatible with the official
tensorflow-serving-api messages (run in the TF tool venv, a separate interpreter)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kubevc.gateway import _protogen
from kubevc.gateway._proto.tensorflow import types_pb2
from kubevc.gateway._proto.tensorflow_serving import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)
from kubevc.gateway._tensors import from_tensor_proto, to_tensor_proto
from kubevc.gateway._wire import encode_predict_request

REPO = Path(__file__).resolve().parents[2]


def test_generated_code_is_current(tmp_path: Path) -> None:
    fresh = tmp_path / "_proto"
    written = _protogen.generate(_protogen.DEFAULT_PROTOS, fresh)
    committed = sorted(
        p.relative_to(_protogen.DEFAULT_OUT)
        for p in _protogen.DEFAULT_OUT.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    assert committed == written, "gateway/_proto differs from protos/: run `make protos`"
    stale = [str(p) for p in written if _normalised(fresh / p) != _normalised(_protogen.DEFAULT_OUT / p)]
    assert not stale, f"stale generated files {stale}: run `make protos`"


_VERSION_STAMPS = [
    re.compile(r"^# Protobuf Python Version: .*$", re.M),
    re.compile(r"_runtime_version\.Domain\.PUBLIC,\s*\d+,\s*\d+,\s*\d+,"),
    re.compile(r"^GRPC_GENERATED_VERSION = .*$", re.M),
]


def _normalised(path: Path) -> str:
    """Generated text without the generator's version stamps: a newer grpcio-tools alone does not
    make the committed code stale, a changed .proto does."""
    text = path.read_text()
    for pattern in _VERSION_STAMPS:
        text = pattern.sub("<version>", text)
    return text


def test_generated_modules_keep_wire_names_but_live_under_kubevc() -> None:
    assert predict_pb2.PredictRequest.DESCRIPTOR.full_name == "tensorflow.serving.PredictRequest"
    assert predict_pb2.__name__ == "kubevc.gateway._proto.tensorflow_serving.predict_pb2"
    assert "tensorflow" not in sys.modules  # nothing imported a top-level tensorflow


def _tf_python() -> Path | None:
    path = Path(os.environ.get("KUBEVC_TF_PYTHON") or REPO / ".tools/tf/bin/python")
    return path if path.exists() else None


OFFICIAL = r'''
import sys, pathlib
from tensorflow_serving.apis import predict_pb2, get_model_status_pb2, get_model_metadata_pb2
from tensorflow.core.framework import tensor_pb2, types_pb2
from google.protobuf.unknown_fields import UnknownFieldSet
import numpy as np
d = pathlib.Path(sys.argv[1])

def unknown(msg):
    """Field numbers that the official message did not recognise, anywhere in the tree."""
    found = [f.field_number for f in UnknownFieldSet(msg)]
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        items = value.values() if fd.message_type.GetOptions().map_entry else (
            value if fd.is_repeated else [value])
        for item in items:
            if hasattr(item, "ListFields"):
                found += unknown(item)
    return found

kinds = {"predict_request": predict_pb2.PredictRequest, "predict_response": predict_pb2.PredictResponse,
         "status_request": get_model_status_pb2.GetModelStatusRequest,
         "status_response": get_model_status_pb2.GetModelStatusResponse,
         "metadata_request": get_model_metadata_pb2.GetModelMetadataRequest,
         "metadata_response": get_model_metadata_pb2.GetModelMetadataResponse}
for name, cls in kinds.items():
    ours = (d / f"ours_{name}.bin").read_bytes()
    msg = cls.FromString(ours)
    again = msg.SerializeToString(deterministic=True)
    assert again == ours, f"{name}: official re-serialisation differs ({len(again)} vs {len(ours)} bytes)"
    assert not unknown(msg), f"{name}: fields unknown to the official messages: {unknown(msg)}"
req = predict_pb2.PredictRequest.FromString((d / "ours_predict_request.bin").read_bytes())
t = req.inputs["images"]
assert t.dtype == types_pb2.DT_UINT8 and [x.size for x in t.tensor_shape.dim] == [1, 4, 5, 3]
arr = np.frombuffer(t.tensor_content, np.uint8).reshape(1, 4, 5, 3)
assert int(arr.sum()) == int(np.arange(60).sum()), "tensor bytes differ"
assert req.model_spec.version_label == "stable" and req.model_spec.signature_name == "serving_default"
# the other direction: official messages written for us to parse
r = predict_pb2.PredictRequest()
r.model_spec.name = "mobilenet"; r.model_spec.version.value = 7
r.model_spec.signature_name = "serving_default"
x = np.linspace(0, 1, 24, dtype=np.float32).reshape(2, 4, 3)
r.inputs["input"].dtype = types_pb2.DT_FLOAT
for s in x.shape: r.inputs["input"].tensor_shape.dim.add().size = s
r.inputs["input"].tensor_content = x.tobytes()
r.inputs["tokens"].dtype = types_pb2.DT_INT32
r.inputs["tokens"].tensor_shape.dim.add().size = 3
r.inputs["tokens"].int_val.extend([101, 2054, 102])
r.output_filter.append("output0")
(d / "official_predict_request.bin").write_bytes(r.SerializeToString(deterministic=True))
s = get_model_status_pb2.GetModelStatusResponse()
v = s.model_version_status.add(); v.version = 3; v.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
v.status.error_code = 0; v.status.error_message = ""
v = s.model_version_status.add(); v.version = 2; v.state = get_model_status_pb2.ModelVersionStatus.UNLOADING
v.status.error_code = 14; v.status.error_message = "unloading"
(d / "official_status_response.bin").write_bytes(s.SerializeToString(deterministic=True))
# metadata: the Any inside must unpack into the official SignatureDefMap with nothing unknown
meta = get_model_metadata_pb2.GetModelMetadataResponse.FromString(
    (d / "ours_metadata_response.bin").read_bytes())
sigs = get_model_metadata_pb2.SignatureDefMap()
assert meta.metadata["signature_def"].Unpack(sigs), meta.metadata["signature_def"].type_url
assert not unknown(sigs), f"SignatureDefMap fields unknown to the official messages: {unknown(sigs)}"
inp = sigs.signature_def["serving_default"].inputs["images"]
assert inp.name == "serving_default_images:0" and inp.dtype == types_pb2.DT_UINT8
assert [x.size for x in inp.tensor_shape.dim] == [-1, 640, 640, 3]
assert sigs.signature_def["serving_default"].method_name == "tensorflow/serving/predict"
req = get_model_metadata_pb2.GetModelMetadataRequest.FromString(
    (d / "ours_metadata_request.bin").read_bytes())
assert list(req.metadata_field) == ["signature_def"] and req.model_spec.version_label == "canary"
m = get_model_metadata_pb2.GetModelMetadataResponse()
m.model_spec.name = "bert"; m.model_spec.version.value = 2
sm = get_model_metadata_pb2.SignatureDefMap()
t = sm.signature_def["serving_default"].outputs["logits"]
t.name = "StatefulPartitionedCall:0"; t.dtype = types_pb2.DT_FLOAT
t.tensor_shape.dim.add().size = -1; t.tensor_shape.dim.add().size = 2
sm.signature_def["serving_default"].method_name = "tensorflow/serving/predict"
m.metadata["signature_def"].Pack(sm)
(d / "official_metadata_response.bin").write_bytes(m.SerializeToString(deterministic=True))
print("ok")
'''


def _ours(d: Path) -> None:
    # the request as the gateway sends it: encoded straight from the arrays
    spec = model_pb2.ModelSpec(name="yolov5", version_label="stable", signature_name="serving_default")
    inputs = {
        "images": np.arange(60, dtype=np.uint8).reshape(1, 4, 5, 3),
        "scale": np.array([0.5, 2.0], dtype=np.float32),
    }
    encoded = encode_predict_request(spec, inputs, ["output0", "extra"])
    req = predict_pb2.PredictRequest.FromString(encoded)
    resp = predict_pb2.PredictResponse()
    resp.model_spec.name = "yolov5"
    resp.model_spec.version.value = 3
    resp.outputs["output0"].CopyFrom(to_tensor_proto(np.ones((1, 7, 85), dtype=np.float32)))
    resp.outputs["names"].CopyFrom(to_tensor_proto(np.array([b"a", b"bc"], dtype=object)))
    sreq = get_model_status_pb2.GetModelStatusRequest()
    sreq.model_spec.name = "bert"
    sreq.model_spec.version.value = 1
    sresp = get_model_status_pb2.GetModelStatusResponse()
    st = sresp.model_version_status.add(version=1, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    st.status.error_message = "ok"
    st = sresp.model_version_status.add(version=2, state=get_model_status_pb2.ModelVersionStatus.LOADING)
    mreq = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    mreq.model_spec.name = "yolov5"
    mreq.model_spec.version_label = "canary"
    mresp = get_model_metadata_pb2.GetModelMetadataResponse()
    mresp.model_spec.name = "yolov5"
    mresp.model_spec.version.value = 2
    sigs = get_model_metadata_pb2.SignatureDefMap()
    sig = sigs.signature_def["serving_default"]
    sig.method_name = "tensorflow/serving/predict"
    info = sig.inputs["images"]
    info.name, info.dtype = "serving_default_images:0", types_pb2.DT_UINT8
    for size in (-1, 640, 640, 3):
        info.tensor_shape.dim.add(size=size)
    sig.outputs["output0"].name = "StatefulPartitionedCall:0"
    mresp.metadata["signature_def"].Pack(sigs)
    for name, msg in [
        ("predict_request", req),
        ("predict_response", resp),
        ("status_request", sreq),
        ("status_response", sresp),
        ("metadata_request", mreq),
        ("metadata_response", mresp),
    ]:
        (d / f"ours_{name}.bin").write_bytes(msg.SerializeToString(deterministic=True))
    (d / "ours_predict_request.bin").write_bytes(encoded)  # the encoder's own bytes, not a re-serialisation


@pytest.mark.slow
def test_wire_compatible_with_tensorflow_serving_api(tmp_path: Path) -> None:
    tf_python = _tf_python()
    if tf_python is None:
        pytest.skip(
            "TF tool venv absent (KUBEVC_TF_PYTHON / .tools/tf): `make tools` installs tensorflow-serving-api"
        )
    _ours(tmp_path)
    script = tmp_path / "official.py"
    script.write_text(OFFICIAL)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [str(tf_python), str(script), str(tmp_path)], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
    # reverse direction: the official bytes parse with our messages and re-serialise identically
    raw = (tmp_path / "official_predict_request.bin").read_bytes()
    req = predict_pb2.PredictRequest.FromString(raw)
    assert req.SerializeToString(deterministic=True) == raw
    assert req.model_spec.version.value == 7 and list(req.output_filter) == ["output0"]
    x = from_tensor_proto(req.inputs["input"])
    assert x.shape == (2, 4, 3) and np.allclose(x, np.linspace(0, 1, 24).reshape(2, 4, 3))
    assert from_tensor_proto(req.inputs["tokens"]).tolist() == [101, 2054, 102]
    raw = (tmp_path / "official_status_response.bin").read_bytes()
    status = get_model_status_pb2.GetModelStatusResponse.FromString(raw)
    assert status.SerializeToString(deterministic=True) == raw
    assert [(s.version, s.state, s.status.error_code) for s in status.model_version_status] == [
        (3, get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0),
        (2, get_model_status_pb2.ModelVersionStatus.UNLOADING, 14),
    ]
    raw = (tmp_path / "official_metadata_response.bin").read_bytes()
    meta = get_model_metadata_pb2.GetModelMetadataResponse.FromString(raw)
    assert meta.SerializeToString(deterministic=True) == raw
    sigs = get_model_metadata_pb2.SignatureDefMap()
    assert meta.metadata["signature_def"].Unpack(sigs) and meta.model_spec.version.value == 2
    logits = sigs.signature_def["serving_default"].outputs["logits"]
    assert logits.name == "StatefulPartitionedCall:0" and [d.size for d in logits.tensor_shape.dim] == [-1, 2]


OFFICIAL_V2 = r"""
import sys, pathlib
from google.protobuf.unknown_fields import UnknownFieldSet
from mlserver.grpc import dataplane_pb2 as pb
d = pathlib.Path(sys.argv[1])
for name, cls in {"infer_request": pb.ModelInferRequest, "infer_response": pb.ModelInferResponse,
                  "metadata_response": pb.ModelMetadataResponse}.items():
    ours = (d / f"ours_{name}.bin").read_bytes()
    msg = cls.FromString(ours)
    assert msg.SerializeToString(deterministic=True) == ours, name
    assert not list(UnknownFieldSet(msg)), name
req = pb.ModelInferRequest.FromString((d / "ours_infer_request.bin").read_bytes())
assert req.inputs[0].name == "input" and list(req.inputs[0].shape) == [1, 2]
assert req.raw_input_contents[0] == b"\1\2"
assert req.parameters["k"].int64_param == 7 and req.outputs[0].name == "output0"
r = pb.ModelInferResponse(model_name="m", model_version="2", id="x")
r.outputs.add(name="o", datatype="FP32", shape=[2]).contents.fp32_contents.extend([0.5, 1.5])
r.parameters["p"].string_param = "v"
(d / "official_infer_response.bin").write_bytes(r.SerializeToString(deterministic=True))
print("ok")
"""


@pytest.mark.slow
def test_v2_wire_compatible_with_mlserver_dataplane(tmp_path: Path) -> None:
    from kubevc.gateway._proto.inference import grpc_predict_v2_pb2 as v2pb

    mlserver = Path(os.environ.get("KUBEVC_MLSERVER") or REPO / ".tools/mlserver/bin/mlserver")
    python = mlserver.parent / "python"
    if not python.exists():
        pytest.fail(f"MLServer venv not found next to {mlserver}: run `make tools` (or set KUBEVC_MLSERVER)")
    req = v2pb.ModelInferRequest(model_name="tiny", model_version="1", id="r1")
    req.inputs.add(name="input", datatype="UINT8", shape=[1, 2])
    req.raw_input_contents.append(b"\1\2")
    req.parameters["k"].int64_param = 7
    req.outputs.add(name="output0").parameters["binary_data"].bool_param = True
    resp = v2pb.ModelInferResponse(model_name="tiny", model_version="1", id="r1")
    resp.outputs.add(name="output0", datatype="FP32", shape=[1, 3])
    resp.raw_output_contents.append(b"\0" * 12)
    meta = v2pb.ModelMetadataResponse(name="tiny", versions=["1"], platform="p")
    meta.inputs.add(name="input", datatype="FP32", shape=[-1, 224, 224, 3])
    for name, msg in [("infer_request", req), ("infer_response", resp), ("metadata_response", meta)]:
        (tmp_path / f"ours_{name}.bin").write_bytes(msg.SerializeToString(deterministic=True))
    script = tmp_path / "official_v2.py"
    script.write_text(OFFICIAL_V2)
    proc = subprocess.run(
        [str(python), str(script), str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
    raw = (tmp_path / "official_infer_response.bin").read_bytes()
    back = v2pb.ModelInferResponse.FromString(raw)
    assert back.SerializeToString(deterministic=True) == raw
    assert (
        list(back.outputs[0].contents.fp32_contents) == [0.5, 1.5]
        and back.parameters["p"].string_param == "v"
    )
