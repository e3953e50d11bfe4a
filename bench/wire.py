"""The bodies each path puts on the wire, built with the gateway's own generated protobuf messages.

(a) TF Serving REST JSON ``{"instances": ...}`` via stdlib json, as a user sends it
(b) gRPC PredictRequest with repeated ``float_val`` / ``int_val``
(c) gRPC PredictRequest with ``tensor_content`` (the gateway's own ``to_tensor_proto``)
(d) the same with a uint8 tensor (the model normalises)
(e) the encoded media itself (JPEG q90 / UTF-8 text), decoded at the gateway
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from kubevc.gateway._proto.tensorflow import tensor_pb2, types_pb2
from kubevc.gateway._proto.tensorflow_serving import predict_pb2
from kubevc.gateway._tensors import from_tensor_proto, to_tensor_proto

Array = npt.NDArray[Any]


_DT = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.uint8): types_pb2.DT_UINT8,
}


def rest_json_request(inputs: Mapping[str, Array] | Array, indent: int | None = None) -> bytes:
    """TF Serving REST ``instances`` (row format) exactly as ``json.dumps(x.tolist())`` gives it."""
    if isinstance(inputs, np.ndarray):
        body: dict[str, Any] = {"instances": inputs.tolist()}
    else:
        names = list(inputs)
        batch = len(inputs[names[0]])
        body = {"instances": [{n: inputs[n][i].tolist() for n in names} for i in range(batch)]}
    return json.dumps(body, indent=indent).encode()


def rest_json_response(outputs: Mapping[str, Array] | Array, indent: int | None = None) -> bytes:
    """TF Serving REST ``predictions`` (row format): the list of one output tensor, or for several
    outputs one object per batch item naming each output (as TF Serving answers detectors)."""
    if isinstance(outputs, np.ndarray):
        return json.dumps({"predictions": outputs.tolist()}, indent=indent).encode()
    names = list(outputs)
    batch = len(outputs[names[0]])
    rows = [{n: outputs[n][i].tolist() for n in names} for i in range(batch)]
    return json.dumps({"predictions": rows}, indent=indent).encode()


def _shape(proto: tensor_pb2.TensorProto, arr: Array) -> None:
    for d in arr.shape:
        proto.tensor_shape.dim.add().size = int(d)


def repeated_tensor(arr: Array) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto()
    proto.dtype = _DT[arr.dtype]
    _shape(proto, arr)
    if arr.dtype == np.float32:
        proto.float_val.extend(arr.ravel().tolist())
    else:
        proto.int_val.extend(arr.ravel().tolist())
    return proto


def content_tensor(arr: Array) -> tensor_pb2.TensorProto:
    """The gateway's own conversion: ``tensor_content``, one copy."""
    return to_tensor_proto(arr)


def predict_request(
    model: str, inputs: Mapping[str, Array], repeated: bool = False, signature: str = "serving_default"
) -> predict_pb2.PredictRequest:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = model
    req.model_spec.signature_name = signature
    for name, arr in inputs.items():
        req.inputs[name].CopyFrom(repeated_tensor(arr) if repeated else content_tensor(arr))
    return req


def predict_response(
    model: str, outputs: Mapping[str, Array], repeated: bool = False
) -> predict_pb2.PredictResponse:
    resp = predict_pb2.PredictResponse()
    resp.model_spec.name = model
    for name, arr in outputs.items():
        resp.outputs[name].CopyFrom(repeated_tensor(arr) if repeated else content_tensor(arr))
    return resp


def parse_tensor(proto: tensor_pb2.TensorProto) -> Array:
    """The gateway's own conversion back (a view of ``tensor_content``)."""
    out: Array = from_tensor_proto(proto)
    return out
