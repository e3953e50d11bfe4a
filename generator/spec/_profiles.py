"""Model profiles as data: how the gateway pre- and post-processes each kind of model.

A profile is one YAML file in ``generator/profiles/`` (shipped as package data); these are its
pydantic models (``extra="forbid"``). The keys under ``input`` and ``output`` are the gateway's own
model keys (``docs/gateway-config.md``); only the keys a profile sets are rendered, so the
gateway's defaults apply to the rest. ``{basePath}`` in ``vocabFile`` is replaced by the model's
base path (the gateway then mounts the model store read-only). Loading the files lives in
:mod:`kubevc.generator.repo`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from ..errors import SpecError

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
BASE_PATH_PLACEHOLDER = "{basePath}"

PositiveInt = Annotated[int, Field(gt=0)]
Unit = Annotated[float, Field(ge=0, le=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class ProfileInput(_Model):
    kind: Literal["image", "text", "tensor"]
    name: Annotated[str, Field(min_length=1)]
    width: PositiveInt | None = None
    height: PositiveInt | None = None
    layout: Literal["NHWC", "NCHW"] | None = None
    dtype: Literal["uint8", "float32"] | None = None
    resize: Literal["letterbox", "stretch", "center-crop"] | None = None
    mean: Annotated[list[float], Field(min_length=3, max_length=3)] | None = None
    std: Annotated[list[float], Field(min_length=3, max_length=3)] | None = None
    video_fps: Annotated[float, Field(gt=0)] | None = None
    vocab_file: str | None = None
    sequence_length: Annotated[int, Field(ge=2, le=65536)] | None = None
    lowercase: bool | None = None
    mask_name: str | None = None
    type_ids_name: str | None = None

    @model_validator(mode="after")
    def _kind_keys(self) -> ProfileInput:
        image_keys = ("width", "height", "layout", "dtype", "resize", "mean", "std", "video_fps")
        text_keys = ("vocab_file", "sequence_length", "lowercase", "mask_name", "type_ids_name")
        wrong: tuple[str, ...] = text_keys if self.kind != "text" else image_keys
        if self.kind == "tensor":  # only the dtype JSON/TF-REST tensors are converted to
            wrong = tuple(k for k in image_keys if k != "dtype") + text_keys
        used = [to_camel(k) for k in wrong if k in self.model_fields_set]
        if used:
            raise ValueError(f"keys {used} do not apply to input kind {self.kind!r}")
        if self.kind == "text" and not self.vocab_file:
            raise ValueError("input kind 'text' needs vocabFile (e.g. '{basePath}/vocab.txt')")
        if self.std is not None and any(v == 0 for v in self.std):
            raise ValueError("std values must not be 0")
        return self


class ProfileOutput(_Model):
    name: str | None = None
    postprocess: Literal["yolo", "topk", "none"]
    top_k: PositiveInt | None = None
    confidence_threshold: Unit | None = None
    iou_threshold: Unit | None = None
    max_detections: PositiveInt | None = None

    @model_validator(mode="after")
    def _postprocess_keys(self) -> ProfileOutput:
        allowed = {
            "topk": {"top_k"},
            "yolo": {"confidence_threshold", "iou_threshold", "max_detections"},
            "none": set(),
        }[self.postprocess]
        extra = {"top_k", "confidence_threshold", "iou_threshold", "max_detections"} - allowed
        used = sorted(to_camel(k) for k in extra & self.model_fields_set)
        if used:
            raise ValueError(f"keys {used} do not apply to postprocess {self.postprocess!r}")
        return self


class Profile(_Model):
    """One model profile (``generator/profiles/<name>.yaml``)."""

    name: str
    description: Annotated[str, Field(min_length=1)]
    input: ProfileInput
    output: ProfileOutput

    @property
    def needs_model_store(self) -> bool:
        """True when the gateway reads a file of this profile from the model store."""
        return bool(self.input.vocab_file and BASE_PATH_PLACEHOLDER in self.input.vocab_file)


@functools.cache
def shipped_profile_names() -> tuple[str, ...]:
    """The names of the shipped profiles (``generator/profiles/<name>.yaml``), sorted.

    Only the package's own file names are listed (what :class:`ModelSpec` checks a ``profile``
    key against); :func:`kubevc.generator.repo.load_profiles` reads and validates the files.
    """
    if not PROFILES_DIR.is_dir():
        return ()
    return tuple(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))


def gateway_model(prof: Profile, base_path: str) -> dict[str, Any]:
    """The profile's ``input``/``output`` keys for one gateway ``models[]`` entry."""
    data_in: dict[str, Any] = prof.input.model_dump(by_alias=True, exclude_unset=True, mode="json")
    data_out: dict[str, Any] = prof.output.model_dump(by_alias=True, exclude_unset=True, mode="json")
    if isinstance(data_in.get("vocabFile"), str):
        data_in["vocabFile"] = data_in["vocabFile"].replace(BASE_PATH_PLACEHOLDER, base_path.rstrip("/"))
    return {"input": data_in, "output": data_out}


def pick_profile(profiles: Mapping[str, Profile], name: str) -> Profile:
    """``profiles[name]``; a :class:`SpecError` listing the known ones otherwise."""
    if name not in profiles:
        raise SpecError(f"unknown model profile {name!r} (profiles: {', '.join(sorted(profiles))})")
    return profiles[name]
