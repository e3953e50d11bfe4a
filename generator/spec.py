"""Region, node and model specs: the source of truth an operator edits (``regions/<r>/region.yaml``).

Plain pydantic v2 models with ``extra="forbid"`` and camelCase aliases (the YAML spelling).
The same models serve the generator (``kubevc-gen region ...``, ``render``) and the nodeprep
commands (``kubevc-gen node ...``/``cluster ...``), which reach them through :class:`Fleet`.

Loading a file turns every problem into a :class:`SpecError` whose lines read
``regions/seoul/region.yaml:7: nodes[0].sshUsr: unknown key``.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from . import yamlio

__all__ = [
    "DNS1123_LABEL",
    "FLEET_MARKER",
    "Fleet",
    "FleetConfig",
    "GitSpec",
    "IscsiStorage",
    "ModelSpec",
    "NfsStorage",
    "NodeSpec",
    "RegionSpec",
    "SpecError",
    "StorageSpec",
    "check_name",
    "load_region",
    "parse_region",
    "region_path",
    "region_to_yaml",
    "save_region",
]

FLEET_MARKER = "kubevc-fleet.yaml"
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

Architecture = Literal["amd64", "arm64", "armhf"]
Distribution = Literal["k3s", "kubeadm"]

DEFAULT_CIDRS: dict[str, tuple[str, str]] = {
    "k3s": ("10.42.0.0/16", "10.43.0.0/16"),
    "kubeadm": ("10.244.0.0/16", "10.96.0.0/12"),
}


class SpecError(ValueError):
    """Invalid input; ``problems`` holds one human-readable line per finding."""

    def __init__(self, problems: Sequence[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def check_name(name: str, what: str = "region name") -> str:
    """Return ``name`` if it is a DNS-1123 label (so it can neither escape the repo nor clash)."""
    if not isinstance(name, str) or not DNS1123_LABEL.match(name):
        raise SpecError(
            f"{what} {name!r} is not a DNS-1123 label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return name


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        validate_assignment=True,
    )

    def to_yaml_data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(by_alias=True, mode="json", exclude_none=True)
        return data


class NfsStorage(_Model):
    server: Annotated[str, Field(min_length=1)]
    path: Annotated[str, Field(pattern=r"^/")]


class IscsiStorage(_Model):
    portal: Annotated[str, Field(min_length=1, description="host:port of the iSCSI target portal")]
    iqn: Annotated[str, Field(pattern=r"^(iqn\.\d{4}-\d{2}\.[^\s]+|eui\.[0-9A-Fa-f]{16})$")]
    lun: Annotated[int, Field(ge=0, le=16383)]
    fs_type: str = "ext4"


class StorageSpec(_Model):
    """Where the model store lives: exactly one of ``nfs`` or ``iscsi``."""

    nfs: NfsStorage | None = None
    iscsi: IscsiStorage | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> StorageSpec:
        if (self.nfs is None) == (self.iscsi is None):
            raise ValueError("exactly one of storage.nfs or storage.iscsi must be set")
        return self

    @property
    def kind(self) -> str:
        return "nfs" if self.nfs is not None else "iscsi"


class GitSpec(_Model):
    url: Annotated[str, Field(min_length=1)]
    branch: Annotated[str, Field(min_length=1)] = "main"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme in ("https", "http", "ssh") and parsed.netloc:
            return value
        raise ValueError(f"git url {value!r} must be an https:// or ssh:// URL")


class NodeSpec(_Model):
    host: Annotated[str, Field(min_length=1)]
    role: Literal["server", "agent"] = "agent"
    ssh_user: str = "root"
    ssh_port: Annotated[int, Field(ge=1, le=65535)] = 22
    ssh_key: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class ModelSpec(_Model):
    """A model served in the region (TF Serving model config + gateway profile)."""

    name: str
    base_path: Annotated[str, Field(pattern=r"^/")]
    signature: str = "serving_default"
    # a name of generator/profiles/<profile>.yaml (kubevc.generator.model_profiles)
    profile: str = "classification"
    version_policy: Literal["latest", "all", "specific"] = "latest"
    versions: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list)
    version_labels: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    # `kubevc-gen model ...` keys; None = not written to region.yaml
    framework: Literal["tensorflow"] | None = None
    labels_file: Annotated[str, Field(pattern=r"^models/[a-z0-9][-a-z0-9]*/[^/]+$")] | None = None
    stable_history: list[Annotated[int, Field(ge=1)]] | None = None  # earlier stable versions, newest last
    # share (%) of the requests naming no version/label that the gateway sends to the canary label;
    # None = unset (rendered as 0 while a canary runs: everyone stays on stable)
    canary_percent: Annotated[int, Field(ge=0, le=100, strict=True)] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        check_name(value, "model name")
        return value

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str) -> str:
        from .model_profiles import profile_names

        if value not in profile_names():
            raise ValueError(f"unknown model profile {value!r} (profiles: {', '.join(profile_names())})")
        return value

    @model_validator(mode="after")
    def _policy(self) -> ModelSpec:
        if self.version_policy == "specific" and not self.versions:
            raise ValueError("versionPolicy 'specific' needs at least one entry in versions")
        if self.canary_percent is not None and not self.has_canary:
            raise ValueError(
                "canaryPercent needs both a 'stable' and a 'canary' entry in versionLabels "
                "(kubevc-gen model promote NAME --version N --label canary)"
            )
        return self

    @property
    def has_canary(self) -> bool:
        """A canary runs: the gateway splits traffic between labels ``stable`` and ``canary``."""
        return {"stable", "canary"} <= set(self.version_labels)


def _cidr(value: str, field: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{field} {value!r} is not a valid CIDR: {exc}") from exc
    return str(net)


def _default_archs() -> list[Architecture]:
    return ["amd64"]


class RegionSpec(_Model):
    """One region = one edge cluster."""

    name: str
    api_endpoint: str
    kube_context: str | None = None
    distribution: Distribution = "k3s"
    cluster_name: str | None = None
    pod_cidr: str | None = None
    service_cidr: str | None = None
    architectures: Annotated[list[Architecture], Field(min_length=1)] = Field(default_factory=_default_archs)
    storage: StorageSpec
    monitoring: bool = True
    # maintenance window: the region's Flux Kustomizations (not the flux-system sync) get spec.suspend
    suspended: bool = False
    git: GitSpec
    nodes: list[NodeSpec] = Field(default_factory=list)
    models: list[ModelSpec] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        check_name(value)
        return value

    @field_validator("cluster_name")
    @classmethod
    def _cluster_name(cls, value: str | None) -> str | None:
        if value is not None:
            check_name(value, "cluster name")
        return value

    @field_validator("api_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme != "https" or not parsed.hostname:
            raise ValueError(
                f"apiEndpoint {value!r} must be an https:// URL with a host (e.g. https://10.8.0.1:6443)"
            )
        try:
            _ = parsed.port
        except ValueError as exc:
            raise ValueError(f"apiEndpoint {value!r} has an invalid port") from exc
        return value

    @field_validator("pod_cidr")
    @classmethod
    def _pod(cls, value: str | None) -> str | None:
        return None if value is None else _cidr(value, "podCidr")

    @field_validator("service_cidr")
    @classmethod
    def _svc(cls, value: str | None) -> str | None:
        return None if value is None else _cidr(value, "serviceCidr")

    @field_validator("architectures")
    @classmethod
    def _archs(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("architectures has duplicates")
        return value

    @model_validator(mode="after")
    def _cross(self) -> RegionSpec:
        pod = ipaddress.ip_network(self.effective_pod_cidr)
        svc = ipaddress.ip_network(self.effective_service_cidr)
        if pod.version == svc.version and pod.overlaps(svc):
            raise ValueError(f"podCidr {pod} and serviceCidr {svc} overlap")
        hosts = [n.host for n in self.nodes]
        if len(set(hosts)) != len(hosts):
            raise ValueError("nodes: duplicate host")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError("models: duplicate model name")
        return self

    def to_yaml_data(self) -> dict[str, Any]:
        data = super().to_yaml_data()
        if not self.suspended:  # only a suspended region carries the key in region.yaml
            data.pop("suspended", None)
        return data

    @property
    def effective_kube_context(self) -> str:
        return self.kube_context or self.name

    @property
    def effective_cluster_name(self) -> str:
        return self.cluster_name or self.name

    @property
    def effective_pod_cidr(self) -> str:
        return self.pod_cidr or DEFAULT_CIDRS[self.distribution][0]

    @property
    def effective_service_cidr(self) -> str:
        return self.service_cidr or DEFAULT_CIDRS[self.distribution][1]


def _loc_text(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def format_validation_error(exc: ValidationError, filename: str, raw: Any = None) -> list[str]:
    """One line per pydantic error: ``file:line: key.path: message``."""
    problems: list[str] = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if isinstance(p, str | int)]
        # pydantic puts the union member / validator name into loc for some errors; drop non-keys
        loc = [p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
        line = yamlio.line_of(raw, loc) if raw is not None else None
        where = f"{filename}:{line}" if line else filename
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not part of the region spec; check the spelling)"
            if loc and isinstance(loc[-1], str):
                from .setkeys import fields_at

                close = difflib.get_close_matches(loc[-1], fields_at(loc[:-1]), n=1)
                if close:
                    msg = f"unknown key (did you mean {close[0]!r}?)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {_loc_text(loc)}: {msg}")
    return problems


def parse_region(text: str, filename: str = "region.yaml") -> tuple[RegionSpec, Any]:
    """Parse and validate region YAML; return the spec and the round-trip document."""
    try:
        raw = yamlio.load_roundtrip(text, filename)
    except yamlio.YamlError as exc:
        raise SpecError(str(exc)) from None
    if not isinstance(raw, dict):
        raise SpecError(f"{filename}:1: a region file must be a mapping of keys to values")
    try:
        spec = RegionSpec.model_validate(yamlio.to_plain(raw))
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, filename, raw)) from None
    return spec, raw


def region_path(fleet_root: Path, name: str) -> Path:
    check_name(name)
    return fleet_root / "regions" / name / "region.yaml"


def load_region(fleet_root: Path, name: str) -> RegionSpec:
    """Load and validate ``regions/<name>/region.yaml``."""
    path = region_path(fleet_root, name)
    rel = path.relative_to(fleet_root).as_posix()
    if not path.is_file():
        raise SpecError(f"region {name!r} not found ({rel} does not exist)")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{rel}: cannot read: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"{rel}: not UTF-8 text: {exc}") from exc
    spec, _ = parse_region(text, rel)
    if spec.name != name:
        raise SpecError(f"{rel}: name: {spec.name!r} does not match its folder regions/{name}/")
    return spec


REGION_HEADER = (
    "Region spec: the source of truth for this region's part of the fleet.\n"
    "Edit it by hand or with `kubevc-gen region set`, then run `kubevc-gen render`."
)


def _merge_into(target: Any, source: Any) -> Any:
    """Copy ``source`` (plain data) into round-trip ``target`` keeping comments and key order."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(target, CommentedMap) and isinstance(source, dict):
        for key in [k for k in target if k not in source]:
            del target[key]
        for key, value in source.items():
            if key in target:
                target[key] = _merge_into(target[key], value)
            else:
                target[key] = value
        return target
    if isinstance(target, CommentedSeq) and isinstance(source, list):
        while len(target) > len(source):
            target.pop()
        for i, value in enumerate(source):
            if i < len(target):
                target[i] = _merge_into(target[i], value)
            else:
                target.append(value)
        return target
    if type(target) is not type(source) and str(target) == str(source) and isinstance(source, str):
        return target  # keep the quoting style of an unchanged string
    return source


