"""The gateway configuration file (``gateway.yaml``), see ``docs/gateway-config.md``.

Pydantic models with ``extra="forbid"`` and camelCase aliases: the same keys the chart's
``values.schema.json`` accepts under ``config``. :func:`load_config` reads the YAML file, applies
the environment overrides and raises :class:`ConfigError` naming the key path of every problem.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from kubevc.gateway._errors import ConfigError

__all__ = [
    "BackendConfig",
    "BreakerConfig",
    "CanaryConfig",
    "ConfigError",
    "GatewayConfig",
    "InputConfig",
    "LimitsConfig",
    "ModelConfig",
    "OutputConfig",
    "ServerConfig",
    "load_config",
    "parse_config",
]

ENV_PORT = "KUBEVC_GATEWAY_PORT"
ENV_LOG_LEVEL = "KUBEVC_GATEWAY_LOG_LEVEL"
STABLE_LABEL = "stable"  # the TF Serving version label requests go to when they are not in the canary
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ADDRESS = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$")

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class ServerConfig(_Model):
    host: str = "0.0.0.0"  # noqa: S104 - a container binds every interface
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    drain_seconds: Annotated[float, Field(ge=0)] = 10


class LimitsConfig(_Model):
    max_body_bytes: PositiveInt = 33_554_432
    max_image_pixels: PositiveInt = 40_000_000
    max_video_frames: PositiveInt = 64
    request_timeout_seconds: PositiveFloat = 30
    # the work one request may cause, counted from headers before anything is decoded
    max_request_pixels: PositiveInt = 100_000_000
    # the decode worker pool, shared by all requests: bounded threads, queue and pixels in memory
    decode_workers: Annotated[int, Field(ge=1, le=64)] = 2
    decode_queue: Annotated[int, Field(ge=0)] = 16
    max_decoding_pixels: PositiveInt = 40_000_000
    # HTTP: what a connection may hold before a request reaches the app
    max_header_bytes: Annotated[int, Field(ge=1024)] = 16_384
    max_header_count: PositiveInt = 100
    header_timeout_seconds: PositiveFloat = 10
    keep_alive_seconds: PositiveFloat = 5
    max_connections: PositiveInt = 1000
    # request bodies all requests hold at once (received, or being received, and not yet answered)
    max_inflight_body_bytes: PositiveInt = 134_217_728

    @model_validator(mode="after")
    def _largest_body_fits(self) -> LimitsConfig:
        if self.max_inflight_body_bytes < self.max_body_bytes:
            raise ValueError(
                f"maxInflightBodyBytes ({self.max_inflight_body_bytes}) is below maxBodyBytes"
                f" ({self.max_body_bytes}): the largest allowed body would never fit"
            )
        return self


class BreakerConfig(_Model):
    failure_threshold: PositiveInt = 5
    reset_seconds: PositiveFloat = 10


class BackendConfig(_Model):
    name: str
    protocol: Literal["tfserving", "v2"]
    address: str
    deadline_seconds: PositiveFloat = 10
    max_message_bytes: PositiveInt = 67_108_864
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    retry_backoff_seconds: Annotated[float, Field(ge=0)] = 0.05
    keepalive_seconds: PositiveFloat = 30
    breaker: BreakerConfig = BreakerConfig()

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not _DNS1123_LABEL.match(value):
            raise ValueError(f"{value!r} is not a DNS-1123 label (lowercase letters, digits, '-')")
        return value

    @field_validator("address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if not _ADDRESS.match(value) or not 0 < int(value.rsplit(":", 1)[1]) < 65536:
            raise ValueError(f"{value!r} is not host:port")
        return value


class InputConfig(_Model):
    kind: Literal["image", "text", "tensor"]
    name: str
    width: PositiveInt = 640
    height: PositiveInt = 640
    layout: Literal["NHWC", "NCHW"] = "NHWC"
    # string: the encoded JPEG/PNG bytes as they came, for a model that decodes in its graph
    dtype: Literal["uint8", "float16", "float32", "string"] = "uint8"
    resize: Literal["letterbox", "stretch", "center-crop"] = "letterbox"
    mean: Annotated[list[float], Field(min_length=3, max_length=3)] = [0.0, 0.0, 0.0]
    std: Annotated[list[float], Field(min_length=3, max_length=3)] = [255.0, 255.0, 255.0]
    video_fps: PositiveFloat = 2.0
    vocab_file: str | None = None
    sequence_length: Annotated[int, Field(ge=2, le=65536)] = 128
    lowercase: bool = True
    mask_name: str | None = None
    type_ids_name: str | None = None

    @field_validator("std")
    @classmethod
    def _nonzero_std(cls, value: list[float]) -> list[float]:
        if any(v == 0 for v in value):
            raise ValueError("std values must not be 0")
        return value


class OutputConfig(_Model):
    name: str | None = "output0"
    postprocess: Literal["yolo", "detections", "topk", "none"] = "yolo"
    top_k: PositiveInt = 5
    labels: list[str] = []
    labels_file: str | None = None
    confidence_threshold: Annotated[float, Field(ge=0, le=1)] = 0.25
    iou_threshold: Annotated[float, Field(ge=0, le=1)] = 0.45
    max_detections: PositiveInt = 300
    # postprocess detections: a model with NMS in its graph (TF detection exports)
    boxes_name: str = "detection_boxes"
    scores_name: str = "detection_scores"
    classes_name: str = "detection_classes"
    num_detections_name: str | None = "num_detections"
    box_format: Literal["yxyx", "xyxy"] = "yxyx"
    box_units: Literal["normalized", "pixels"] = "normalized"

    @model_validator(mode="after")
    def _one_label_source(self) -> OutputConfig:
        if self.labels and self.labels_file:
            raise ValueError("give labels or labelsFile, not both")
        return self

    @property
    def detection_outputs(self) -> list[str]:
        """The outputs a ``detections`` model is asked for."""
        names = [self.boxes_name, self.scores_name, self.classes_name, self.num_detections_name]
        return [n for n in names if n]


class CanaryConfig(_Model):
    label: str = "canary"
    percent: Annotated[float, Field(ge=0, le=100)] = 0
    # v2 backends (Triton, MLServer) have no version labels: the version each label stands for
    # ({stable: N, canary: M}); the request then names that version (model_version).
    versions: dict[str, PositiveInt] | None = None

    @field_validator("label")
    @classmethod
    def _not_stable(cls, value: str) -> str:
        if not value or value == STABLE_LABEL:
            raise ValueError(f"the canary label must be set and differ from {STABLE_LABEL!r}")
        return value

    @model_validator(mode="after")
    def _both_versions(self) -> CanaryConfig:
        if self.versions is not None and set(self.versions) != {STABLE_LABEL, self.label}:
            raise ValueError(
                f"versions: give exactly the {STABLE_LABEL!r} and {self.label!r} labels' versions"
                f" (got {sorted(self.versions)})"
            )
        return self


class ModelConfig(_Model):
    name: str
    backend: str
    backend_model: str | None = None
    signature: str = "serving_default"
    input: InputConfig
    output: OutputConfig = OutputConfig()
    canary: CanaryConfig | None = None

    @field_validator("name")
    @classmethod
    def _url_safe(cls, value: str) -> str:
        if not _MODEL_NAME.match(value):
            raise ValueError(f"{value!r} is not a model name (letters, digits, '.', '_', '-')")
        return value

    @property
    def remote_name(self) -> str:
        """The model's name on the backend."""
        return self.backend_model or self.name


