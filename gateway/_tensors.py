"""numpy arrays <-> TF ``TensorProto`` and Open Inference Protocol v2 tensors.

Numeric tensors always travel as ``tensor_content`` / ``raw_*_contents``: the array's row-major
little-endian bytes, one copy, never repeated ``float_val``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from kubevc.gateway._errors import BadRequest
from kubevc.gateway._proto.inference import grpc_predict_v2_pb2 as v2pb
from kubevc.gateway._proto.tensorflow import tensor_pb2, types_pb2

__all__ = [
    "from_tensor_proto",
    "from_v2_output",
    "numpy_to_v2_datatype",
    "pack_bytes",
    "tensor_header",
    "to_tensor_proto",
    "unpack_bytes",
    "v2_datatype_to_numpy",
]

Array = npt.NDArray[Any]

_TF: dict[np.dtype[Any], int] = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float64): types_pb2.DT_DOUBLE,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.uint8): types_pb2.DT_UINT8,
    np.dtype(np.int16): types_pb2.DT_INT16,
    np.dtype(np.int8): types_pb2.DT_INT8,
    np.dtype(np.int64): types_pb2.DT_INT64,
    np.dtype(np.bool_): types_pb2.DT_BOOL,
    np.dtype(np.uint16): types_pb2.DT_UINT16,
    np.dtype(np.float16): types_pb2.DT_HALF,
    np.dtype(np.uint32): types_pb2.DT_UINT32,
    np.dtype(np.uint64): types_pb2.DT_UINT64,
}
_TF_BACK = {v: k for k, v in _TF.items()}
# Which repeated field carries values when tensor_content is empty.
_TF_VAL_FIELD = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
}

_V2: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
_V2_BACK = {v: k for k, v in _V2.items()}
_V2_CONTENTS = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def _little_endian(array: Array) -> Array:
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return np.ascontiguousarray(array)


def to_tensor_proto(array: Array, proto: tensor_pb2.TensorProto | None = None) -> tensor_pb2.TensorProto:
    """A numeric array as a TensorProto with ``tensor_content``; str/bytes arrays as DT_STRING.

    With ``proto`` (e.g. ``request.inputs[name]``) the tensor is written in place, saving the copy
    that ``CopyFrom`` would make of a multi-megabyte ``tensor_content``."""
    if proto is None:
        proto = tensor_pb2.TensorProto()
    for size in array.shape:
        proto.tensor_shape.dim.add().size = int(size)
    if array.dtype.kind in "SUO":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(
            v if isinstance(v, bytes) else str(v).encode() for v in array.reshape(-1).tolist()
        )
        return proto
    array = _little_endian(array)
    dt = _TF.get(array.dtype.newbyteorder("="))
    if dt is None:
        raise BadRequest(f"dtype {array.dtype} cannot be sent to TF Serving")
    proto.dtype = dt  # type: ignore[assignment]
    proto.tensor_content = array.tobytes()
    return proto


def tensor_header(array: Array) -> tuple[bytes, Array]:
    """A numeric array's serialized TensorProto without ``tensor_content`` (dtype and shape), and
    the little-endian C-contiguous array whose bytes the content is."""
    shape = array.shape  # before ascontiguousarray, which makes 0-d arrays 1-d
    array = _little_endian(array)
    dt = _TF.get(array.dtype.newbyteorder("="))
    if dt is None:
        raise BadRequest(f"dtype {array.dtype} cannot be sent to TF Serving")
    proto = tensor_pb2.TensorProto(dtype=dt)  # type: ignore[arg-type]
    for size in shape:
        proto.tensor_shape.dim.add().size = int(size)
    return proto.SerializeToString(deterministic=True), array


def from_tensor_proto(proto: tensor_pb2.TensorProto, content: bytes | memoryview | None = None) -> Array:
    """A TensorProto as a numpy array.

    ``content`` is the tensor's ``tensor_content`` when the caller already holds it (a view of the
    received buffer, see ``kubevc.gateway._wire``): the array then wraps it without a copy. Without
    it ``proto.tensor_content`` is read once (the generated message copies on every access)."""
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    if proto.dtype == types_pb2.DT_STRING:
        values = list(proto.string_val)
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr.reshape(shape) if values else np.empty(shape, dtype=object)
    dtype = _TF_BACK.get(proto.dtype)
    if dtype is None:
        raise ValueError(f"unsupported TensorProto dtype {proto.dtype}")
    count = int(np.prod(shape)) if shape else 1
    if content is None:
        content = proto.tensor_content
    if len(content):
        if len(content) != count * dtype.itemsize:
            raise ValueError(f"tensor_content has {len(content)} bytes for shape {list(shape)} {dtype}")
        return np.frombuffer(content, dtype=dtype.newbyteorder("<")).reshape(shape)
    values = getattr(proto, _TF_VAL_FIELD[proto.dtype])
    if proto.dtype == types_pb2.DT_HALF:
        flat = np.asarray(values, dtype=np.uint16).view(np.float16)
    else:
        flat = np.asarray(values, dtype=dtype)
    if flat.size == count:
        return flat.reshape(shape)
    if flat.size == 1:  # TF's shorthand: one value repeated for the whole shape
        return np.full(shape, flat[0], dtype=dtype)
    if flat.size == 0:
        return np.zeros(shape, dtype=dtype)
    raise ValueError(f"TensorProto has {flat.size} values for shape {list(shape)}")


def numpy_to_v2_datatype(dtype: np.dtype[Any]) -> str:
    if dtype.kind in "SUO":
        return "BYTES"
    try:
        return _V2_BACK[dtype.newbyteorder("=")]
    except KeyError:
        raise BadRequest(f"dtype {dtype} has no Open Inference Protocol datatype") from None


def v2_datatype_to_numpy(datatype: str) -> np.dtype[Any]:
    try:
        return _V2[datatype.upper()]
    except KeyError:
        raise BadRequest(f"datatype {datatype!r} is not supported") from None


def from_v2_output(
    output: v2pb.ModelInferResponse.InferOutputTensor, raw: bytes | memoryview | None
) -> Array:
    """One v2 output tensor as numpy, from its raw bytes or its typed contents."""
    shape = tuple(int(s) for s in output.shape)
    if output.datatype == "BYTES":
        if raw is not None:
            return unpack_bytes(raw, int(np.prod(shape)) if shape else 1).reshape(shape)
        arr = np.empty(len(output.contents.bytes_contents), dtype=object)
        arr[:] = list(output.contents.bytes_contents)
        return arr.reshape(shape)
    dtype = v2_datatype_to_numpy(output.datatype)
    if raw is not None:
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(shape)
    values = getattr(output.contents, _V2_CONTENTS[output.datatype])
    return np.asarray(values, dtype=dtype).reshape(shape)


def unpack_bytes(raw: bytes | memoryview, count: int | None = None) -> Array:
    """A BYTES tensor in raw form (each element a 4-byte little-endian length, then its bytes, as
    in the Open Inference Protocol binary extension) -> a flat object array of ``bytes``.

    ``ValueError`` when an element runs past the end, or (with ``count``) the element count differs."""
    items: list[bytes] = []
    pos, end = 0, len(raw)
    while pos < end:
        if pos + 4 > end:
            raise ValueError(f"BYTES element {len(items)}: truncated 4-byte length prefix")
        n = int.from_bytes(raw[pos : pos + 4], "little")
        if pos + 4 + n > end:
            raise ValueError(f"BYTES element {len(items)}: length {n} runs past the end of the data")
        items.append(bytes(raw[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    if count is not None and len(items) != count:
        raise ValueError(f"{len(items)} BYTES elements for a tensor of {count}")
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    return arr


def pack_bytes(array: Array) -> bytes:
    """The raw (length-prefixed) form of a BYTES tensor."""
    out = bytearray()
    for v in array.reshape(-1).tolist():
        b = v if isinstance(v, bytes) else str(v).encode()
        out += len(b).to_bytes(4, "little") + b
    return bytes(out)
