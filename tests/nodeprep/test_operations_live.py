"""What the operations yield on a *live* node (booted, systemd running), from recorded facts.

A chroot cannot show this (modprobe, sysctl -w, swapoff or systemctl there would act on the
test machine), so the operation generators run here against a host object answering facts
from fixtures, the way pyinfra's own operation tests feed facts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api.command import FileUploadCommand, StringCommand
from pyinfra.api.exceptions import OperationValueError
from pyinfra.context import ctx_host
from pyinfra.facts.deb import DebPackages

from kubevc.nodeprep import operations as ops
from kubevc.nodeprep import texts
from kubevc.nodeprep.facts import (
    ActiveSwaps,
    FileBytes,
    FileSha256,
    K3sVersion,
    LoadedKernelModules,
    NodePlatform,
    SysctlValues,
    UnitEnabled,
)
from kubevc.nodeprep.plans import k3s, kubeadm
from kubevc.nodeprep.plans.cluster import ClusterParams
from kubevc.nodeprep.platform import parse_platform

from .test_platform_texts import RPI_OS_ARM64


class FactHost:
    """Answers ``get_fact`` from a table: {(FactClass, (("kwarg", value),...)) or FactClass: value}."""

    def __init__(self, facts: dict[Any, Any]) -> None:
        self.facts = facts
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def get_fact(self, cls: type, **kwargs: Any) -> Any:
        self.asked.append((cls.__name__, kwargs))
        key = (cls, tuple(sorted(kwargs.items())))
        if key in self.facts:
            return self.facts[key]
        if cls in self.facts:
            return self.facts[cls]
        return cls().default() if hasattr(cls, "default") else None


def commands(op: Any, facts: dict[Any, Any], **kwargs: Any) -> list[str]:
    fake = FactHost(facts)
    out: list[str] = []
    with ctx_host.use(fake):
        for command in op._inner(**kwargs):
            if isinstance(command, FileUploadCommand):
                out.append(f"upload {command.dest}")
            elif isinstance(command, StringCommand):
                out.append(command.get_raw_value())
            else:
                out.append(str(command))
    return out


def file_fact(path: str, content: str | None) -> tuple[Any, Any]:
    return (FileBytes, (("path", path),)), None if content is None else content.encode()


@pytest.fixture
def modules_written() -> Iterator[dict[Any, Any]]:
    yield dict([file_fact(ops.MODULES_LOAD_PATH, texts.modules_load_content())])


def test_modprobe_only_missing_modules_when_live(modules_written: dict[Any, Any]) -> None:
    facts = {**modules_written, LoadedKernelModules: ["overlay"]}
    assert commands(ops.kernel_modules, facts, load_now=True) == ["modprobe br_netfilter"]
    assert commands(ops.kernel_modules, facts, load_now=False) == []
    facts[LoadedKernelModules] = ["overlay", "br_netfilter"]  # built in or loaded
    assert commands(ops.kernel_modules, facts, load_now=True) == []


def test_sysctl_applies_only_differing_values() -> None:
    facts = dict([file_fact(ops.SYSCTL_PATH, texts.sysctl_content())])
    facts[SysctlValues] = {**texts.KUBERNETES_SYSCTLS, "net.ipv4.ip_forward": "0"}
    assert commands(ops.sysctl_settings, facts, apply_now=True) == ["sysctl -q -w net.ipv4.ip_forward=1"]
    facts[SysctlValues] = dict(texts.KUBERNETES_SYSCTLS)
    assert commands(ops.sysctl_settings, facts, apply_now=True) == []


def test_swapoff_only_with_active_swap() -> None:
    facts = dict([file_fact("/etc/fstab", "proc /proc proc defaults 0 0\n")])
    facts[ActiveSwaps] = ["/var/swap"]
    assert commands(ops.swap_off, facts, now=True) == ["swapoff -a"]
    assert commands(ops.swap_off, facts, now=False) == []
    facts[ActiveSwaps] = []
    assert commands(ops.swap_off, facts, now=True) == []


def test_swap_services_disabled_and_stopped_when_live() -> None:
    facts: dict[Any, Any] = {
        (UnitEnabled, (("unit", "dphys-swapfile.service"),)): "enabled",
        (UnitEnabled, (("unit", "zramswap.service"),)): "disabled",
        (UnitEnabled, (("unit", "zram-config.service"),)): None,
    }
    assert commands(ops.swap_services, facts, now=True) == [
        "systemctl stop dphys-swapfile.service",
        "systemctl disable dphys-swapfile.service",
    ]
    assert commands(ops.swap_services, facts, now=False) == ["systemctl disable dphys-swapfile.service"]


def test_zram_generator_config_written_once() -> None:
    generator = dict([file_fact(ops.ZRAM_GENERATOR, "#!/bin/sh\n")])
    assert commands(ops.swap_services, generator) == [
        "mkdir -p /etc/systemd",
        f"upload {ops.ZRAM_GENERATOR_CONFIG}",
        f"chmod 644 {ops.ZRAM_GENERATOR_CONFIG}",
    ]
    done = {**generator, **dict([file_fact(ops.ZRAM_GENERATOR_CONFIG, texts.ZRAM_GENERATOR_DISABLED)])}
    assert commands(ops.swap_services, done) == []


def test_iscsid_enabled_and_started_when_live() -> None:
    unit = (UnitEnabled, (("unit", "iscsid.service"),))
    assert commands(ops.unit_enabled, {unit: "disabled"}, unit="iscsid.service", restart=True) == [
        "systemctl enable iscsid.service",
        "systemctl start iscsid.service",
    ]
    assert commands(ops.unit_enabled, {unit: "enabled"}, unit="iscsid.service", restart=True) == []
    assert commands(ops.unit_enabled, {unit: None}, unit="iscsid.service") == []  # no systemctl
    with pytest.raises(OperationValueError, match="masked"):
        commands(ops.unit_enabled, {unit: "masked"}, unit="iscsid.service")


def test_containerd_restarted_only_on_change() -> None:
    path = ops.CONTAINERD_CONFIG_PATH
    stock = dict([file_fact(path, "version = 2\n")])
    changed = commands(ops.containerd_config, stock, restart=True)
    assert changed[-1] == "systemctl restart containerd" and f"upload {path}" in changed
    fixed = dict([file_fact(path, texts.containerd_systemd_cgroup("version = 2\n"))])
    assert commands(ops.containerd_config, fixed, restart=True) == []
    assert commands(ops.containerd_config, stock, systemd_cgroup=False, restart=True) == []


def test_packages_update_then_install_missing_only() -> None:
    facts = {DebPackages: {"curl": ["7.88"], "ca-certificates": ["2023"]}}
    out = commands(ops.packages, facts, names=["curl", "socat", "ca-certificates", "runc"])
    assert out[0] == "DEBIAN_FRONTEND=noninteractive apt-get update -q"
    assert out[1].startswith("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends")
    assert out[1].endswith(" socat runc")
    assert commands(ops.packages, {DebPackages: {"curl": ["1"]}}, names=["curl"]) == []


def test_cmdline_missing_file_is_an_error() -> None:
    with pytest.raises(OperationValueError, match="does not exist"):
        commands(
            ops.rpi_cgroups, dict([file_fact("/boot/cmdline.txt", None)]), cmdline_path="/boot/cmdline.txt"
        )


def test_file_fact_bytes_are_exact() -> None:
    content = "a\n\n  b  \n"
    facts = dict([file_fact("/etc/x", content)])
    assert commands(ops.managed_file, facts, path="/etc/x", content=content) == []
    assert commands(ops.managed_file, facts, path="/etc/x", content=content.rstrip() + "\n") != []


def test_cmdline_tokens_added_once() -> None:
    path = "/boot/firmware/cmdline.txt"
    stock = dict([file_fact(path, "console=tty1 root=/dev/mmcblk0p2 rootwait\n")])
    assert commands(ops.rpi_cgroups, stock, cmdline_path=path) == [f"upload {path}"]
    done = dict([file_fact(path, texts.cmdline_with_tokens("console=tty1 root=/dev/mmcblk0p2 rootwait\n"))])
    assert commands(ops.rpi_cgroups, done, cmdline_path=path) == []


# --- cluster init and join: each operation does nothing when the facts already match ---------------

SERVER = ClusterParams(
    region="seoul",
    distribution="k3s",
    api_endpoint="https://10.8.0.1:6443",
    cluster_name="seoul",
    pod_cidr="10.42.0.0/16",
    service_cidr="10.43.0.0/16",
    node_name="seoul-pi-1",
)


def test_k3s_server_noop_when_config_and_version_match() -> None:
    plan = k3s.k3s_plan(SERVER)
    configured = dict([file_fact(k3s.K3S_CONFIG_PATH, plan.config_yaml())])
    assert commands(ops.k3s_server, {**configured, K3sVersion: SERVER.k3s_version}, params=SERVER) == []
    upgrade = commands(ops.k3s_server, {**configured, K3sVersion: "v1.30.8+k3s1"}, params=SERVER)
    assert upgrade == [plan.install_command()]
    fresh = commands(ops.k3s_server, {K3sVersion: None}, params=SERVER)
    assert fresh == [
        "mkdir -p /etc/rancher/k3s",
        f"upload {k3s.K3S_CONFIG_PATH}",
        f"chmod 600 {k3s.K3S_CONFIG_PATH}",
        plan.install_command(),
    ]


def test_k3s_server_airgap_uploads_only_differing_files(tmp_path: Path) -> None:
    files = {"binary": tmp_path / "k3s", "installer": tmp_path / "install.sh", "images": tmp_path / "img.tar"}
    for name, path in files.items():
        path.write_text(f"{name}\n")
    params = replace(
        SERVER,
        k3s_binary=str(files["binary"]),
        k3s_installer=str(files["installer"]),
        k3s_images=str(files["images"]),
    )
    remote = {
        "binary": k3s.K3S_BINARY,
        "installer": k3s.K3S_INSTALLER_REMOTE,
        "images": f"{k3s.K3S_IMAGES_DIR}/img.tar",
    }
    digests = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()}
    facts: dict[Any, Any] = dict([file_fact(k3s.K3S_CONFIG_PATH, k3s.k3s_plan(params).config_yaml())])
    facts[K3sVersion] = params.k3s_version
    for name, remote_path in remote.items():
        facts[(FileSha256, (("path", remote_path),))] = digests[name]
    assert commands(ops.k3s_server, facts, params=params) == []
    facts[(FileSha256, (("path", k3s.K3S_BINARY),))] = "0" * 64
    assert commands(ops.k3s_server, facts, params=params) == [
        "mkdir -p /usr/local/bin",
        f"upload {k3s.K3S_BINARY}",
        f"chmod 755 {k3s.K3S_BINARY}",
    ]


def test_kubeadm_server_noop_once_initialised() -> None:
    params = replace(SERVER, distribution="kubeadm", cni_manifest="/etc/cni.yaml")
    config = kubeadm.kubeadm_config(params).to_yaml()
    initialised = dict(
        [
            file_fact(kubeadm.KUBEADM_KUBECONFIG, "apiVersion: v1\n"),
            file_fact(kubeadm.KUBEADM_CONFIG_PATH, config),
        ]
    )
    assert commands(ops.kubeadm_server, initialised, params=params) == []
    fresh = dict(
        [file_fact(kubeadm.KUBEADM_KUBECONFIG, None), file_fact(kubeadm.KUBEADM_CONFIG_PATH, config)]
    )
    assert commands(ops.kubeadm_server, fresh, params=params) == [
        kubeadm.kubeadm_init_command(),
        f"kubectl --kubeconfig {kubeadm.KUBEADM_KUBECONFIG} apply -f /etc/cni.yaml",
    ]


def test_k3s_agent_staged_noop_when_version_and_installer_present() -> None:
    version = "v1.31.4+k3s1"
    staged = {K3sVersion: version, **dict([file_fact(k3s.K3S_INSTALLER_REMOTE, "#!/bin/sh\n")])}
    assert commands(ops.k3s_agent_staged, staged, version=version) == []
    pi = parse_platform(RPI_OS_ARM64.splitlines())
    missing = {K3sVersion: version, NodePlatform: pi, **dict([file_fact(k3s.K3S_INSTALLER_REMOTE, None)])}
    assert commands(ops.k3s_agent_staged, missing, version=version) == [
        k3s.k3s_stage_command(version, "arm64")
    ]
    older = {**staged, K3sVersion: "v1.30.8+k3s1", NodePlatform: pi}
    assert commands(ops.k3s_agent_staged, older, version=version) == [k3s.k3s_stage_command(version, "arm64")]


def test_run_join_always_runs_its_command() -> None:
    # not idempotent by design: node_preflight refuses a node that is already a member
    command = StringCommand("kubeadm", "join", "10.8.0.1:6443")
    assert commands(ops.run_join, {}, command=command) == ["kubeadm join 10.8.0.1:6443"]
