"""A configured model made ready to serve: its labels and tokenizer loaded, its input dtypes and
shape, narrowed by the signature its backend declares (:meth:`Profile.apply_signature`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy.typing as npt

from kubevc.gateway._config import InputConfig, ModelConfig
from kubevc.gateway._errors import BadRequest, ConfigError, SignatureMismatch
from kubevc.gateway._signature import STRING, Signature, TensorSpec
from kubevc.gateway._tokenizer import WordPiece, load_wordpiece

__all__ = ["Profile", "narrow_config"]

Array = npt.NDArray[Any]
_IMAGE_DTYPES = ("uint8", "float16", "float32", STRING)
_ID_DTYPES = ("int32", "int64")


@dataclass
class Profile:
    """A configured model with its loaded labels and tokenizer.

    ``cfg`` is the configuration in effect: as written, or narrowed by the backend's signature
    (dtype, layout, size, sequence length the config left at their defaults); ``configured`` is
    the configuration as written."""

    cfg: ModelConfig
    labels: list[str]
    tokenizer: WordPiece | None
    dtypes: dict[str, str] = field(default_factory=dict)
    shape: tuple[int, ...] | None = None  # expected input shape without the batch dimension
    configured: ModelConfig | None = None
    signature: Signature | None = None  # as the backend declares it (None: not known)
    signature_error: str | None = None  # the config contradicts the signature: not ready
    signature_read: bool = False  # the backend was asked (and answered, maybe "cannot say")

    @classmethod
    def load(cls, cfg: ModelConfig) -> Profile:
        labels = list(cfg.output.labels)
        if cfg.output.labels_file:
            try:
                labels = Path(cfg.output.labels_file).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(f"models[{cfg.name}].output.labelsFile: {exc.strerror}") from None
        tokenizer = None
        inp = cfg.input
        dtypes: dict[str, str] = {inp.name: inp.dtype}
        shape: tuple[int, ...] | None = None
        if inp.kind == "text":
            assert inp.vocab_file is not None  # checked by the config model
            try:
                tokenizer = load_wordpiece(inp.vocab_file, inp.lowercase)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"models[{cfg.name}].input.vocabFile: {exc}") from None
            dtypes = {n: "int32" for n in (inp.name, inp.mask_name, inp.type_ids_name) if n}
            shape = (inp.sequence_length,)
        elif inp.kind == "image" and inp.dtype != STRING:
            shape = _image_shape(inp)
        return cls(cfg, labels, tokenizer, dtypes, shape, configured=cfg)

    def apply_signature(self, signature: Signature | None) -> None:
        """Narrow the configuration by the backend's signature (None: back to the configuration as
        written); :class:`SignatureMismatch` when they contradict, and nothing changes."""
        configured = self.configured or self.cfg
        if signature is None:
            fresh = Profile.load(configured)
            self.cfg, self.dtypes, self.shape, self.signature = configured, fresh.dtypes, fresh.shape, None
            return
        cfg = narrow_config(configured, signature)
        inp = cfg.input
        dtypes = {name: spec.dtype for name, spec in signature.inputs.items()}
        shape: tuple[int, ...] | None = None
        if inp.kind == "image" and inp.dtype != STRING:
            shape = _image_shape(inp)
        elif inp.kind == "text":
            shape = (inp.sequence_length,)
        self.cfg, self.dtypes, self.shape, self.signature = cfg, dtypes, shape, signature

    def check_shape(self, inputs: dict[str, Array], field: str) -> None:
        """400 (no backend call) when the inputs cannot be what the model takes: the main input's
        shape for image/text models, and with a signature every input's name, shape and kind
        (strings where the model takes no strings, numbers where it takes strings)."""
        main = inputs.get(self.cfg.input.name)
        shape = self.shape
        if (
            shape is not None
            and main is not None
            and main.dtype.kind != "O"
            and (main.ndim != len(shape) + 1 or tuple(main.shape[1:]) != shape)
        ):
            raise BadRequest(
                f"{field}: shape {list(main.shape)} does not match the model input"
                f" [-1, {', '.join(map(str, shape))}]"
            )
        if self.signature is None:
            return
        for name, array in inputs.items():
            spec = self.signature.inputs.get(name)
            if spec is None:
                known = sorted(self.signature.inputs)
                raise BadRequest(f"{field}: input {name!r} is not in the model's signature (inputs: {known})")
            _check_against(spec, array, field)

    @property
    def wire_form(self) -> str:
        """What the gateway sends the backend for this model: ``encoded`` (the image bytes as they
        came), the image tensor's dtype, ``int64 ids`` / ``int32 ids``, or ``as sent`` (tensors)."""
        inp = self.cfg.input
        if inp.kind == "image":
            return "encoded" if inp.dtype == STRING else inp.dtype
        if inp.kind == "text":
            return f"{self.dtypes.get(inp.name, 'int32')} ids"
        return "as sent"

    @property
    def output_names(self) -> list[str]:
        """The outputs the profile names (for metadata): the detection outputs or ``output.name``."""
        out = self.cfg.output
        return out.detection_outputs if out.postprocess == "detections" else [out.name] if out.name else []

    @property
    def output_filter(self) -> list[str] | None:
        """The outputs ``/infer`` asks the backend for (None: all of them)."""
        out = self.cfg.output
        if out.postprocess == "detections":
            return out.detection_outputs
        return [out.name] if out.name and out.postprocess != "none" else None


