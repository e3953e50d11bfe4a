"""The central monitoring hub's spec: ``hub/hub.yaml`` (a :class:`HubSpec`).

Loading and saving the file live in :mod:`kubevc.generator.repo`; what the hub changes in the
rendered tree lives in :mod:`kubevc.generator.render`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from ..errors import SpecError
from ._names import check_label_value
from ._region import RegionSpec

HUB_NAME = "hub"
HUB_FILE = "hub/hub.yaml"
CREDENTIALS_SECRET = "kubevc-hub-remote-write"  # noqa: S105  (a Secret *name*)
REMOTE_WRITE_PATH = "/api/v1/write"
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
PROM_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def _https_url(value: str, key: str) -> str:
    parsed = urlparse(value)
    if parsed.username or parsed.password or "@" in parsed.netloc:
        # never echo the value: it holds a password
        raise ValueError(f"{key} must not carry credentials (they live in a SOPS-encrypted Secret)")
    if parsed.scheme != "https" or not parsed.hostname:
        raise ValueError(f"{key} {value!r} must be an https:// URL with a host")
    try:
        _ = parsed.port
    except ValueError as exc:
        raise ValueError(f"{key} {value!r} has an invalid port") from exc
    return value


class HubSpec(BaseModel):
    """``hub/hub.yaml``: the central monitoring cluster."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, validate_assignment=True
    )

    api_version: Literal["kubevc.io/v1"] = "kubevc.io/v1"
    kind: Literal["Hub"] = "Hub"
    api_endpoint: str
    kube_context: str | None = None
    remote_write_url: str | None = None
    retention: Annotated[str, Field(pattern=PROM_DURATION.pattern)] = "15d"
    credentials_secret: str = CREDENTIALS_SECRET
    ingress_class_name: str | None = None

    @field_validator("api_endpoint")
    @classmethod
    def _api(cls, value: str) -> str:
        return _https_url(value, "apiEndpoint")

    @field_validator("remote_write_url")
    @classmethod
    def _rw(cls, value: str | None) -> str | None:
        return None if value is None else _https_url(value, "remoteWriteUrl")

    @field_validator("credentials_secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        if len(value) > 253 or not DNS1123_SUBDOMAIN.match(value):
            raise ValueError(f"credentialsSecret {value!r} is not a valid Secret name")
        return value

    @property
    def effective_kube_context(self) -> str:
        return self.kube_context or HUB_NAME

    @property
    def effective_remote_write_url(self) -> str:
        """Where regions write: ``remoteWriteUrl``, else the hub's host on 443 at /api/v1/write."""
        if self.remote_write_url:
            return self.remote_write_url
        host = urlparse(self.api_endpoint).hostname or ""
        return f"https://{host}{REMOTE_WRITE_PATH}"

    @property
    def ingress_host(self) -> str:
        return urlparse(self.effective_remote_write_url).hostname or ""

    @property
    def ingress_path(self) -> str:
        return urlparse(self.effective_remote_write_url).path or REMOTE_WRITE_PATH

    def to_yaml_data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(by_alias=True, mode="json", exclude_none=True)
        return data


def check_hub_against_regions(hub: HubSpec, regions: Sequence[RegionSpec]) -> list[str]:
    """Problems that make ``hub`` unusable with ``regions`` (empty list = fine)."""
    problems: list[str] = []
    hub_hosts = {urlparse(hub.api_endpoint).hostname, hub.ingress_host}
    for region in regions:
        try:
            check_label_value(region.name)
        except SpecError as exc:
            problems.extend(exc.problems)
        if region.name == HUB_NAME:
            problems.append(
                f"region {region.name!r} clashes with the hub's folders (clusters/{HUB_NAME}/); "
                "rename the region"
            )
        if urlparse(region.api_endpoint).hostname in hub_hosts:
            problems.append(
                f"the hub cannot be region {region.name!r}: both use host "
                f"{urlparse(region.api_endpoint).hostname} (the hub must be its own cluster)"
            )
        if region.effective_kube_context == hub.effective_kube_context:
            problems.append(
                f"the hub's kube context {hub.effective_kube_context!r} is region {region.name!r}'s context"
            )
    return problems
