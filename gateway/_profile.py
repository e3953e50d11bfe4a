"""A configured model made ready to serve: its labels and tokenizer loaded, its input dtypes and shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy.typing as npt

from kubevc.gateway._config import ModelConfig
from kubevc.gateway._errors import BadRequest, ConfigError
from kubevc.gateway._tokenizer import WordPiece, load_wordpiece

__all__ = ["Profile"]

Array = npt.NDArray[Any]


@dataclass
class Profile:
    """A configured model with its loaded labels and tokenizer."""

    cfg: ModelConfig
    labels: list[str]
    tokenizer: WordPiece | None
    dtypes: dict[str, str] = field(default_factory=dict)
    shape: tuple[int, ...] | None = None  # expected input shape without the batch dimension

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
        elif inp.kind == "image":
            shape = (inp.height, inp.width, 3) if inp.layout == "NHWC" else (3, inp.height, inp.width)
        return cls(cfg, labels, tokenizer, dtypes, shape)

    def check_shape(self, inputs: dict[str, Array], field: str) -> None:
        """400 (no backend call) when the main input's shape cannot be what an image/text model takes."""
        main = inputs.get(self.cfg.input.name)
        if self.shape is None or main is None or main.dtype.kind == "O":
            return
        if main.ndim != len(self.shape) + 1 or tuple(main.shape[1:]) != self.shape:
            raise BadRequest(
                f"{field}: shape {list(main.shape)} does not match the model input"
                f" [-1, {', '.join(map(str, self.shape))}]"
            )

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
