"""``cluster init``: k3s or kubeadm on the region's server node.

The plans (k3s config file, installer environment and server arguments; kubeadm's typed
configuration documents) are pure and follow the documented contracts of the two tools:

* k3s reads ``/etc/rancher/k3s/config.yaml`` whose keys are the ``k3s server`` flag names
  without dashes; the installer script takes ``INSTALL_K3S_VERSION`` (pinned release),
  ``INSTALL_K3S_EXEC`` (the server command and flags) and, for an air-gapped install with the
  binary already at ``/usr/local/bin/k3s``, ``INSTALL_K3S_SKIP_DOWNLOAD=true``; images archives
  placed in ``/var/lib/rancher/k3s/agent/images/`` are imported at start.
* kubeadm reads ``kubeadm init --config FILE`` with ``kubeadm.k8s.io/v1beta4`` InitConfiguration
  and ClusterConfiguration documents (kubeadm >= 1.31) plus a ``kubelet.config.k8s.io/v1beta1``
  KubeletConfiguration.
"""

from __future__ import annotations

import hashlib
import io
import shlex
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

import yaml
from pyinfra.api.command import FileUploadCommand, StringCommand
from pyinfra.api.facts import FactBase
from pyinfra.api.host import Host
from pyinfra.api.operation import operation
from pyinfra.api.state import State
from pyinfra.context import host
from typing_extensions import override

from .facts import FileBytes, NodePlatform
from .operations import file_commands
from .runner import RunReport, Target, pyinfra_session, run_deploy

__all__ = [
    "DEFAULT_K3S_VERSION",
    "DEFAULT_KUBERNETES_VERSION",
    "K3S_CONFIG_PATH",
    "K3S_KUBECONFIG",
    "KUBEADM_CONFIG_PATH",
    "KUBEADM_KUBECONFIG",
    "ClusterParams",
    "K3sPlan",
    "KubeadmConfig",
    "init_cluster",
    "k3s_plan",
    "kubeadm_config",
]

DEFAULT_K3S_VERSION = "v1.31.4+k3s1"
DEFAULT_KUBERNETES_VERSION = "v1.31.4"
K3S_CONFIG_PATH = "/etc/rancher/k3s/config.yaml"
K3S_KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
K3S_BINARY = "/usr/local/bin/k3s"
K3S_IMAGES_DIR = "/var/lib/rancher/k3s/agent/images"
K3S_INSTALLER_REMOTE = "/var/lib/kubevc/k3s-install.sh"
K3S_INSTALLER_URL = "https://get.k3s.io"
KUBEADM_CONFIG_PATH = "/etc/kubevc/kubeadm-config.yaml"
KUBEADM_KUBECONFIG = "/etc/kubernetes/admin.conf"
CONTAINERD_SOCKET = "unix:///run/containerd/containerd.sock"


@dataclass(frozen=True)
class ClusterParams:
    """Everything ``cluster init`` needs, as plain values (the generator maps region.yaml here)."""

    region: str
    distribution: Literal["k3s", "kubeadm"]
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


# --- k3s ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class K3sPlan:
    config: dict[str, Any]
    server_args: tuple[str, ...]
    install_env: dict[str, str]
    airgap: bool

    def config_yaml(self) -> str:
        header = "# Written by kubevc (kubevc-gen cluster init); k3s reads it at every start.\n"
        return header + yaml.safe_dump(self.config, default_flow_style=False, sort_keys=False)

    def install_command(self) -> str:
        """The installer invocation (environment, then the script from the node or get.k3s.io)."""
        env = " ".join(f"{key}={shlex.quote(value)}" for key, value in self.install_env.items())
        if self.airgap:
            return f"{env} sh {K3S_INSTALLER_REMOTE}"
        return f"curl -sfL {K3S_INSTALLER_URL} | {env} sh -s -"


def k3s_plan(params: ClusterParams) -> K3sPlan:
    config: dict[str, Any] = {
        "node-name": params.node_name,
        "cluster-cidr": params.pod_cidr,
        "service-cidr": params.service_cidr,
        "tls-san": list(params.tls_sans),
        "flannel-backend": params.flannel_backend,
        "write-kubeconfig-mode": "0600",
    }
    if params.advertise_address:
        config["advertise-address"] = params.advertise_address
    args: list[str] = ["server"]
    for key, value in config.items():
        for item in value if isinstance(value, list) else [value]:
            args += [f"--{key}", str(item)]
    airgap = params.k3s_binary is not None
    if airgap and not params.k3s_installer:
        raise ValueError("an air-gapped k3s install needs the install script as a local file too")
    env = {
        "INSTALL_K3S_VERSION": params.k3s_version,
        # the flags live in config.yaml; the exec line only names the server role
        "INSTALL_K3S_EXEC": "server",
    }
    if airgap:
        env["INSTALL_K3S_SKIP_DOWNLOAD"] = "true"
    return K3sPlan(config=config, server_args=tuple(args), install_env=env, airgap=airgap)


