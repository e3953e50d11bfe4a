"""The k3s plans: the server's config file and installer invocation, and the agent's staging.

They follow k3s's documented contracts: k3s reads ``/etc/rancher/k3s/config.yaml`` whose keys are
the ``k3s server`` flag names without dashes; the installer script takes ``INSTALL_K3S_VERSION``
(pinned release), ``INSTALL_K3S_EXEC`` (the server command and flags) and, for an air-gapped
install with the binary already at ``/usr/local/bin/k3s``, ``INSTALL_K3S_SKIP_DOWNLOAD=true``;
images archives placed in ``/var/lib/rancher/k3s/agent/images/`` are imported at start.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import yaml

from .cluster import ClusterParams

__all__ = [
    "K3S_BINARY",
    "K3S_CONFIG_PATH",
    "K3S_IMAGES_DIR",
    "K3S_INSTALLER_REMOTE",
    "K3S_INSTALLER_URL",
    "K3S_KUBECONFIG",
    "K3S_RELEASES",
    "K3sPlan",
    "k3s_asset_name",
    "k3s_plan",
    "k3s_stage_command",
]

K3S_CONFIG_PATH = "/etc/rancher/k3s/config.yaml"
K3S_KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
K3S_BINARY = "/usr/local/bin/k3s"
K3S_IMAGES_DIR = "/var/lib/rancher/k3s/agent/images"
K3S_INSTALLER_REMOTE = "/var/lib/kubevc/k3s-install.sh"
K3S_INSTALLER_URL = "https://get.k3s.io"
K3S_RELEASES = "https://github.com/k3s-io/k3s/releases/download"


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


def k3s_asset_name(architecture: str) -> str:
    """The release asset of the k3s binary for a Debian architecture."""
    names = {"amd64": "k3s", "arm64": "k3s-arm64", "armhf": "k3s-armhf"}
    if architecture not in names:
        raise ValueError(f"no k3s release binary for {architecture!r} (amd64, arm64, armhf)")
    return names[architecture]


def k3s_stage_command(
    version: str, architecture: str, releases: str = K3S_RELEASES, installer_url: str = K3S_INSTALLER_URL
) -> str:
    """Download the pinned k3s binary (checked against the release's sha256sum file) and installer."""
    asset = k3s_asset_name(architecture)
    base = f"{releases}/{quote(version, safe='')}"
    return (
        "set -e; tmp=$(mktemp -d); trap 'rm -rf \"$tmp\"' EXIT; "
        f'curl -sfL -o "$tmp/{asset}" {base}/{asset}; '
        f'curl -sfL -o "$tmp/sums" {base}/sha256sum-{architecture}.txt; '
        f'(cd "$tmp" && awk \'$2 == "{asset}"\' sums | sha256sum -c -); '
        f'install -m 755 "$tmp/{asset}" /usr/local/bin/k3s; '
        f"mkdir -p {K3S_INSTALLER_REMOTE.rsplit('/', 1)[0]}; "
        f"curl -sfL -o {K3S_INSTALLER_REMOTE} {installer_url}; chmod 755 {K3S_INSTALLER_REMOTE}"
    )
