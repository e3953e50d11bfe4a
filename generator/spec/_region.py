"""Region, node, model and fleet-config models: what ``regions/<r>/region.yaml`` and
``kubevc-fleet.yaml`` hold.

Plain pydantic v2 models with ``extra="forbid"`` and camelCase aliases (the YAML spelling); no
file or git access here (loading and saving live in :mod:`kubevc.generator.repo`).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ._images import ImageCatalogue, RegionImages
from ._names import check_name
from ._notifications import NotificationTarget
from ._profiles import shipped_profile_names
from ._rollout import RolloutPlan
from ._runtimes import DEFAULT_RUNTIME, Runtime, TensorSpec
from ._safety import check_node_host, redact_url
from ._selector import check_label, check_user_label_key
from ._values import VALUES_CHARTS

FLEET_MARKER = "kubevc-fleet.yaml"

Architecture = Literal["amd64", "arm64", "armhf"]
Distribution = Literal["k3s", "kubeadm"]

DEFAULT_CIDRS: dict[str, tuple[str, str]] = {
    "k3s": ("10.42.0.0/16", "10.43.0.0/16"),
    "kubeadm": ("10.244.0.0/16", "10.96.0.0/12"),
}


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
        raise ValueError(f"git url {redact_url(value)!r} must be an https:// or ssh:// URL")


AcceleratorKind = Literal["nvidia", "jetson", "coral", "hailo"]
ModelAccelerator = Literal["nvidia", "coral", "hailo", "cpu"]
# A Kubernetes memory quantity (binary or decimal suffix): what `model add --min-memory` takes.
_MEMORY_QUANTITY = r"^[1-9][0-9]*(Ki|Mi|Gi|Ti|k|M|G|T)?$"
_QUANTITY_FACTORS = {
    "": 1,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def memory_bytes(quantity: str) -> int:
    """Bytes of a memory quantity (``4Gi``, ``512Mi``, ``8G``); ValueError for anything else."""
    digits = quantity.rstrip("KMGTikmgt")
    suffix = quantity[len(digits) :]
    if not digits.isdigit() or suffix not in _QUANTITY_FACTORS:
        raise ValueError(f"{quantity!r} is not a memory quantity (e.g. 512Mi, 4Gi, 8G)")
    return int(digits) * _QUANTITY_FACTORS[suffix]


class NodeAccelerator(_Model):
    """One kind of accelerator on a node, as `node prepare` found it."""

    kind: AcceleratorKind
    count: Annotated[int, Field(ge=1)] = 1
    model: str | None = None
    # device files (/dev/apex_0), PCI slots (01:00.0) or USB ids (18d1:9302) it was found by
    devices: list[str] = Field(default_factory=list)


class NodeInventory(_Model):
    """What `kubevc-gen node prepare` found on the node (``nodes[].inventory``); facts, not wishes:
    rewritten by every prepare run. ``validate`` and the render's placement read it."""

    arch: Architecture
    cpu_model: str | None = None
    cpus: Annotated[int, Field(ge=1)] | None = None
    memory_mib: Annotated[int | None, Field(ge=1, alias="memoryMiB")] = None
    accelerators: list[NodeAccelerator] = Field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        return [a.kind for a in self.accelerators]


class NodeSpec(_Model):
    host: Annotated[str, Field(min_length=1)]
    role: Literal["server", "agent"] = "agent"
    ssh_user: str = "root"
    ssh_port: Annotated[int, Field(ge=1, le=65535)] = 22
    ssh_key: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    # written by `kubevc-gen node prepare`; None until the node was prepared
    inventory: NodeInventory | None = None

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_node_host(value)  # never shell text: hosts reach SSH and pyinfra