def _image_shape(inp: InputConfig) -> tuple[int, ...]:
    return (inp.height, inp.width, 3) if inp.layout == "NHWC" else (3, inp.height, inp.width)


def _check_against(spec: TensorSpec, array: Array, field: str) -> None:
    is_text = array.dtype.kind in "OSU"
    if spec.dtype == STRING and not is_text:
        raise BadRequest(f"{field}: input {spec.name!r} takes strings, not {array.dtype} numbers")
    if spec.dtype != STRING and is_text:
        raise BadRequest(f"{field}: input {spec.name!r} takes {spec.dtype}, not strings")
    if spec.shape is None:
        return
    fits = array.ndim == len(spec.shape) and all(
        want < 0 or want == got for want, got in zip(spec.shape, array.shape, strict=True)
    )
    if not fits:
        raise BadRequest(
            f"{field}: shape {list(array.shape)} of input {spec.name!r} does not match the signature"
            f" {spec.describe_shape()}"
        )


def _layout_of(spec: TensorSpec, configured: str) -> str | None:
    """NHWC or NCHW from a 4-d image shape (channels 3 or free); None when neither fits."""
    assert spec.shape is not None
    _, a, _, c = spec.shape
    nhwc, nchw = c in (3, -1), a in (3, -1)
    if nhwc and nchw:
        return configured
    return "NHWC" if nhwc else "NCHW" if nchw else None


def narrow_config(cfg: ModelConfig, sig: Signature) -> ModelConfig:
    """The configuration with what it leaves at a default taken from the signature; what it sets
    must agree. :class:`SignatureMismatch` names model, input, config value and backend value."""
    inp = cfg.input
    explicit = inp.model_fields_set

    def mismatch(name: str, key: str, config_value: object, backend_value: object) -> SignatureMismatch:
        return SignatureMismatch(
            f"model {cfg.name!r}: input {name!r}: config {key} is {config_value}, but the backend's"
            f" signature ({sig.source}) says {backend_value}"
        )

    def spec(name: str, key: str) -> TensorSpec:
        found = sig.inputs.get(name)
        if found is None:
            raise SignatureMismatch(
                f"model {cfg.name!r}: input {name!r} (config {key}) is not in the backend's signature"
                f" ({sig.source}; inputs: {sorted(sig.inputs)})"
            )
        return found

    updates: dict[str, Any] = {}
    if inp.kind == "image":
        image = spec(inp.name, "input.name")
        if image.dtype not in _IMAGE_DTYPES or ("dtype" in explicit and inp.dtype != image.dtype):
            raise mismatch(inp.name, "input.dtype", inp.dtype, f"dtype {image.dtype}")
        updates["dtype"] = image.dtype
        if image.dtype == STRING:  # encoded images, decoded in the graph: one string per image
            if image.shape is not None and len(image.shape) != 1:
                raise mismatch(
                    inp.name, "input.dtype", "string", f"shape {image.describe_shape()} (not [batch])"
                )
        elif image.shape is not None:
            if len(image.shape) != 4:
                raise mismatch(inp.name, "input.kind", "image", f"shape {image.describe_shape()} (not 4-d)")
            layout = _layout_of(image, inp.layout)
            if layout is None or ("layout" in explicit and layout != inp.layout):
                raise mismatch(inp.name, "input.layout", inp.layout, f"shape {image.describe_shape()}")
            updates["layout"] = layout
            h, w = image.shape[1:3] if layout == "NHWC" else image.shape[2:4]
            for key, size in (("height", h), ("width", w)):
                if size > 0:
                    if key in explicit and getattr(inp, key) != size:
                        raise mismatch(
                            inp.name, f"input.{key}", getattr(inp, key), f"shape {image.describe_shape()}"
                        )
                    updates[key] = size
    elif inp.kind == "text":
        keys = (
            ("input.name", inp.name),
            ("input.maskName", inp.mask_name),
            ("input.typeIdsName", inp.type_ids_name),
        )
        for key, name in keys:
            if not name:
                continue
            ids = spec(name, key)
            if ids.dtype not in _ID_DTYPES:
                raise mismatch(name, "input.kind", "text (integer token ids)", f"dtype {ids.dtype}")
            if ids.shape is None:
                continue
            if len(ids.shape) != 2:
                raise mismatch(
                    name, "input.kind", "text ([batch, sequence])", f"shape {ids.describe_shape()}"
                )
            length = ids.shape[1]
            if length > 0:
                if "sequence_length" in explicit and inp.sequence_length != length:
                    raise mismatch(
                        name, "input.sequenceLength", inp.sequence_length, f"shape {ids.describe_shape()}"
                    )
                updates["sequence_length"] = length
    else:
        spec(inp.name, "input.name")
    out = cfg.output
    if sig.outputs:  # the outputs the gateway asks for by name must exist
        wanted = out.detection_outputs if out.postprocess == "detections" else [out.name] if out.name else []
        for name in wanted:
            if name not in sig.outputs:
                raise SignatureMismatch(
                    f"model {cfg.name!r}: output {name!r} (config output) is not in the backend's signature"
                    f" ({sig.source}; outputs: {sorted(sig.outputs)})"
                )
    return cfg.model_copy(update={"input": inp.model_copy(update=updates)}) if updates else cfg
