"""A SavedModel's serving signature, read from ``saved_model.pb``, and what ``model add`` picks from it.

The messages and field numbers are the project's own protos (``protos/kubevc/gateway/_proto/
tensorflow/meta_graph.proto``: ``SignatureDef``, ``TensorInfo``; ``tensor_shape.proto``;
``types.proto`` for the dtypes), plus the two messages around them in ``saved_model.pb``:
``SavedModel { repeated MetaGraphDef meta_graphs = 2; }`` and ``MetaGraphDef { MetaInfoDef
meta_info_def = 1; map<string, SignatureDef> signature_def = 5; }`` (``MetaInfoDef.tags = 4``).
The generated modules of those protos live in the gateway package, which the generator must not
import (import-linter), so this is a small protobuf wire-format reader over the file's bytes: the
graph (often most of the file) is skipped as one length-delimited field, never decoded.

:func:`pick_serving` turns a signature into the gateway profile and the wire form of the
gateway -> server hop (``encoded`` image bytes for a ``DT_STRING`` input that decodes in the
graph, else the input's ``uint8``/``float16``/``float32``), each with the reason it was picked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import SpecError

# types.proto (DataType) -> the dtype's name
DTYPES = {
    1: "float32",
    2: "float64",
    3: "int32",
    4: "uint8",
    5: "int16",
    6: "int8",
    7: "string",
    8: "complex64",
    9: "int64",
    10: "bool",
    14: "bfloat16",
    17: "uint16",
    18: "complex128",
    19: "float16",
    22: "uint32",
    23: "uint64",
}
SERVING_TAG = "serve"
MAX_SAVED_MODEL_BYTES = 2**31  # protobuf's own limit of one message
Wire = Literal["encoded", "uint8", "float16", "float32"]
WIRES: tuple[Wire, ...] = ("encoded", "uint8", "float16", "float32")
IMAGE_WIRES: dict[str, Wire] = {"uint8": "uint8", "float16": "float16", "float32": "float32"}


class SavedModelError(SpecError):
    """``saved_model.pb`` is missing, not a SavedModel, or has no such signature (bad input)."""


@dataclass(frozen=True)
class TensorSignature:
    name: str  # the signature's key (what a request names), not the graph tensor
    dtype: str  # a name of DTYPES, or "DT_<n>" for another
    shape: tuple[int | None, ...] | None  # None: unknown rank; None per dimension: unknown size


@dataclass(frozen=True)
class Signature:
    name: str
    method: str
    inputs: tuple[TensorSignature, ...]
    outputs: tuple[TensorSignature, ...]


@dataclass(frozen=True)
class ServingPick:
    """The gateway profile and wire form ``model add`` uses, and why."""

    profile: str
    wire: Wire | None  # None: the profile's input is not an image (text, tensor)
    reasons: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- wire format


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of one message: varints as int, length-delimited as a view."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, kind = key >> 3, key & 7
        if kind == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif kind == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            yield number, data[pos : pos + length]
            pos += length
        elif kind == 1:
            pos += 8
        elif kind == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {kind}")
        if pos > len(data):
            raise ValueError("truncated field")


def _views(data: memoryview, number: int) -> list[memoryview]:
    return [v for n, v in _fields(data) if n == number and isinstance(v, memoryview)]


def _text(view: memoryview) -> str:
    return bytes(view).decode("utf-8")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _tensor(key: str, info: memoryview) -> TensorSignature:
    dtype_code = 0
    shape: tuple[int | None, ...] | None = None
    for number, value in _fields(info):
        if number == 2 and isinstance(value, int):
            dtype_code = value
        elif number == 3 and isinstance(value, memoryview):
            dims: list[int | None] = []
            unknown_rank = False
            for n, v in _fields(value):
                if n == 2 and isinstance(v, memoryview):
                    size = next((_signed(s) for m, s in _fields(v) if m == 1 and isinstance(s, int)), 0)
                    dims.append(None if size < 0 else size)
                elif n == 3 and v:
                    unknown_rank = True
            shape = None if unknown_rank else tuple(dims)
    return TensorSignature(key, DTYPES.get(dtype_code, f"DT_{dtype_code}"), shape)


def _map_entries(data: memoryview, number: int) -> Iterator[tuple[str, memoryview]]:
    for entry in _views(data, number):
        key, value = "", memoryview(b"")
        for n, v in _fields(entry):
            if n == 1 and isinstance(v, memoryview):
                key = _text(v)
            elif n == 2 and isinstance(v, memoryview):
                value = v
        yield key, value


def parse_signatures(data: bytes) -> dict[str, Signature]:
    """Every signature of the ``serve`` meta graph (or the only one) of ``saved_model.pb``'s bytes."""
    view = memoryview(data)
    graphs = _views(view, 2)
    if not graphs:
        raise ValueError("no meta graph")

    def tags(graph: memoryview) -> list[str]:
        return [_text(t) for info in _views(graph, 1) for t in _views(info, 4)]

    serving = [g for g in graphs if SERVING_TAG in tags(g)] or graphs[:1]
    found: dict[str, Signature] = {}
    for key, sig in _map_entries(serving[0], 5):
        inputs = tuple(sorted((_tensor(k, v) for k, v in _map_entries(sig, 1)), key=lambda t: t.name))
        outputs = tuple(sorted((_tensor(k, v) for k, v in _map_entries(sig, 2)), key=lambda t: t.name))
        method = next((_text(v) for n, v in _fields(sig) if n == 3 and isinstance(v, memoryview)), "")
        found[key] = Signature(key, method, inputs, outputs)
    return found


