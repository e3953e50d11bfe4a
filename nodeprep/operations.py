"""Every pyinfra operation of kubevc.nodeprep: node preparation, cluster init and join.

Each operation reads facts first and yields commands only for what differs, so a second run
yields nothing (pyinfra then reports "No changes"); the one exception is :func:`run_join`, which
runs the join command once (already-joined nodes are refused before it). Anything that acts on
the running kernel or init system (modprobe, sysctl -w, swapoff, service restarts) is only
yielded when the caller says the root is *live*: in a chroot or an offline image those would
hit the host or fail.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import shlex
from collections.abc import Generator, Mapping, Sequence
from typing import Any

from pyinfra.api.command import FileUploadCommand, StringCommand
from pyinfra.api.exceptions import OperationValueError
from pyinfra.api.hiddenvalue import HiddenValue
from pyinfra.api.operation import operation
from pyinfra.context import host
from pyinfra.facts.deb import DebPackages

from . import texts
from .facts import (
    ActiveSwaps,
    FileBytes,
    FileSha256,
    K3sVersion,
    LoadedKernelModules,
    NodePlatform,
    SysctlValues,
    UnitEnabled,
)
from .plans.cluster import ClusterParams
from .plans.inventory import NVIDIA_RUNTIME_BINARY
from .plans.join import SecretWord
from .plans.k3s import (
    K3S_BINARY,
    K3S_CONFIG_PATH,
    K3S_IMAGES_DIR,
    K3S_INSTALLER_REMOTE,
    K3S_INSTALLER_URL,
    K3S_RELEASES,
    k3s_plan,
    k3s_stage_command,
)
from .plans.kubeadm import KUBEADM_CONFIG_PATH, KUBEADM_KUBECONFIG, kubeadm_config, kubeadm_init_command

__all__ = [
    "APT_ENV",
    "containerd_config",
    "file_commands",
    "k3s_agent_staged",
    "k3s_server",
    "kernel_modules",
    "kubeadm_server",
    "managed_file",
    "masked_command",
    "nvidia_k3s_runtime",
    "packages",
    "rpi_cgroups",
    "run_join",
    "swap_off",
    "swap_services",
    "sysctl_settings",
    "unit_enabled",
]

Commands = Generator[str | StringCommand | FileUploadCommand, None, None]

APT_ENV = "DEBIAN_FRONTEND=noninteractive"
_APT_OPTS = "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"

MODULES_LOAD_PATH = "/etc/modules-load.d/kubevc-kubernetes.conf"
SYSCTL_PATH = "/etc/sysctl.d/99-kubevc-kubernetes.conf"
CONTAINERD_CONFIG_PATH = "/etc/containerd/config.toml"
K3S_NVIDIA_DROPIN_PATH = "/etc/rancher/k3s/config.yaml.d/50-kubevc-nvidia.yaml"
ZRAM_GENERATOR = "/usr/lib/systemd/system-generators/zram-generator"
ZRAM_GENERATOR_CONFIG = "/etc/systemd/zram-generator.conf"
SWAP_UNITS = ("dphys-swapfile.service", "zramswap.service", "zram-config.service")


def file_commands(path: str, content: str, mode: str = "644") -> Commands:
    """Yield the commands that make ``path`` hold exactly ``content`` (nothing if it already does)."""
    current = host.get_fact(FileBytes, path=path)
    wanted = content.encode()
    if current == wanted:
        return
    directory = posixpath.dirname(path)
    if directory:
        yield StringCommand("mkdir", "-p", shlex.quote(directory))
    yield FileUploadCommand(io.BytesIO(wanted), path)
    yield StringCommand("chmod", mode, shlex.quote(path))


@operation()
def managed_file(path: str, content: str, mode: str = "644") -> Commands:
    """Ensure a file has exactly this content (text, mode ``644`` by default)."""
    yield from file_commands(path, content, mode)


@operation()
def packages(names: Sequence[str]) -> Commands:
    """Install the missing Debian packages (no recommends); the apt lists are refreshed first."""
    installed = host.get_fact(DebPackages)
    missing = [name for name in names if name not in installed]
    if not missing:
        return
    yield f"{APT_ENV} apt-get update -q"
    yield (
        f"{APT_ENV} apt-get install -y -q --no-install-recommends {_APT_OPTS} "
        + " ".join(shlex.quote(name) for name in missing)
    )


@operation()
def kernel_modules(modules: Sequence[str] = texts.KERNEL_MODULES, load_now: bool = False) -> Commands:
    """Persist modules in modules-load.d; with ``load_now`` also modprobe the ones not loaded."""
    yield from file_commands(MODULES_LOAD_PATH, texts.modules_load_content(modules))
    if load_now:
        loaded = host.get_fact(LoadedKernelModules, names=tuple(modules))
        for module in modules:
            if module not in loaded:
                yield StringCommand("modprobe", shlex.quote(module))


@operation()
def sysctl_settings(
    values: Mapping[str, str] = texts.KUBERNETES_SYSCTLS, apply_now: bool = False
) -> Commands:
    """Write the sysctl.d file; with ``apply_now`` also set the values that differ in the kernel."""
    yield from file_commands(SYSCTL_PATH, texts.sysctl_content(values))
    if apply_now:
        current = host.get_fact(SysctlValues, keys=tuple(values))
        for key, value in values.items():
            if current.get(key) != value:
                yield StringCommand("sysctl", "-q", "-w", shlex.quote(f"{key}={value}"))


@operation()
def swap_off(fstab_path: str = "/etc/fstab", now: bool = False) -> Commands:
    """Comment out fstab swap entries; with ``now`` also turn off swap that is in use."""
    current = host.get_fact(FileBytes, path=fstab_path)
    if current is not None:
        text = current.decode()
        wanted = texts.fstab_without_swap(text)
        if wanted != text:
            yield FileUploadCommand(io.BytesIO(wanted.encode()), fstab_path)
            yield StringCommand("chmod", "644", shlex.quote(fstab_path))
    if now and host.get_fact(ActiveSwaps):
        yield "swapoff -a"


def _unit_off(unit: str, now: bool) -> Commands:
    state = host.get_fact(UnitEnabled, unit=unit)
    if state in ("enabled", "enabled-runtime", "alias", "indirect", "generated"):
        if now:
            yield StringCommand("systemctl", "stop", unit)
        yield StringCommand("systemctl", "disable", unit)


@operation()
def swap_services(now: bool = False) -> Commands:
    """Disable swap services Raspberry Pi OS / Debian / Ubuntu may ship (dphys-swapfile, zram).

    systemd's zram-generator reads ``/etc/systemd/zram-generator.conf`` instead of its packaged
    default when that file exists; an empty one makes no zram swap device at the next boot.
    """
    for unit in SWAP_UNITS:
        yield from _unit_off(unit, now)
    if host.get_fact(FileBytes, path=ZRAM_GENERATOR) is not None:
        yield from file_commands(ZRAM_GENERATOR_CONFIG, texts.ZRAM_GENERATOR_DISABLED)


@operation()
def unit_enabled(unit: str, restart: bool = False) -> Commands:
    """Enable a systemd unit when systemctl exists (offline roots included); start it when live."""
    state = host.get_fact(UnitEnabled, unit=unit)
    if state is None or state in ("enabled", "static", "alias", "indirect", "generated"):
        return
    if state == "masked":
        raise OperationValueError(f"{unit} is masked on this node; unmask it first")
    yield StringCommand("systemctl", "enable", unit)
    if restart:
        yield StringCommand("systemctl", "start", unit)


@operation()
def rpi_cgroups(cmdline_path: str, tokens: Sequence[str] = texts.RPI_CGROUP_TOKENS) -> Commands:
    """Add the cgroup tokens to a Raspberry Pi ``cmdline.txt`` once (takes effect after a reboot)."""
    current = host.get_fact(FileBytes, path=cmdline_path)
    if current is None:
        raise OperationValueError(f"{cmdline_path} does not exist")
    text = current.decode()
    wanted = texts.cmdline_with_tokens(text, tokens)
    if wanted != text:
        yield FileUploadCommand(io.BytesIO(wanted.encode()), cmdline_path)


@operation()
def containerd_config(
    systemd_cgroup: bool = True, restart: bool = False, nvidia_runtime: bool = False
) -> Commands:
    """Make containerd's runc use the systemd cgroup driver (kubeadm) and, on an NVIDIA GPU node,
    the NVIDIA container runtime the default; restart only on change.

    Both edits are one operation because both read and write the same file: a second operation
    would read its fact before the first one's upload and undo it.
    """
    if not systemd_cgroup and not nvidia_runtime:
        return
    current = host.get_fact(FileBytes, path=CONTAINERD_CONFIG_PATH)
    text = current.decode() if current is not None else None
    wanted = texts.containerd_systemd_cgroup(text) if systemd_cgroup else (text or "version = 2\n")
    if nvidia_runtime:
        wanted = texts.containerd_nvidia_runtime(wanted, NVIDIA_RUNTIME_BINARY, systemd_cgroup)
    if wanted == text:
        return
    yield from file_commands(CONTAINERD_CONFIG_PATH, wanted)
    if restart:
        yield "systemctl restart containerd"


@operation()
def nvidia_k3s_runtime() -> Commands:
    """k3s on an NVIDIA GPU node: nvidia is containerd's default runtime (a config.yaml.d drop-in;
    k3s adds the runtime itself when it finds nvidia-container-runtime, see texts.K3S_NVIDIA_DROPIN)."""
    yield from file_commands(K3S_NVIDIA_DROPIN_PATH, texts.K3S_NVIDIA_DROPIN)


# --- cluster init ---------------------------------------------------------------------------------


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


# --- join -----------------------------------------------------------------------------------------


@operation()
def k3s_agent_staged(
    version: str, releases: str = K3S_RELEASES, installer_url: str = K3S_INSTALLER_URL
) -> Any:
    """The pinned k3s binary and the installer are on the node (downloaded once, verified)."""
    installed = host.get_fact(K3sVersion)
    installer = host.get_fact(FileBytes, path=K3S_INSTALLER_REMOTE)
    if installed == version and installer is not None:
        return
    platform = host.get_fact(NodePlatform)
    yield k3s_stage_command(version, platform.architecture, releases, installer_url)


def _hidden(value: str) -> HiddenValue:
    return HiddenValue(value)  # type: ignore[no-untyped-call]


def masked_command(words: Sequence[str | SecretWord]) -> StringCommand:
    """The command of these words for pyinfra, secret words as HiddenValues (printed ``*MASKED*``)."""
    parts: list[str | StringCommand | HiddenValue] = []
    for word in words:
        if isinstance(word, SecretWord):
            hidden = _hidden(word.value)
            parts.append(StringCommand(word.prefix, hidden, _separator="") if word.prefix else hidden)
        else:
            parts.append(word)
    return StringCommand(*parts)


@operation(is_idempotent=False)
def run_join(command: StringCommand) -> Any:
    """Run the join command on the node (already-joined nodes are refused before this)."""
    yield command
