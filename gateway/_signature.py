"""A model's signature as its backend declares it: input and output names, dtypes and shapes.

Read from TF Serving's ``GetModelMetadata`` (a ``SignatureDef``: inputs by alias, ``DataType``
enums, ``TensorShapeProto``) or from the Open Inference Protocol's ``ModelMetadata`` (datatype
names, shapes with -1). Dtypes are numpy dtype names, and ``"string"`` for ``DT_STRING`` /
``BYTES``; shapes include the batch dimension, -1 where a size is free, None when even the rank is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubevc.gateway._proto.inference import grpc_predict_v2_pb2 as v2pb
from kubevc.gateway._proto.tensorflow import meta_graph_pb2, types_pb2

__all__ = [
    "STRING",
    "Signature",
    "TensorSpec",
    "from_signature_def",
    "from_v2_metadata",
    "tf_dtype_enum",
    "v2_datatype_name",
]

STRING = "string"

_TF_DTYPES: dict[types_pb2.DataType, str] = {
    types_pb2.DT_FLOAT: "float32",
    types_pb2.DT_DOUBLE: "float64",
    types_pb2.DT_HALF: "float16",
    types_pb2.DT_INT8: "int8",
    types_pb2.DT_INT16: "int16",
    types_pb2.DT_INT32: "int32",
    types_pb2.DT_INT64: "int64",
    types_pb2.DT_UINT8: "uint8",
    types_pb2.DT_UINT16: "uint16",
    types_pb2.DT_UINT32: "uint32",
    types_pb2.DT_UINT64: "uint64",
    types_pb2.DT_BOOL: "bool",
    types_pb2.DT_STRING: STRING,
}
_TF_ENUMS = {v: k for k, v in _TF_DTYPES.items()}
_V2_DTYPES: dict[str, str] = {
    "FP32": "float32",
    "FP64": "float64",
    "FP16": "float16",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "BOOL": "bool",
    "BYTES": STRING,
}
_V2_NAMES = {v: k for k, v in _V2_DTYPES.items()}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: the name clients use, its dtype, its shape (batch dimension first)."""

    name: str
    dtype: str  # numpy dtype name, "string", or the backend's own name when it has no numpy twin
    shape: tuple[int, ...] | None

    def describe_shape(self) -> str:
        return "unknown rank" if self.shape is None else f"[{', '.join(map(str, self.shape))}]"

    def to_v2(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "datatype": v2_datatype_name(self.dtype),
            "shape": list(self.shape or (-1,)),
        }


@dataclass(frozen=True)
class Signature:
    """What the backend says a model takes and returns."""

    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    source: str  # where it was read: "GetModelMetadata serving_default", "ModelMetadata"
    versions: tuple[str, ...] = ()
    platform: str = ""

    def to_v2(self, name: str, first: list[str] | None = None) -> dict[str, Any]:
        """The Open Inference Protocol's model metadata document under ``name``; the outputs named
        in ``first`` lead, in that order (TF Serving's signature maps have no order of their own)."""
        lead = [n for n in first or [] if n in self.outputs]
        outputs = [*lead, *(n for n in self.outputs if n not in lead)]
        return {
            "name": name,
            "versions": list(self.versions),
            "platform": self.platform,
            "inputs": [s.to_v2() for s in self.inputs.values()],
            "outputs": [self.outputs[n].to_v2() for n in outputs],
        }


def tf_dtype_enum(dtype: str) -> types_pb2.DataType:
    """A dtype name -> TF ``DataType`` (DT_INVALID when it has none)."""
    return _TF_ENUMS.get(dtype, types_pb2.DT_INVALID)


def v2_datatype_name(dtype: str) -> str:
    return _V2_NAMES.get(dtype, dtype.upper())


def _tf_spec(key: str, info: meta_graph_pb2.TensorInfo) -> TensorSpec:
    dtype = _TF_DTYPES.get(info.dtype, types_pb2.DataType.Name(info.dtype) if info.dtype else "invalid")
    shape = info.tensor_shape
    dims = None if shape.unknown_rank else tuple(int(d.size) for d in shape.dim)
    return TensorSpec(key, dtype, dims)


def from_signature_def(
    sig: meta_graph_pb2.SignatureDef, source: str, *, version: int | None = None
) -> Signature:
    """A TF Serving SignatureDef: inputs and outputs by their keys (the aliases clients send), in
    the order the server lists them."""
    return Signature(
        {k: _tf_spec(k, v) for k, v in sig.inputs.items()},
        {k: _tf_spec(k, v) for k, v in sig.outputs.items()},
        source,
        (str(version),) if version else (),
        "tensorflow_serving",
    )


def from_v2_metadata(md: v2pb.ModelMetadataResponse) -> Signature | None:
    """An Open Inference Protocol ModelMetadata answer; None when it declares no inputs (MLServer
    answers so for a model whose settings list none: nothing is known, nothing can contradict)."""
    if not md.inputs:
        return None

    def spec(t: v2pb.ModelMetadataResponse.TensorMetadata) -> TensorSpec:
        return TensorSpec(
            t.name, _V2_DTYPES.get(t.datatype.upper(), t.datatype), tuple(int(d) for d in t.shape)
        )

    return Signature(
        {t.name: spec(t) for t in md.inputs},
        {t.name: spec(t) for t in md.outputs},
        "ModelMetadata",
        tuple(md.versions),
        md.platform,
    )