class K3sVersion(FactBase[str | None]):
    """The installed k3s release (``v1.31.4+k3s1``) or None."""

    @override
    def command(self) -> str:
        return f"if [ -x {K3S_BINARY} ]; then {K3S_BINARY} --version 2>/dev/null | head -n1; fi"

    @override
    def process(self, output: list[str]) -> str | None:
        for word in " ".join(output).split():
            if word.startswith("v") and "+k3s" in word:
                return word
        return None


class FileSha256(FactBase[str | None]):
    @override
    def command(self, path: str) -> str:
        quoted = shlex.quote(path)
        return f"if [ -f {quoted} ]; then sha256sum {quoted} | cut -d' ' -f1; fi"

    @override
    def process(self, output: list[str]) -> str | None:
        return output[0].strip() if output and output[0].strip() else None


def _upload_if_differs(local: str, remote: str, mode: str) -> Generator[Any, None, None]:
    with open(local, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    if host.get_fact(FileSha256, path=remote) != digest:
        yield StringCommand("mkdir", "-p", shlex.quote(remote.rsplit("/", 1)[0]))
        yield FileUploadCommand(local, remote)
        yield StringCommand("chmod", mode, shlex.quote(remote))


@operation()
def k3s_server(params: ClusterParams) -> Generator[Any, None, None]:
    """Install the pinned k3s server with kubevc's config file (reinstall only on a version change)."""
    plan = k3s_plan(params)
    # read every fact before the first yield: commands run as they are yielded, so a fact read
    # later would already see this operation's own uploads
    installed = host.get_fact(K3sVersion)
    yield from file_commands(K3S_CONFIG_PATH, plan.config_yaml(), mode="600")
    if plan.airgap:
        assert params.k3s_binary is not None and params.k3s_installer is not None
        yield from _upload_if_differs(params.k3s_binary, K3S_BINARY, "755")
        yield from _upload_if_differs(params.k3s_installer, K3S_INSTALLER_REMOTE, "755")
        if params.k3s_images:
            name = params.k3s_images.rsplit("/", 1)[-1]
            yield from _upload_if_differs(params.k3s_images, f"{K3S_IMAGES_DIR}/{name}", "644")
    if installed != params.k3s_version:
        yield plan.install_command()


# --- kubeadm --------------------------------------------------------------------------------------


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


@operation()
def kubeadm_server(params: ClusterParams) -> Generator[Any, None, None]:
    """Write kubeadm-config.yaml and run ``kubeadm init`` once (never over an existing control plane)."""
    initialised = host.get_fact(FileBytes, path=KUBEADM_KUBECONFIG) is not None
    yield from file_commands(KUBEADM_CONFIG_PATH, kubeadm_config(params).to_yaml(), mode="600")
    if not initialised:
        yield kubeadm_init_command()
        if params.cni_manifest:
            yield StringCommand(
                "kubectl", "--kubeconfig", KUBEADM_KUBECONFIG, "apply", "-f", shlex.quote(params.cni_manifest)
            )


# --- running it -----------------------------------------------------------------------------------


def fetch_admin_kubeconfig(state: State, target_host: Host, distribution: str) -> str:
    """Read the admin kubeconfig from the server node (never logged)."""
    remote = K3S_KUBECONFIG if distribution == "k3s" else KUBEADM_KUBECONFIG
    buffer = io.BytesIO()
    sudo = bool(getattr(target_host.data, "_sudo", False))
    if not target_host.get_file(remote, buffer, _sudo=sudo):
        raise RuntimeError(f"could not read {remote} on {target_host.name}")
    return buffer.getvalue().decode()


def init_cluster(
    target: Target,
    params: ClusterParams,
    *,
    dry_run: bool = False,
    on_kubeconfig: Callable[[str], None] | None = None,
) -> RunReport:
    """Install the server and hand its admin kubeconfig to ``on_kubeconfig`` (not in a dry run)."""

    def deploy(state: State, target_host: Host) -> list[str]:
        platform = target_host.get_fact(NodePlatform)
        platform.check_supported()
        if params.distribution == "k3s":
            k3s_server(params=params, name=f"kubevc: k3s server {params.k3s_version}")
        else:
            kubeadm_server(params=params, name=f"kubevc: kubeadm init {params.kubernetes_version}")
        return [f"{params.distribution} server on {platform.pretty_name} {platform.architecture}"]

    report = run_deploy([target], deploy, dry_run=dry_run)
    if dry_run or not report.ok or on_kubeconfig is None:
        return report
    with pyinfra_session([target]) as state:
        server_host = next(iter(state.inventory))
        on_kubeconfig(fetch_admin_kubeconfig(state, server_host, params.distribution))
    return report
