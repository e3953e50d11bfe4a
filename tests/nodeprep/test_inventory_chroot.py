"""The inventory fact and the accelerator node prep for real: pyinfra's @chroot connector against
the debootstrap'd Debian root, with each recorded device's files put where the fact reads them.

The root has no /proc or /sys mounted (the @chroot connector mounts nothing), so /proc/cpuinfo,
/proc/meminfo, /proc/device-tree/model, /proc/driver/nvidia/version and
/sys/bus/{pci,usb}/devices/* are plain files and folders inside the root: the fact reads the same
absolute paths it reads on a node, no path prefix needed. /dev/apex_* and /dev/hailo* are real
character devices (mknod, with the majors the gasket and hailo_pci drivers register dynamically;
the fact only tests that they exist). ``lspci``/``lsusb`` are small scripts in /usr/local/bin
printing the recorded output (minbase has neither pciutils nor usbutils; without them the fact
falls back to sysfs, which the Raspberry Pi 5 device exercises).
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from pyinfra.api.host import Host
from pyinfra.api.state import State

from kubevc.nodeprep import operations as ops
from kubevc.nodeprep.facts import NodeInventory
from kubevc.nodeprep.plans.inventory import NVIDIA_RUNTIME_BINARY, Inventory
from kubevc.nodeprep.prepare import OP_NAMES, PrepareOptions, prepare_nodes
from kubevc.nodeprep.runner import RunReport, run_deploy
from kubevc.nodeprep.testing import chroot_target

from .test_inventory_facts import DEVICES, summary

pytestmark = [pytest.mark.chroot, pytest.mark.slow]

FreshRoot = Callable[[Path | None], Path]
_DEV_MAJOR = 240  # the first of Linux's "local/experimental" character majors


def _write(root: Path, path: str, data: str | bytes, mode: int = 0o644) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data.encode() if isinstance(data, str) else data)
    target.chmod(mode)


def install_device(root: Path, device: Path) -> None:
    """Put a recorded device's files into the root where the node has them."""
    plain = {
        "cpuinfo": "/proc/cpuinfo",
        "meminfo": "/proc/meminfo",
        "device-tree-model": "/proc/device-tree/model",
        "nv_tegra_release": "/etc/nv_tegra_release",
        "proc-driver-nvidia-version": "/proc/driver/nvidia/version",
    }
    for name, path in plain.items():
        if (device / name).is_file():
            _write(root, path, (device / name).read_bytes())
    for tool, recorded in (("lspci", "lspci-nn.txt"), ("lsusb", "lsusb.txt")):
        if (device / recorded).is_file():
            _write(root, f"/usr/share/kubevc-test/{recorded}", (device / recorded).read_text())
            script = f"#!/bin/sh\ncat /usr/share/kubevc-test/{recorded}\n"
            _write(root, f"/usr/local/bin/{tool}", script, 0o755)
    if (device / "sys-pci.txt").is_file():
        for line in (device / "sys-pci.txt").read_text().splitlines():
            slot, vendor, product, cls = line.split()
            for name, value in (("vendor", vendor), ("device", product), ("class", cls)):
                _write(root, f"/sys/bus/pci/devices/{slot}/{name}", value + "\n")
    if (device / "sys-usb.txt").is_file():
        for index, line in enumerate((device / "sys-usb.txt").read_text().splitlines(), start=1):
            vendor, product = line.split(":")
            _write(root, f"/sys/bus/usb/devices/usb{index}/idVendor", vendor + "\n")
            _write(root, f"/sys/bus/usb/devices/usb{index}/idProduct", product + "\n")
    if (device / "dev.txt").is_file():
        for minor, path in enumerate((device / "dev.txt").read_text().split()):
            node = root / path.lstrip("/")
            os.mknod(node, stat.S_IFCHR | 0o660, os.makedev(_DEV_MAJOR, minor))
    arch = (device / "dpkg-arch").read_text().strip()
    if arch != "amd64":  # the root is the host's architecture; dpkg answers for the recorded one
        _write(root, "/usr/local/bin/dpkg", f"#!/bin/sh\necho {arch}\n", 0o755)


def read_inventory(root: Path) -> Inventory:
    found: dict[str, Inventory] = {}

    def deploy(state: State, host: Host) -> None:
        found["inventory"] = host.get_fact(NodeInventory)

    report = run_deploy([chroot_target(root)], deploy, dry_run=True)
    assert report.ok, report.messages
    return found["inventory"]


@pytest.mark.parametrize("device", sorted(p.name for p in DEVICES.iterdir() if p.is_dir()))
def test_inventory_fact_in_chroot(fresh_root: FreshRoot, device: str) -> None:
    root = fresh_root(None)
    install_device(root, DEVICES / device)
    inventory = read_inventory(root)
    assert summary(inventory) == (DEVICES / device / "expected.txt").read_text().strip()