def region_to_yaml(spec: RegionSpec, previous_text: str | None = None) -> str:
    """Serialise ``spec``; when ``previous_text`` is given its comments and key order are kept."""
    data = spec.to_yaml_data()
    if previous_text is None:
        doc = yamlio.load_roundtrip(yamlio.dump_generated(data, REGION_HEADER))
        return yamlio.dump_roundtrip(doc)
    doc = yamlio.load_roundtrip(previous_text)
    doc = _merge_into(doc, data)
    return yamlio.dump_roundtrip(doc)


def save_region(fleet_root: Path, spec: RegionSpec) -> Path:
    """Write ``regions/<name>/region.yaml`` atomically, keeping comments of an existing file.

    This writes only; to write *and* commit as one operation use
    :func:`kubevc.generator.gitops.apply_change` (or :meth:`Fleet.write_regions`).
    """
    path = region_path(fleet_root, spec.name)
    previous = path.read_text(encoding="utf-8") if path.is_file() else None
    yamlio.atomic_write(path, region_to_yaml(spec, previous).encode())
    return path


class FleetConfig(_Model):
    """``kubevc-fleet.yaml`` at the fleet repo's root: marks the folder as a fleet repo."""

    api_version: Literal["kubevc.io/v1"] = "kubevc.io/v1"
    kind: Literal["Fleet"] = "Fleet"
    name: str = "fleet"
    git_url: str = "https://git.example.com/ops/fleet.git"
    branch: str = "main"
    namespace: str = "kubevc"


