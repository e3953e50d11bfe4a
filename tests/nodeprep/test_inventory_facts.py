"""The inventory fact against output recorded on real devices (tests/nodeprep/devices/<device>/).

Each device folder holds what the fact's commands print there: ``lspci -nn``, ``lsusb``, the
device-tree model, ``/etc/nv_tegra_release``, ``/proc/driver/nvidia/version``, /proc/cpuinfo,
/proc/meminfo, and, for roots without pciutils/usbutils, the sysfs ids; ``expected.txt`` is the
inventory kubevc must make of it. ``test_inventory_chroot.py`` runs the real fact script on the
same files inside a Debian root.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubevc.nodeprep.facts import NodeInventory
from kubevc.nodeprep.plans.inventory import Inventory, kube_arch, node_labels, parse_inventory

DEVICES = Path(__file__).parent / "devices"


def recorded_fact_output(device: Path) -> list[str]:
    """The fact's ``key=value`` lines for the recorded files, as the fact script prints them."""

    def text(name: str) -> str | None:
        path = device / name
        return path.read_text() if path.is_file() else None

    lines = [f"arch={(text('dpkg-arch') or '').strip()}", "machine=x86_64"]
    cpuinfo = text("cpuinfo")
    if cpuinfo is not None:
        cpu_lines = cpuinfo.splitlines()
        lines.append(f"cpus={sum(1 for x in cpu_lines if x.startswith('processor'))}")
        for line in cpu_lines:
            key = line.split(":", 1)[0].strip()
            if key in ("model name", "Model", "Hardware"):
                lines.append("cpu_model=" + line.split(":", 1)[1].strip())
                break
    for line in (text("meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            lines.append(f"mem_kib={line.split()[1]}")
    model = text("device-tree-model")
    if model is not None:
        lines.append("dt_model=" + model.replace("\0", ""))
    tegra = text("nv_tegra_release")
    if tegra is not None:
        lines.append("tegra=" + tegra.splitlines()[0])
    driver = text("proc-driver-nvidia-version")
    if driver is not None:
        lines.append("nvidia_driver=" + driver.splitlines()[0])
    lines += ["pci=" + x for x in (text("lspci-nn.txt") or "").splitlines()]
    lines += ["pci_sys=" + x for x in (text("sys-pci.txt") or "").splitlines()]
    lines += ["lsusb=" + x for x in (text("lsusb.txt") or "").splitlines()]
    lines += ["usb=" + x for x in (text("sys-usb.txt") or "").splitlines()]
    lines += ["dev=" + x for x in (text("dev.txt") or "").splitlines()]
    return lines


def summary(inventory: Inventory) -> str:
    first = inventory.accelerators[0] if inventory.accelerators else None
    return (
        f"arch={inventory.architecture} accelerator={inventory.accelerator} "
        f"kinds={','.join(inventory.kinds) or '-'} count={first.count if first else 0} "
        f"model={first.model if first else '-'} memory_mib={inventory.memory_mib} cpus={inventory.cpus}"
    )


@pytest.mark.parametrize("device", sorted(p.name for p in DEVICES.iterdir() if p.is_dir()))
def test_recorded_devices(device: str) -> None:
    inventory = NodeInventory().process(recorded_fact_output(DEVICES / device))
    assert summary(inventory) == (DEVICES / device / "expected.txt").read_text().strip()


def test_nvidia_workstation_details() -> None:
    inventory = parse_inventory(recorded_fact_output(DEVICES / "rtx3060-workstation"))
    (gpu,) = inventory.accelerators
    assert gpu.devices == ("01:00.0",)  # the audio function of the card is no GPU; the Intel iGPU neither
    assert inventory.cpu_model == "Intel(R) Core(TM) i5-9400 CPU @ 2.90GHz"
    assert inventory.nvidia_driver is not None and "535.183.01" in inventory.nvidia_driver
    assert not inventory.nvidia_runtime
    assert inventory.has_nvidia_gpu
    assert node_labels(inventory) == {"kubevc.io/accelerator": "nvidia", "kubevc.io/arch": "amd64"}
    assert inventory.to_data() == {
        "arch": "amd64",
        "cpuModel": "Intel(R) Core(TM) i5-9400 CPU @ 2.90GHz",
        "cpus": 4,
        "memoryMiB": 31945,
        "accelerators": [
            {"kind": "nvidia", "count": 1, "model": "GeForce RTX 3060 Lite Hash Rate", "devices": ["01:00.0"]}
        ],
    }


def test_jetson_bridges_are_not_gpus() -> None:
    inventory = parse_inventory(recorded_fact_output(DEVICES / "jetson-orin-nano"))
    assert inventory.kinds == ("jetson",)  # NVIDIA PCI bridges (class 0604) are no discrete GPU
    assert inventory.tegra_release is not None and inventory.tegra_release.startswith("# R36")
    assert inventory.cpu_model == "NVIDIA Jetson Orin Nano Developer Kit"  # arm64 cpuinfo names no model
    assert inventory.has_nvidia_gpu


def test_jetson_by_tegra_release_alone() -> None:
    inventory = parse_inventory(["arch=arm64", "tegra=# R32 (release), REVISION: 7.4, GCID: 33514132"])
    assert inventory.accelerator == "jetson"


def test_coral_usb_and_pcie() -> None:
    inventory = parse_inventory(recorded_fact_output(DEVICES / "m2-coral-server"))
    (coral,) = inventory.accelerators
    assert coral.devices == ("/dev/apex_0", "/dev/apex_1", "1a6e:089a")
    pi = parse_inventory(recorded_fact_output(DEVICES / "rpi4-coral-usb"))
    assert pi.accelerators[0].devices == ("18d1:9302",)
    assert node_labels(pi)["kubevc.io/accelerator"] == "coral"


def test_precedence_and_plain_cpu() -> None:
    both = parse_inventory(
        [
            "arch=amd64",
            "pci=01:00.0 3D controller [0302]: NVIDIA Corporation GA100 [A100 PCIe 40GB] [10de:20f1]",
            "lsusb=Bus 001 Device 004: ID 18d1:9302 Google Inc.",
        ]
    )
    assert both.kinds == ("nvidia", "coral") and both.accelerator == "nvidia"
    plain = parse_inventory(["arch=armhf", "machine=armv7l", "mem_kib=948304"])
    assert plain.accelerator == "cpu" and plain.accelerators == ()
    assert node_labels(plain) == {"kubevc.io/accelerator": "cpu", "kubevc.io/arch": "arm"}
    assert kube_arch("arm64") == "arm64"
    assert parse_inventory(["arch=", "machine=aarch64"]).architecture == "arm64"


def test_sysfs_gpu_without_pciutils() -> None:
    inventory = parse_inventory(["arch=amd64", "pci_sys=0000:01:00.0 0x10de 0x2504 0x030000"])
    assert inventory.kinds == ("nvidia",)
    assert inventory.accelerators[0].devices == ("0000:01:00.0",)
