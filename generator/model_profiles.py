"""Model profiles: how the gateway pre- and post-processes each kind of model.

A profile is data: one YAML file per profile in ``generator/profiles/`` (shipped as package
data), validated here with pydantic ``extra="forbid"``. The keys under ``input`` and ``output``
are the gateway's own model keys (``docs/gateway-config.md``); only the keys a profile sets are
rendered, so the gateway's defaults apply to the rest. ``{basePath}`` in ``vocabFile`` is
replaced by the model's base path (the gateway then mounts the model store read-only).

    >>> from kubevc.generator.model_profiles import load_profiles
    >>> sorted(load_profiles())
    ['classification', 'classification-299', 'detection', 'tensor', 'text']
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from . import yamlio
from .spec import SpecError, check_name, format_validation_error

__all__ = [
    "PROFILES_DIR",
    "Profile",
    "gateway_model",
    "load_profiles",
    "pending_files",
    "profile",
    "profile_names",
    "read_labels",
]

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
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


def _load_file(path: Path) -> Profile:
    rel = f"profiles/{path.name}"
    raw = yamlio.load_roundtrip(path.read_text(encoding="utf-8"), rel)
    try:
        prof = Profile.model_validate(yamlio.to_plain(raw))
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, rel, raw)) from None
    check_name(prof.name, "profile name")
    if prof.name != path.stem:
        raise SpecError(f"{rel}: name: {prof.name!r} does not match the file name {path.stem!r}")
    return prof


def load_profiles(folder: Path | None = None) -> dict[str, Profile]:
    """Every profile in ``folder`` (default: the shipped ones), by name; errors name file and key."""
    if folder is None:
        return dict(_shipped())
    profiles: dict[str, Profile] = {}
    problems: list[str] = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            prof = _load_file(path)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        profiles[prof.name] = prof
    if problems:
        raise SpecError(problems)
    return profiles


@functools.cache
def _shipped() -> tuple[tuple[str, Profile], ...]:
    return tuple(load_profiles(PROFILES_DIR).items()) if PROFILES_DIR.is_dir() else ()


def profile_names() -> list[str]:
    return sorted(load_profiles())


def profile(name: str) -> Profile:
    """The shipped profile ``name``; a :class:`SpecError` listing the known ones otherwise."""
    profiles = load_profiles()
    if name not in profiles:
        raise SpecError(f"unknown model profile {name!r} (profiles: {', '.join(sorted(profiles))})")
    return profiles[name]


def gateway_model(prof: Profile, base_path: str) -> dict[str, Any]:
    """The profile's ``input``/``output`` keys for one gateway ``models[]`` entry."""
    data_in: dict[str, Any] = prof.input.model_dump(by_alias=True, exclude_unset=True, mode="json")
    data_out: dict[str, Any] = prof.output.model_dump(by_alias=True, exclude_unset=True, mode="json")
    if isinstance(data_in.get("vocabFile"), str):
        data_in["vocabFile"] = data_in["vocabFile"].replace(BASE_PATH_PLACEHOLDER, base_path.rstrip("/"))
    return {"input": data_in, "output": data_out}


# Files a command is about to write in the same commit (``model add --labels``): render reads
# them from here before the disk, so the whole change is planned before anything is written.
_PENDING: contextvars.ContextVar[Mapping[str, bytes] | None] = contextvars.ContextVar(
    "kubevc_pending", default=None
)


@contextlib.contextmanager
def pending_files(files: Mapping[str, bytes]) -> Iterator[None]:
    token = _PENDING.set(dict(files))
    try:
        yield
    finally:
        _PENDING.reset(token)


def read_labels(root: Path, rel: str, where: str) -> list[str]:
    """Class labels of ``rel`` (one per line) in the fleet repo; trailing blank lines dropped."""
    data = (_PENDING.get() or {}).get(rel)
    if data is None:
        path = root / rel
        if not path.is_file():
            raise SpecError(f"{where}: {rel} does not exist in the fleet repo")
        data = path.read_bytes()
    try:
        labels = [line.strip() for line in data.decode("utf-8").splitlines()]
    except UnicodeDecodeError:
        raise SpecError(f"{where}: {rel} is not UTF-8 text") from None
    while labels and not labels[-1]:
        labels.pop()
    return labels
