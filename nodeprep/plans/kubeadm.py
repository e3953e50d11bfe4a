"""The kubeadm plan: the typed configuration documents ``kubeadm init --config`` reads.

``kubeadm.k8s.io/v1beta4`` InitConfiguration and ClusterConfiguration documents (kubeadm >= 1.31)
plus a ``kubelet.config.k8s.io/v1beta1`` KubeletConfiguration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from .cluster import ClusterParams

__all__ = [
    "CONTAINERD_SOCKET",
    "KUBEADM_CONFIG_PATH",
    "KUBEADM_KUBECONFIG",
    "BootstrapTokenSpec",
    "ClusterConfiguration",
    "InitConfiguration",
    "KubeadmConfig",
    "KubeletConfiguration",
    "kubeadm_config",
    "kubeadm_init_command",
]

KUBEADM_CONFIG_PATH = "/etc/kubevc/kubeadm-config.yaml"
KUBEADM_KUBECONFIG = "/etc/kubernetes/admin.conf"
CONTAINERD_SOCKET = "unix:///run/containerd/containerd.sock"


@dataclass(frozen=True)
class BootstrapTokenSpec:
    ttl: str
    description: str
    usages: tuple[str, ...] = ("signing", "authentication")
    groups: tuple[str, ...] = ("system:bootstrappers:kubeadm:default-node-token",)

    def to_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "ttl": self.ttl,
            "usages": list(self.usages),
            "groups": list(self.groups),
        }


@dataclass(frozen=True)
class InitConfiguration:
    node_name: str
    cri_socket: str = CONTAINERD_SOCKET
    advertise_address: str | None = None
    # kubeadm always creates one token at init; keep it to a minute (joins mint their own).
    bootstrap_tokens: tuple[BootstrapTokenSpec, ...] = (
        BootstrapTokenSpec(ttl="1m0s", description="kubevc: init-time token, expires within a minute"),
    )

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "InitConfiguration",
            "bootstrapTokens": [t.to_dict() for t in self.bootstrap_tokens],
            "nodeRegistration": {"name": self.node_name, "criSocket": self.cri_socket},
        }
        if self.advertise_address:
            doc["localAPIEndpoint"] = {"advertiseAddress": self.advertise_address}
        return doc


@dataclass(frozen=True)
class ClusterConfiguration:
    cluster_name: str
    kubernetes_version: str
    control_plane_endpoint: str
    pod_subnet: str
    service_subnet: str
    cert_sans: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "ClusterConfiguration",
            "clusterName": self.cluster_name,
            "kubernetesVersion": self.kubernetes_version,
            "controlPlaneEndpoint": self.control_plane_endpoint,
            "networking": {"podSubnet": self.pod_subnet, "serviceSubnet": self.service_subnet},
        }
        if self.cert_sans:
            doc["apiServer"] = {"certSANs": list(self.cert_sans)}
        return doc


@dataclass(frozen=True)
class KubeletConfiguration:
    cgroup_driver: str = "systemd"

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "cgroupDriver": self.cgroup_driver,
        }


@dataclass(frozen=True)
class KubeadmConfig:
    init: InitConfiguration
    cluster: ClusterConfiguration
    kubelet: KubeletConfiguration = field(default_factory=KubeletConfiguration)

    def documents(self) -> list[dict[str, Any]]:
        return [self.init.to_dict(), self.cluster.to_dict(), self.kubelet.to_dict()]

    def to_yaml(self) -> str:
        header = "# Written by kubevc (kubevc-gen cluster init) for `kubeadm init --config`.\n"
        return header + yaml.safe_dump_all(self.documents(), default_flow_style=False, sort_keys=False)


def kubeadm_config(params: ClusterParams) -> KubeadmConfig:
    return KubeadmConfig(
        init=InitConfiguration(node_name=params.node_name, advertise_address=params.advertise_address),
        cluster=ClusterConfiguration(
            cluster_name=params.cluster_name,
            kubernetes_version=params.kubernetes_version,
            control_plane_endpoint=f"{params.endpoint_host}:{params.endpoint_port}",
            pod_subnet=params.pod_cidr,
            service_subnet=params.service_cidr,
            cert_sans=params.tls_sans,
        ),
    )


def kubeadm_init_command() -> str:
    return f"kubeadm init --config {KUBEADM_CONFIG_PATH} --skip-token-print"
