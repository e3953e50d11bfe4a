"""Zero-copy reading of the large response messages (``PredictResponse``, ``ModelInferResponse``).

Requests go the other way with the same idea: ``encode_predict_request`` and
``encode_model_infer_request`` write the input arrays' bytes straight into the one serialized
request (one copy), where the generated message would take three (``tobytes``, the assignment to
``tensor_content`` / ``raw_input_contents``, ``SerializeToString``).

The generated (upb) messages copy every ``bytes`` field twice on the way to numpy: once when the
message is parsed and again on each attribute access of ``tensor_content``. For an 8.5 MB YOLO
output that is most of the gateway's post-gRPC work. Here the serialized response is walked at the
protobuf wire level: the large byte fields (``tensor_content``, ``raw_output_contents``) become
``memoryview`` slices of the received buffer, which ``np.frombuffer`` wraps without copying; every
other field is handed, still serialized, to the generated message class (small messages, cheap to
parse). Outputs that are not wanted are skipped without being parsed at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from kubevc.gateway._errors import WireError
from kubevc.gateway._proto.inference import grpc_predict_v2_pb2 as v2pb
from kubevc.gateway._proto.tensorflow import tensor_pb2
from kubevc.gateway._proto.tensorflow_serving import model_pb2
from kubevc.gateway._tensors import tensor_header, to_tensor_proto

__all__ = [
    "WireError",
    "encode_model_infer_request",
    "encode_predict_request",
    "encode_predict_response",
    "iter_fields",
    "read_model_infer_response",
    "read_predict_response",
    "split_field",
]

Array = npt.NDArray[Any]
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    end = len(buf)
    while True:
        if pos >= end or shift > 63:
            raise WireError("truncated or overlong varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def iter_fields(buf: memoryview) -> Iterator[tuple[int, int, int, int, int]]:
    """``(field number, wire type, start of the field's tag, start of its value, end)`` per field.

    For length-delimited fields the value span excludes the length prefix."""
    pos, end = 0, len(buf)
    while pos < end:
        start = pos
        key, pos = _varint(buf, pos)
        number, wtype = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wtype == _VARINT:
            _, vend = _varint(buf, pos)
            vstart = pos
        elif wtype == _LEN:
            size, vstart = _varint(buf, pos)
            vend = vstart + size
        elif wtype == _I64:
            vstart, vend = pos, pos + 8
        elif wtype == _I32:
            vstart, vend = pos, pos + 4
        else:
            raise WireError(f"unsupported wire type {wtype}")
        if vend > end:
            raise WireError("field runs past the end of the message")
        yield number, wtype, start, vstart, vend
        pos = vend


def split_field(buf: memoryview, number: int) -> tuple[bytes, list[memoryview]]:
    """The message without every occurrence of length-delimited field ``number`` (still a valid
    serialized message: fields are self-delimiting), and those occurrences' values, in order."""
    taken: list[memoryview] = []
    keep: list[memoryview] = []
    run_start = 0
    for field, wtype, start, vstart, vend in iter_fields(buf):
        if field == number and wtype == _LEN:
            if start > run_start:
                keep.append(buf[run_start:start])
            taken.append(buf[vstart:vend])
            run_start = vend
    if run_start == 0:
        return bytes(buf), taken
    keep.append(buf[run_start:])
    return b"".join(keep), taken


def _map_entry(buf: memoryview) -> tuple[str, memoryview]:
    key = ""
    value = buf[0:0]
    for field, wtype, _start, vstart, vend in iter_fields(buf):
        if field == 1 and wtype == _LEN:
            try:
                key = str(buf[vstart:vend], "utf-8")
            except UnicodeDecodeError:
                raise WireError("map key is not UTF-8") from None
        elif field == 2 and wtype == _LEN:
            value = buf[vstart:vend]
    return key, value


def read_tensor(buf: memoryview) -> tuple[tensor_pb2.TensorProto, memoryview | None]:
    """A serialized TensorProto -> (the message without ``tensor_content``, the content view)."""
    rest, contents = split_field(buf, 4)
    proto = tensor_pb2.TensorProto.FromString(rest)
    return proto, (contents[-1] if contents else None)  # proto3: the last occurrence wins


def read_predict_response(
    data: bytes, wanted: set[str] | None = None
) -> tuple[dict[str, tuple[tensor_pb2.TensorProto, memoryview | None]], model_pb2.ModelSpec]:
    """A serialized ``PredictResponse`` -> its outputs (only ``wanted`` ones, when given) as
    (TensorProto without content, content view), and its model spec."""
    buf = memoryview(data)
    outputs: dict[str, tuple[tensor_pb2.TensorProto, memoryview | None]] = {}
    spec = model_pb2.ModelSpec()
    for field, wtype, _start, vstart, vend in iter_fields(buf):
        if wtype != _LEN:
            continue
        if field == 1:
            name, value = _map_entry(buf[vstart:vend])
            if wanted is None or name in wanted:
                outputs[name] = read_tensor(value)
        elif field == 2:
            spec.MergeFromString(buf[vstart:vend].tobytes())
    return outputs, spec


def read_model_infer_response(data: bytes) -> tuple[v2pb.ModelInferResponse, list[memoryview]]:
    """A serialized ``ModelInferResponse`` -> (the message without ``raw_output_contents``, those
    contents as views, in order)."""
    rest, raw = split_field(memoryview(data), 6)
    return v2pb.ModelInferResponse.FromString(rest), raw


def _put_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(number: int, size: int) -> bytes:
    return _put_varint(number << 3 | _LEN) + _put_varint(size)


def _tensor_map(number: int, tensors: dict[str, Array]) -> list[bytes | memoryview]:
    """Map field ``number`` (string -> TensorProto) in deterministic order, contents copied once."""
    parts: list[bytes | memoryview] = []
    for name in sorted(tensors):
        array = tensors[name]
        key = name.encode()
        if array.dtype.kind in "SUO":
            tensor: list[bytes | memoryview] = [to_tensor_proto(array).SerializeToString(deterministic=True)]
            size = len(tensor[0])
        else:
            header, contiguous = tensor_header(array)
            data = contiguous.reshape(-1).view(np.uint8).data
            tensor = [header]
            size = len(header)
            if len(data):
                prefix = _len_field(4, len(data))
                tensor += [prefix, data]
                size += len(prefix) + len(data)
        entry_key = _len_field(1, len(key)) + key
        value_prefix = _len_field(2, size)
        parts += [
            _len_field(number, len(entry_key) + len(value_prefix) + size),
            entry_key,
            value_prefix,
            *tensor,
        ]
    return parts


def encode_predict_request(
    spec: model_pb2.ModelSpec, inputs: dict[str, Array], output_filter: list[str] | None = None
) -> bytes:
    """A serialized ``PredictRequest``, byte-identical to the generated message's deterministic
    serialization (fields in number order, map entries sorted by key), with each numeric input's
    bytes copied once, straight from the array."""
    parts: list[bytes | memoryview] = []
    spec_bytes = spec.SerializeToString(deterministic=True)
    if spec_bytes:
        parts += [_len_field(1, len(spec_bytes)), spec_bytes]
    parts += _tensor_map(2, inputs)
    for out in output_filter or []:
        raw = out.encode()
        parts += [_len_field(3, len(raw)), raw]
    return b"".join(parts)


def encode_predict_response(spec: model_pb2.ModelSpec, outputs: dict[str, Array]) -> bytes:
    """A serialized ``PredictResponse`` (as :func:`encode_predict_request`: deterministic bytes,
    one copy of each output). The test backend answers with it, as TF Serving's C++ would."""
    parts = _tensor_map(1, outputs)
    spec_bytes = spec.SerializeToString(deterministic=True)
    if spec_bytes:
        parts += [_len_field(2, len(spec_bytes)), spec_bytes]
    return b"".join(parts)


def encode_model_infer_request(request: v2pb.ModelInferRequest, contents: list[Array]) -> bytes:
    """A serialized ``ModelInferRequest``: ``request`` (without ``raw_input_contents``) and each
    array of ``contents`` as one raw input content, its bytes in memory order (the caller makes it
    C-contiguous and little-endian), copied once. Byte-identical to the generated message's
    deterministic serialization with the same contents (field 7, the last, after the others)."""
    parts: list[bytes | memoryview] = [request.SerializeToString(deterministic=True)]
    for array in contents:
        data = array.reshape(-1).view(np.uint8).data
        parts += [_len_field(7, len(data)), data]
    return b"".join(parts)