class GatewayConfig(_Model):
    server: ServerConfig = ServerConfig()
    limits: LimitsConfig = LimitsConfig()
    backends: list[BackendConfig] = []
    models: list[ModelConfig] = []

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        names = [b.name for b in self.backends]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"backends: duplicate name(s) {sorted(dup)}")
        models = [m.name for m in self.models]
        dup = {n for n in models if models.count(n) > 1}
        if dup:
            raise ValueError(f"models: duplicate name(s) {sorted(dup)}")
        for i, m in enumerate(self.models):
            if m.backend not in names:
                raise ValueError(f"models[{i}].backend: {m.backend!r} is not one of backends[].name {names}")
            if m.input.kind == "text" and not m.input.vocab_file:
                raise ValueError(f"models[{i}].input.vocabFile: required for kind text")
            if m.canary is not None:
                v2 = self.backend(m.backend).protocol == "v2"
                if v2 and m.canary.versions is None:
                    raise ValueError(
                        f"models[{i}].canary: version labels need a tfserving backend ({m.backend!r} is v2);"
                        " on v2 give canary.versions, the version of each label ({stable: N, canary: M})"
                    )
                if not v2 and m.canary.versions is not None:
                    raise ValueError(
                        f"models[{i}].canary.versions: only for v2 backends ({m.backend!r} is tfserving,"
                        " which routes by its version labels)"
                    )
        return self

    def model(self, name: str) -> ModelConfig | None:
        return next((m for m in self.models if m.name == name), None)

    def backend(self, name: str) -> BackendConfig:
        return next(b for b in self.backends if b.name == name)


def _format(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{path}: {msg}")
    return "; ".join(lines)


def parse_config(data: Any, *, env: dict[str, str] | None = None) -> GatewayConfig:
    """Validate a parsed YAML document; ``env`` (default ``os.environ``) may override port/log level."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a mapping")
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format(exc)) from None
    env = dict(os.environ) if env is None else env
    server: dict[str, Any] = {}
    if env.get(ENV_PORT):
        server["port"] = env[ENV_PORT]
    if env.get(ENV_LOG_LEVEL):
        server["logLevel"] = env[ENV_LOG_LEVEL].lower()
    if server:
        merged = {**config.server.model_dump(by_alias=True), **server}
        try:
            new_server = ServerConfig.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(f"environment override: {_format(exc)}") from None
        config = config.model_copy(update={"server": new_server})
    return config


def load_config(path: str | Path, *, env: dict[str, str] | None = None) -> GatewayConfig:
    """Read and validate ``gateway.yaml``; relative vocab/label files resolve against its folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    config = parse_config(data, env=env)
    return _resolve_files(config, path.parent)


def _resolve_files(config: GatewayConfig, base: Path) -> GatewayConfig:
    def fix(value: str | None) -> str | None:
        if value is None or Path(value).is_absolute():
            return value
        return str(base / value)

    models = [
        m.model_copy(
            update={
                "input": m.input.model_copy(update={"vocab_file": fix(m.input.vocab_file)}),
                "output": m.output.model_copy(update={"labels_file": fix(m.output.labels_file)}),
            }
        )
        for m in config.models
    ]
    return config.model_copy(update={"models": models})