class ModelSpec(_Model):
    """A model served in the region (TF Serving model config + gateway profile)."""

    name: str
    base_path: Annotated[str, Field(pattern=r"^/")]
    signature: str = "serving_default"
    # a name of generator/profiles/<profile>.yaml (kubevc.generator.spec.Profile)
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
    # the gateway -> server form of an image input (`model add` picks it from the SavedModel's
    # signature): encoded image bytes unchanged (DT_STRING input), or uint8/float16/float32 tensors;
    # None = the profile's input dtype
    wire: Literal["encoded", "uint8", "float16", "float32"] | None = None
    # where the model must run (`model add --accelerator`): a node of the region with this
    # accelerator (nvidia: a discrete GPU or a Jetson); None or cpu = any node
    accelerator: ModelAccelerator | None = None
    # the least memory a node must have for the model (`model add --min-memory`, e.g. 4Gi)
    min_memory: Annotated[str, Field(pattern=_MEMORY_QUANTITY)] | None = None
    # model server (unset = tfserving) and the Deployment serving it (unset = the model's name)
    runtime: Runtime | None = None
    serving_group: str | None = None
    # inputs/outputs for runtimes whose config lists them (Triton's config.pbtxt, MLServer)
    inputs: list[TensorSpec] | None = None
    outputs: list[TensorSpec] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        check_name(value, "model name")
        return value

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str) -> str:
        if value not in shipped_profile_names():
            names = ", ".join(shipped_profile_names())
            raise ValueError(f"unknown model profile {value!r} (profiles: {names})")
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

    @field_validator("serving_group")
    @classmethod
    def _serving_group(cls, value: str | None) -> str | None:
        if value is not None:
            check_name(value, "serving group")
        return value

    @property
    def serving_runtime(self) -> str:
        return self.runtime or DEFAULT_RUNTIME

    @property
    def group(self) -> str:
        """The serving group (one Deployment of the serving chart) this model belongs to."""
        return self.serving_group or self.name

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
    # selectable with --selector/-l (kubevc-gen region label); not written when empty
    labels: dict[str, str] = Field(default_factory=dict)
    # this region's image per workload, overriding the fleet's image catalogue
    images: RegionImages | None = None
    # chart values overriding what kubevc renders for this region, by chart (values.<chart>.<path>)
    values: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # SOPS-encrypted Secrets in apps/<name>/secrets/<secret>.sops.yaml (`kubevc-gen secret set`)
    secrets: list[str] = Field(default_factory=list)
    # where Flux error events of this region go (besides the fleet's own targets)
    notifications: list[NotificationTarget] = Field(default_factory=list)

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[str]) -> list[str]:
        for secret in value:
            check_name(secret, "secret name")
        if len(set(value)) != len(value):
            raise ValueError("secrets has duplicates")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        check_name(value)
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            check_label(check_user_label_key(key), label)
        return value

    @field_validator("values")
    @classmethod
    def _values(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for chart in value:
            if chart not in VALUES_CHARTS:
                raise ValueError(f"values: unknown chart {chart!r} (charts: {', '.join(VALUES_CHARTS)})")
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
        for key in ("labels", "values"):  # nor do empty labels or values
            if not data.get(key):
                data.pop(key, None)
        if not self.secrets:
            data.pop("secrets", None)
        if not self.notifications:
            data.pop("notifications", None)
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


class FleetConfig(_Model):
    """``kubevc-fleet.yaml`` at the fleet repo's root: marks the folder as a fleet repo."""

    api_version: Literal["kubevc.io/v1"] = "kubevc.io/v1"
    kind: Literal["Fleet"] = "Fleet"
    name: str = "fleet"
    git_url: str = "https://git.example.com/ops/fleet.git"
    branch: str = "main"
    namespace: str = "kubevc"
    # images per workload and platform, tried before the built-in ones (kubevc-gen image add)
    images: ImageCatalogue = Field(default_factory=ImageCatalogue)
    # the pip requirement the fleet's CI installs kubevc-gen from (git URL + revision, or a wheel)
    kubevc_source: str | None = None
    # notification targets of every region (each region's secret part: `secret set --namespace flux-system`)
    notifications: list[NotificationTarget] = Field(default_factory=list)
    # the waves, step sizes and soak time of `kubevc-gen rollout` (spec._rollout)
    rollout: RolloutPlan | None = None