def read_signature(saved_model_dir: Path, signature: str = "serving_default") -> Signature:
    """Signature ``signature`` of the SavedModel in ``saved_model_dir`` (SavedModelError if none)."""
    path = saved_model_dir / "saved_model.pb"
    try:
        if path.stat().st_size > MAX_SAVED_MODEL_BYTES:
            raise SavedModelError(f"{path}: larger than a protobuf message can be")
        data = path.read_bytes()
    except OSError as exc:
        raise SavedModelError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        signatures = parse_signatures(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SavedModelError(f"{path}: not a SavedModel ({exc})") from None
    if signature not in signatures:
        have = ", ".join(sorted(k for k in signatures if not k.startswith("__"))) or "none"  # not TF's own
        raise SavedModelError(f"{path}: no signature {signature!r} (signatures: {have})")
    return signatures[signature]


# --------------------------------------------------------------------------- the pick

TEXT_INPUTS = ("input_ids", "input_word_ids", "input_mask", "attention_mask", "token_type_ids", "segment_ids")
IMAGE_WORDS = ("image", "images", "img", "pixel", "input_tensor", "jpeg", "bytes")
DETECTION_WORDS = ("box", "boxes", "detection")


def _shape_text(shape: tuple[int | None, ...] | None) -> str:
    if shape is None:
        return "unknown rank"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _describe(t: TensorSignature) -> str:
    return f"{t.name} {t.dtype} {_shape_text(t.shape)}"


def _looks_like_detection(outputs: tuple[TensorSignature, ...]) -> str | None:
    for out in outputs:
        if any(word in out.name.lower() for word in DETECTION_WORDS):
            return f"output {out.name!r} names boxes"
        if out.shape is not None and len(out.shape) == 3 and (out.shape[2] or 0) >= 6:
            return f"output {_describe(out)} has the YOLO layout [N, boxes, 5 + classes]"
    return None


def pick_serving(signature: Signature) -> ServingPick:
    """The gateway profile (detection, classification, text, tensor) and the wire form for ``signature``."""
    inputs = signature.inputs
    names = {t.name.lower() for t in inputs}
    ints = [t for t in inputs if t.dtype in ("int32", "int64")]
    if ints and names & set(TEXT_INPUTS):
        listed = ", ".join(_describe(t) for t in inputs)
        return ServingPick("text", None, [f"token-id inputs ({listed}): a text model"])
    if len(inputs) != 1:
        listed = ", ".join(_describe(t) for t in inputs) or "none"
        return ServingPick("tensor", None, [f"{len(inputs)} inputs ({listed}): not one image"])
    (only,) = inputs
    image_name = any(word in only.name.lower() for word in IMAGE_WORDS)
    wire: Wire
    if only.dtype == "string":
        if not image_name and only.shape is not None and len(only.shape) > 1:
            return ServingPick("tensor", None, [f"input {_describe(only)}: strings, not one image per row"])
        wire = "encoded"
        why_image = (
            f"input {_describe(only)} takes encoded image bytes (the graph decodes them): "
            "wire 'encoded' sends the upload unchanged"
        )
    elif only.dtype in ("uint8", "float16", "float32") and only.shape is not None and len(only.shape) == 4:
        channels = only.shape[3] if only.shape[3] is not None else only.shape[1]
        if channels not in (1, 3, 4, None):
            return ServingPick("tensor", None, [f"input {_describe(only)}: not an NHWC/NCHW image"])
        wire = IMAGE_WIRES[only.dtype]
        why_image = f"input {_describe(only)} is a batch of images: wire {wire!r}, the model's own dtype"
    else:
        return ServingPick("tensor", None, [f"input {_describe(only)}: not an image or token ids"])
    detection = _looks_like_detection(signature.outputs)
    if detection:
        return ServingPick("detection", wire, [why_image, f"{detection}: detection"])
    outs = ", ".join(_describe(t) for t in signature.outputs) or "none"
    return ServingPick(
        "classification", wire, [why_image, f"outputs {outs}: one score vector, classification"]
    )
