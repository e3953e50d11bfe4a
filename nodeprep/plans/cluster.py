"""The inputs of ``cluster init`` as plain values, shared by the k3s and the kubeadm plans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlparse

__all__ = ["DEFAULT_K3S_VERSION", "DEFAULT_KUBERNETES_VERSION", "ClusterParams", "Distribution"]

DEFAULT_K3S_VERSION = "v1.31.4+k3s1"
DEFAULT_KUBERNETES_VERSION = "v1.31.4"

Distribution = Literal["k3s", "kubeadm"]


@dataclass(frozen=True)
class ClusterParams:
    """Everything ``cluster init`` needs, as plain values (the generator maps region.yaml here)."""

    region: str
    distribution: Distribution
    api_endpoint: str  # https://host[:port], the address the operator reaches (VPN/port-forward)
    cluster_name: str
    pod_cidr: str
    service_cidr: str
    node_name: str
    advertise_address: str | None = None
    k3s_version: str = DEFAULT_K3S_VERSION
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    flannel_backend: str = "vxlan"
    cni_manifest: str | None = None  # kubeadm: URL or path on the node, applied after init
    k3s_binary: str | None = None  # local file: air-gapped install (no download on the node)
    k3s_images: str | None = None  # local images archive for the air-gapped install
    k3s_installer: str | None = None  # local copy of the k3s install script
    extra_sans: tuple[str, ...] = ()

    @property
    def endpoint_host(self) -> str:
        parsed = urlparse(self.api_endpoint)
        if parsed.scheme != "https" or not parsed.hostname:
            raise ValueError(f"api endpoint {self.api_endpoint!r} must be an https:// URL with a host")
        return parsed.hostname

    @property
    def endpoint_port(self) -> int:
        return urlparse(self.api_endpoint).port or 6443

    @property
    def tls_sans(self) -> tuple[str, ...]:
        sans = [self.endpoint_host, *self.extra_sans]
        return tuple(dict.fromkeys(sans))
