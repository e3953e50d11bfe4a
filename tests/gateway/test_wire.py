"""The zero-copy response readers agree with the generated messages and keep tensors as views."""

from __future__ import annotations

import numpy as np
import pytest

from kubevc.gateway._proto.inference import grpc_predict_v2_pb2 as v2pb
from kubevc.gateway._proto.tensorflow import tensor_pb2, types_pb2
from kubevc.gateway._proto.tensorflow_serving import predict_pb2
from kubevc.gateway._tensors import from_tensor_proto, from_v2_output, to_tensor_proto
from kubevc.gateway._wire import (
    WireError,
    read_model_infer_response,
    read_predict_response,
    split_field,
)


def _response() -> tuple[bytes, dict[str, np.ndarray]]:
    arrays = {
        "output0": np.random.default_rng(0).random((1, 300, 85), dtype=np.float32),
        "num_detections": np.array([3.0], np.float32),
        "ids": np.arange(7, dtype=np.int64).reshape(7, 1),
    }
    resp = predict_pb2.PredictResponse()
    for name, arr in arrays.items():
        to_tensor_proto(arr, resp.outputs[name])
    resp.outputs["names"].CopyFrom(to_tensor_proto(np.array([b"a", b"bc"], dtype=object)))
    scalar = resp.outputs["scalar"]  # TF's repeated-field form, no tensor_content
    scalar.dtype = types_pb2.DT_FLOAT
    scalar.float_val.extend([1.5, 2.5])
    scalar.tensor_shape.dim.add().size = 2
    resp.model_spec.name = "yolov5"
    resp.model_spec.version.value = 4
    return resp.SerializeToString(deterministic=True), arrays


def test_predict_response_matches_the_generated_parser_without_copies() -> None:
    data, arrays = _response()
    outputs, spec = read_predict_response(data)
    assert spec.name == "yolov5" and spec.version.value == 4
    parsed = predict_pb2.PredictResponse.FromString(data)
    assert sorted(outputs) == sorted(parsed.outputs)
    for name, (proto, content) in outputs.items():
        ours = from_tensor_proto(proto, content)
        theirs = from_tensor_proto(parsed.outputs[name])
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert ours.tolist() == theirs.tolist(), name
    big = from_tensor_proto(*outputs["output0"])
    assert np.array_equal(big, arrays["output0"])
    # the array is a view of the received buffer, not a copy of it
    assert np.shares_memory(big, np.frombuffer(data, np.uint8))
    assert from_tensor_proto(*outputs["scalar"]).tolist() == [1.5, 2.5]


def test_unwanted_outputs_are_skipped() -> None:
    data, _ = _response()
    outputs, _ = read_predict_response(data, {"num_detections", "missing"})
    assert list(outputs) == ["num_detections"]


def test_split_field_keeps_the_rest_parseable_and_last_occurrence_wins() -> None:
    t = tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, tensor_content=b"\x01\x02")
    t.tensor_shape.dim.add().size = 2
    data = t.SerializeToString() + tensor_pb2.TensorProto(tensor_content=b"\x07\x08").SerializeToString()
    rest, taken = split_field(memoryview(data), 4)
    assert [bytes(v) for v in taken] == [b"\x01\x02", b"\x07\x08"]
    back = tensor_pb2.TensorProto.FromString(rest)
    assert back.dtype == types_pb2.DT_UINT8 and not back.tensor_content
    resp = predict_pb2.PredictResponse()
    resp.outputs["x"].ParseFromString(data)
    outputs, _ = read_predict_response(resp.SerializeToString())
    assert from_tensor_proto(*outputs["x"]).tolist() == [7, 8]  # proto3: the last bytes field wins