def test_plain_root_is_cpu(fresh_root: FreshRoot) -> None:
    inventory = read_inventory(fresh_root(None))
    assert inventory.accelerator == "cpu" and inventory.accelerators == ()
    assert inventory.architecture == "amd64"


def test_prepare_dry_run_reports_the_inventory(fresh_root: FreshRoot) -> None:
    root = fresh_root(None)
    install_device(root, DEVICES / "rpi4-coral-usb")
    seen: dict[str, Inventory] = {}
    options = PrepareOptions(distribution="k3s", on_inventory=lambda host, inv: seen.update({host: inv}))
    report = prepare_nodes([chroot_target(root)], options, dry_run=True)
    assert report.ok, report.messages
    (inventory,) = seen.values()
    assert inventory.accelerator == "coral"
    assert any("accelerators: coral" in m for m in report.messages)
    assert any("libedgetpu" in m for m in report.messages)


def _gpu_root(fresh_root: FreshRoot) -> Path:
    root = fresh_root(None)
    install_device(root, DEVICES / "rtx3060-workstation")
    # nvidia-container-toolkit's binary (NVIDIA's repository; a stand-in, never run here)
    _write(root, NVIDIA_RUNTIME_BINARY, "#!/bin/sh\nexit 0\n", 0o755)
    return root


def _run(root: Path, add: Callable[[], object]) -> RunReport:
    def deploy(state: State, host: Host) -> None:
        add()

    report = run_deploy([chroot_target(root)], deploy)
    assert report.ok, report.messages
    return report


def test_kubeadm_nvidia_runtime_then_noop(fresh_root: FreshRoot) -> None:
    root = _gpu_root(fresh_root)
    config = root / "etc/containerd/config.toml"
    _write(root, "/etc/containerd/config.toml", "version = 2\n# operator comment\n")
    first = _run(root, lambda: ops.containerd_config(systemd_cgroup=True, nvidia_runtime=True))
    assert first.outcomes[0].changed
    data = tomllib.loads(config.read_text())
    containerd = data["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]
    assert containerd["default_runtime_name"] == "nvidia"
    assert containerd["runtimes"]["nvidia"]["options"]["BinaryName"] == NVIDIA_RUNTIME_BINARY
    assert containerd["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert "# operator comment" in config.read_text()
    text = config.read_text()
    second = _run(root, lambda: ops.containerd_config(systemd_cgroup=True, nvidia_runtime=True))
    assert not second.outcomes[0].changed
    assert config.read_text() == text


def test_nvidia_runtime_already_configured_is_noop(fresh_root: FreshRoot) -> None:
    """A config nvidia-ctk wrote (runtime table present, default set) is left byte for byte."""
    root = _gpu_root(fresh_root)
    written = (
        "version = 2\n"
        '[plugins."io.containerd.grpc.v1.cri".containerd]\n'
        '  default_runtime_name = "nvidia"\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n'
        '  runtime_type = "io.containerd.runc.v2"\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]\n'
        f'  BinaryName = "{NVIDIA_RUNTIME_BINARY}"\n'
        "  SystemdCgroup = true\n"
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n'
        "  SystemdCgroup = true\n"
    )
    _write(root, "/etc/containerd/config.toml", written)
    report = _run(root, lambda: ops.containerd_config(systemd_cgroup=True, nvidia_runtime=True))
    assert not report.outcomes[0].changed
    assert (root / "etc/containerd/config.toml").read_text() == written


def test_k3s_gpu_node_prepare(fresh_root: FreshRoot) -> None:
    """k3s: the drop-in appears once, containerd's own config.toml is not touched; no GPU, no drop-in."""
    root = _gpu_root(fresh_root)
    dropin = root / ops.K3S_NVIDIA_DROPIN_PATH.lstrip("/")
    first = _run(root, lambda: ops.nvidia_k3s_runtime())
    assert first.outcomes[0].changed and "default-runtime: nvidia" in dropin.read_text()
    assert not _run(root, lambda: ops.nvidia_k3s_runtime()).outcomes[0].changed
    report = prepare_nodes([chroot_target(root)], PrepareOptions(distribution="k3s"), dry_run=True)
    names = {o.name for o in report.outcomes}
    assert OP_NAMES["nvidia_runtime"] in names
    assert not report.outcome(report.outcomes[0].host, OP_NAMES["nvidia_runtime"]).changed
    plain = fresh_root(None)
    report = prepare_nodes([chroot_target(plain)], PrepareOptions(distribution="k3s"), dry_run=True)
    assert OP_NAMES["nvidia_runtime"] not in {o.name for o in report.outcomes}


def test_gpu_without_toolkit_leaves_containerd_alone(fresh_root: FreshRoot) -> None:
    root = fresh_root(None)
    install_device(root, DEVICES / "rtx3060-workstation")
    report = prepare_nodes([chroot_target(root)], PrepareOptions(distribution="k3s"), dry_run=True)
    assert OP_NAMES["nvidia_runtime"] not in {o.name for o in report.outcomes}
    assert any("nvidia-container-toolkit" in m for m in report.messages)