@dataclass(frozen=True)
class Fleet:
    """A fleet repo on disk: its root, its regions and its git helper.

    Typical use (e.g. ``kubevc-gen node add``)::

        fleet = Fleet.find(Path.cwd())
        spec = fleet.load("seoul")
        spec.nodes.append(NodeSpec(host="10.0.0.5", role="agent"))
        fleet.write_regions([spec], message="node add seoul 10.0.0.5", options=opts)
    """

    root: Path

    @classmethod
    def find(cls, start: Path) -> Fleet:
        """The fleet repo at ``start`` (the ``--fleet`` option); error when it is not one."""
        root = start.resolve()
        if not (root / FLEET_MARKER).is_file():
            raise SpecError(
                f"{root} is not a kubevc fleet repo (no {FLEET_MARKER}); "
                "create one with `kubevc-gen init PATH` or pass --fleet PATH"
            )
        if not (root / ".git").exists():
            raise SpecError(f"{root} is not a git repository (fleet repos are git work trees)")
        return cls(root)

    @property
    def config(self) -> FleetConfig:
        path = self.root / FLEET_MARKER
        raw = yamlio.load_roundtrip(path.read_text(encoding="utf-8"), FLEET_MARKER)
        try:
            return FleetConfig.model_validate(yamlio.to_plain(raw or {}))
        except ValidationError as exc:
            raise SpecError(format_validation_error(exc, FLEET_MARKER, raw)) from None

    @property
    def git(self) -> Any:
        from .gitops import Git

        return Git(self.root)

    def region_names(self) -> list[str]:
        base = self.root / "regions"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "region.yaml").is_file())

    def regions(self) -> Iterator[RegionSpec]:
        for name in self.region_names():
            yield self.load(name)

    def load(self, name: str) -> RegionSpec:
        return load_region(self.root, name)

    def load_all(self) -> list[RegionSpec]:
        """Every region, all problems collected into one :class:`SpecError`."""
        specs: list[RegionSpec] = []
        problems: list[str] = []
        for name in self.region_names():
            try:
                specs.append(self.load(name))
            except SpecError as exc:
                problems.extend(exc.problems)
        if problems:
            raise SpecError(problems)
        return specs

    def write_regions(self, specs: Sequence[RegionSpec], message: str, options: Any = None) -> Any:
        """Validate, write the regions' files and re-render, then commit: one mutating operation."""
        from .gitops import ChangeOptions, apply_change
        from .render import plan_with_regions

        change = plan_with_regions(self, list(specs), message=message)
        return apply_change(self, change, options or ChangeOptions())
