"""Typed models of the Flux objects kubevc emits (only the fields it uses).

Written from the published Flux API reference for the current versions:
``source.toolkit.fluxcd.io/v1`` (GitRepository, HelmRepository),
``kustomize.toolkit.fluxcd.io/v1`` (Kustomization) and ``helm.toolkit.fluxcd.io/v2``
(HelmRelease). Every model forbids unknown fields, so ``kubevc-gen validate`` can parse any
Flux object found in a fleet tree with :func:`parse_flux_object` and report a typo by path.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "CURRENT_API_VERSIONS",
    "DURATION",
    "FluxObject",
    "GitRepository",
    "HelmRelease",
    "HelmRepository",
    "Kustomization",
    "parse_flux_object",
]

DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")

SOURCE_V1: Literal["source.toolkit.fluxcd.io/v1"] = "source.toolkit.fluxcd.io/v1"
KUSTOMIZE_V1: Literal["kustomize.toolkit.fluxcd.io/v1"] = "kustomize.toolkit.fluxcd.io/v1"
HELM_V2: Literal["helm.toolkit.fluxcd.io/v2"] = "helm.toolkit.fluxcd.io/v2"

CURRENT_API_VERSIONS: dict[str, str] = {
    "GitRepository": SOURCE_V1,
    "HelmRepository": SOURCE_V1,
    "Kustomization": KUSTOMIZE_V1,
    "HelmRelease": HELM_V2,
}
FLUX_GROUPS = ("source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io")


Duration = Annotated[str, Field(pattern=DURATION.pattern)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def dump(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        return data


class ObjectMeta(_Spec):
    name: str
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class CrossNamespaceRef(_Spec):
    api_version: str | None = Field(default=None, alias="apiVersion")
    kind: str
    name: str
    namespace: str | None = None


class LocalRef(_Spec):
    name: str


class DependsOn(_Spec):
    name: str
    namespace: str | None = None


class GitRef(_Spec):
    branch: str | None = None
    tag: str | None = None
    semver: str | None = None
    name: str | None = None
    commit: str | None = None


class GitRepositorySpec(_Spec):
    url: str
    interval: Duration
    timeout: Duration | None = None
    ref: GitRef | None = None
    secret_ref: LocalRef | None = Field(default=None, alias="secretRef")
    ignore: str | None = None


class HelmRepositorySpec(_Spec):
    url: str
    interval: Duration
    timeout: Duration | None = None
    type: Literal["default", "oci"] | None = None


class Decryption(_Spec):
    provider: Literal["sops"]
    secret_ref: LocalRef | None = Field(default=None, alias="secretRef")


class KustomizationSpec(_Spec):
    interval: Duration
    retry_interval: Duration | None = Field(default=None, alias="retryInterval")
    timeout: Duration | None = None
    path: str
    prune: bool
    wait: bool | None = None
    source_ref: CrossNamespaceRef = Field(alias="sourceRef")
    depends_on: list[DependsOn] | None = Field(default=None, alias="dependsOn")
    decryption: Decryption | None = None
    target_namespace: str | None = Field(default=None, alias="targetNamespace")
    suspend: bool | None = None


class HelmChartTemplateSpec(_Spec):
    chart: str
    version: str | None = None
    source_ref: CrossNamespaceRef = Field(alias="sourceRef")
    interval: Duration | None = None
    reconcile_strategy: Literal["ChartVersion", "Revision"] | None = Field(
        default=None, alias="reconcileStrategy"
    )


class HelmChartTemplate(_Spec):
    spec: HelmChartTemplateSpec


class Remediation(_Spec):
    retries: int | None = None
    remediate_last_failure: bool | None = Field(default=None, alias="remediateLastFailure")


class Install(_Spec):
    create_namespace: bool | None = Field(default=None, alias="createNamespace")
    crds: Literal["Skip", "Create", "CreateReplace"] | None = None
    remediation: Remediation | None = None
    timeout: Duration | None = None


class Upgrade(_Spec):
    crds: Literal["Skip", "Create", "CreateReplace"] | None = None
    cleanup_on_fail: bool | None = Field(default=None, alias="cleanupOnFail")
    remediation: Remediation | None = None
    timeout: Duration | None = None


class DriftDetection(_Spec):
    mode: Literal["enabled", "warn", "disabled"]


class ValuesReference(_Spec):
    kind: Literal["ConfigMap", "Secret"]
    name: str
    values_key: str | None = Field(default=None, alias="valuesKey")
    target_path: str | None = Field(default=None, alias="targetPath")
    optional: bool | None = None


class HelmReleaseSpec(_Spec):
    interval: Duration
    timeout: Duration | None = None
    chart: HelmChartTemplate
    release_name: str | None = Field(default=None, alias="releaseName")
    target_namespace: str | None = Field(default=None, alias="targetNamespace")
    depends_on: list[DependsOn] | None = Field(default=None, alias="dependsOn")
    install: Install | None = None
    upgrade: Upgrade | None = None
    drift_detection: DriftDetection | None = Field(default=None, alias="driftDetection")
    values: dict[str, Any] | None = None
    values_from: list[ValuesReference] | None = Field(default=None, alias="valuesFrom")


class FluxObject(_Spec):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: ObjectMeta

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.metadata.namespace or 'default'}/{self.metadata.name}"


class GitRepository(FluxObject):
    api_version: Literal["source.toolkit.fluxcd.io/v1"] = Field(default=SOURCE_V1, alias="apiVersion")
    kind: Literal["GitRepository"] = "GitRepository"
    spec: GitRepositorySpec


class HelmRepository(FluxObject):
    api_version: Literal["source.toolkit.fluxcd.io/v1"] = Field(default=SOURCE_V1, alias="apiVersion")
    kind: Literal["HelmRepository"] = "HelmRepository"
    spec: HelmRepositorySpec


class Kustomization(FluxObject):
    api_version: Literal["kustomize.toolkit.fluxcd.io/v1"] = Field(default=KUSTOMIZE_V1, alias="apiVersion")
    kind: Literal["Kustomization"] = "Kustomization"
    spec: KustomizationSpec


class HelmRelease(FluxObject):
    api_version: Literal["helm.toolkit.fluxcd.io/v2"] = Field(default=HELM_V2, alias="apiVersion")
    kind: Literal["HelmRelease"] = "HelmRelease"
    spec: HelmReleaseSpec


_MODELS: dict[str, type[FluxObject]] = {
    "GitRepository": GitRepository,
    "HelmRepository": HelmRepository,
    "Kustomization": Kustomization,
    "HelmRelease": HelmRelease,
}


def is_flux(obj: dict[str, Any]) -> bool:
    api = str(obj.get("apiVersion", ""))
    return api.split("/")[0] in FLUX_GROUPS


def parse_flux_object(obj: dict[str, Any]) -> tuple[FluxObject | None, list[str]]:
    """Parse a Flux object strictly; return it (or None) and the problems found."""
    kind = str(obj.get("kind", ""))
    api = str(obj.get("apiVersion", ""))
    model = _MODELS.get(kind)
    if model is None:
        return None, [f"{api} {kind}: kubevc does not emit this Flux kind"]
    if api != CURRENT_API_VERSIONS[kind]:
        return None, [f"{kind} uses apiVersion {api}; the current version is {CURRENT_API_VERSIONS[kind]}"]
    try:
        return model.model_validate(obj), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{kind}: {loc}: {msg}")
        return None, problems