def test_broken_messages_are_errors() -> None:
    data, _ = _response()
    with pytest.raises(WireError):
        read_predict_response(data[: len(data) // 2])
    with pytest.raises(WireError):
        read_predict_response(b"\x0f\x00")  # wire type 7 does not exist
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=b"\x00" * 12)
    proto.tensor_shape.dim.add().size = 2
    with pytest.raises(ValueError, match="12 bytes for shape"):
        from_tensor_proto(proto)


def test_model_infer_response_raw_contents_are_views() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    resp = v2pb.ModelInferResponse(model_name="m", model_version="2", id="r")
    resp.outputs.add(name="a", datatype="FP32", shape=[3, 4])
    resp.raw_output_contents.append(x.tobytes())
    resp.outputs.add(name="s", datatype="BYTES", shape=[2])
    resp.raw_output_contents.append(b"\x01\x00\x00\x00a\x02\x00\x00\x00bc")
    data = resp.SerializeToString()
    meta, raw = read_model_infer_response(data)
    assert meta.model_version == "2" and [o.name for o in meta.outputs] == ["a", "s"]
    a = from_v2_output(meta.outputs[0], raw[0])
    assert np.array_equal(a, x) and np.shares_memory(a, np.frombuffer(data, np.uint8))
    assert from_v2_output(meta.outputs[1], raw[1]).tolist() == [b"a", b"bc"]


@pytest.mark.parametrize("label", [None, "canary"])
def test_encoded_request_is_the_generated_message_byte_for_byte(label: str | None) -> None:
    from kubevc.gateway._proto.tensorflow_serving import model_pb2
    from kubevc.gateway._wire import encode_predict_request

    inputs = {
        "images": np.arange(60, dtype=np.uint8).reshape(1, 4, 5, 3),
        "scale": np.array([0.5, 2.0], dtype=">f4"),  # big-endian in, little-endian on the wire
        "names": np.array([b"a", b"bc"], dtype=object),
        "flag": np.array(True),
        "empty": np.zeros((0, 3), np.float32),
        "strided": np.arange(12, dtype=np.int32).reshape(3, 4)[:, ::2],
    }
    spec = model_pb2.ModelSpec(name="yolov5", signature_name="serving_default")
    if label:
        spec.version_label = label
    else:
        spec.version.value = 3
    ours = encode_predict_request(spec, inputs, ["output0", "extra"])
    ref = predict_pb2.PredictRequest(model_spec=spec, output_filter=["output0", "extra"])
    for name, arr in inputs.items():
        to_tensor_proto(arr, ref.inputs[name])
    assert ours == ref.SerializeToString(deterministic=True)
    back = predict_pb2.PredictRequest.FromString(ours)
    assert from_tensor_proto(back.inputs["strided"]).tolist() == [[0, 2], [4, 6], [8, 10]]
    assert from_tensor_proto(back.inputs["scale"]).tolist() == [0.5, 2.0]


def test_encoded_response_is_the_generated_message_byte_for_byte() -> None:
    from kubevc.gateway._proto.tensorflow_serving import model_pb2
    from kubevc.gateway._wire import encode_predict_response

    outputs = {
        "output0": np.random.default_rng(2).random((2, 7, 85), dtype=np.float32),
        "num_detections": np.array([3.0, 0.0], np.float32),
        "names": np.array([b"a", b"bc"], dtype=object),
    }
    spec = model_pb2.ModelSpec(name="yolov5", signature_name="serving_default")
    spec.version.value = 2
    ours = encode_predict_response(spec, outputs)
    ref = predict_pb2.PredictResponse(model_spec=spec)
    for name, arr in outputs.items():
        to_tensor_proto(arr, ref.outputs[name])
    assert ours == ref.SerializeToString(deterministic=True)
    read, answered = read_predict_response(ours)
    assert answered == spec and np.array_equal(from_tensor_proto(*read["output0"]), outputs["output0"])


def test_encoded_model_infer_request_is_the_generated_message_byte_for_byte() -> None:
    from kubevc.gateway._tensors import pack_bytes
    from kubevc.gateway._wire import encode_model_infer_request

    contents = [
        np.arange(60, dtype=np.uint8).reshape(1, 3, 4, 5),
        np.array([0.5, 2.0], dtype="<f4"),
        np.frombuffer(pack_bytes(np.array([b"a", b"bc"], dtype=object)), np.uint8),
        np.zeros((0, 3), np.float32),
        np.array(7, dtype=np.int64),
    ]
    request = v2pb.ModelInferRequest(model_name="yolov5", model_version="2", id="42")
    request.parameters["priority"].int64_param = 1
    for i, arr in enumerate(contents):
        request.inputs.add(name=f"in{i}", datatype="UINT8", shape=list(arr.shape))
    request.outputs.add(name="output0")
    ours = encode_model_infer_request(request, contents)
    ref = v2pb.ModelInferRequest()
    ref.CopyFrom(request)
    ref.raw_input_contents.extend(arr.tobytes() for arr in contents)
    assert ours == ref.SerializeToString(deterministic=True)
    assert list(v2pb.ModelInferRequest.FromString(ours).raw_input_contents) == [a.tobytes() for a in contents]
