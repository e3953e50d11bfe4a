"""What a node has: CPU, memory and accelerators, parsed from the inventory fact's output.

The :class:`kubevc.nodeprep.facts.NodeInventory` fact prints ``key=value`` lines (one round
trip); :func:`parse_inventory` turns them into an :class:`Inventory`, so every device kind is
testable with output recorded on real hardware:

* NVIDIA GPUs: ``lspci -nn`` lines of vendor ``10de`` in a display class (``0300`` VGA, ``0302``
  3D), or, without pciutils, ``/sys/bus/pci/devices/*/{vendor,device,class}``; the loaded driver
  from ``/proc/driver/nvidia/version``;
* Jetson (integrated NVIDIA GPU): ``/proc/device-tree/model`` naming a Jetson, or
  ``/etc/nv_tegra_release`` (the L4T release line JetPack writes);
* Coral Edge TPU: USB ids ``1a6e:089a`` (before its firmware is loaded) and ``18d1:9302`` (after),
  from ``lsusb`` or ``/sys/bus/usb/devices/*/{idVendor,idProduct}``; PCIe/M.2 ones as
  ``/dev/apex_*`` (the gasket driver);
* Hailo-8: ``/dev/hailo*`` (the hailo_pci driver).

Nothing here runs a command; the labels a joined node gets come from here too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ACCELERATOR_LABEL",
    "ACCELERATOR_PRECEDENCE",
    "ARCH_LABEL",
    "CORAL_USB_IDS",
    "NVIDIA_RUNTIME_BINARY",
    "Accelerator",
    "AcceleratorKind",
    "Inventory",
    "accelerator_label",
    "accelerator_labels",
    "kube_arch",
    "node_labels",
    "parse_inventory",
]

AcceleratorKind = Literal["nvidia", "jetson", "coral", "hailo"]

ACCELERATOR_LABEL = "kubevc.io/accelerator"
ARCH_LABEL = "kubevc.io/arch"
# A node carries one accelerator label; with several kinds the first of these wins (a GPU node
# that also has a Coral stick is labelled nvidia; the device-plugin resources still place a Coral
# model there).
ACCELERATOR_PRECEDENCE: tuple[AcceleratorKind, ...] = ("nvidia", "jetson", "hailo", "coral")
CORAL_USB_IDS = ("1a6e:089a", "18d1:9302")  # Global Unichip (no firmware yet), Google (running)
NVIDIA_RUNTIME_BINARY = "/usr/bin/nvidia-container-runtime"

_NVIDIA_VENDOR = "10de"
_DISPLAY_CLASSES = ("0300", "0302")  # VGA compatible, 3D controller
# `lspci -nn`: "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA106 [GeForce RTX
# 3060] [10de:2503] (rev a1)"
_LSPCI_LINE = re.compile(r"^(?P<slot>\S+)\s+(?P<cls>.+?)\s+\[(?P<code>[0-9a-f]{4})\]:\s+(?P<desc>.*)$")
_PCI_ID = re.compile(r"\[(?P<vendor>[0-9a-f]{4}):(?P<device>[0-9a-f]{4})\]")
_LSUSB_ID = re.compile(r"\bID\s+(?P<id>[0-9a-f]{4}:[0-9a-f]{4})\b", re.IGNORECASE)
_DEB_TO_KUBE_ARCH = {"amd64": "amd64", "arm64": "arm64", "armhf": "arm", "armel": "arm"}
_MACHINE_TO_DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "armv6l": "armhf"}


@dataclass(frozen=True)
class Accelerator:
    kind: AcceleratorKind
    count: int
    model: str | None = None
    devices: tuple[str, ...] = ()  # device files, PCI slots or USB ids it was found by

    def to_data(self) -> dict[str, Any]:
        """The region spec's spelling (``nodes[].inventory.accelerators[]``)."""
        data: dict[str, Any] = {"kind": self.kind, "count": self.count}
        if self.model:
            data["model"] = self.model
        if self.devices:
            data["devices"] = list(self.devices)
        return data


@dataclass(frozen=True)
class Inventory:
    architecture: str  # Debian architecture (amd64, arm64, armhf)
    cpu_model: str | None = None
    cpus: int | None = None
    memory_mib: int | None = None
    accelerators: tuple[Accelerator, ...] = ()
    nvidia_driver: str | None = None  # first line of /proc/driver/nvidia/version
    nvidia_runtime: bool = False  # nvidia-container-runtime is installed
    tegra_release: str | None = None  # first line of /etc/nv_tegra_release
    device_model: str | None = field(default=None)  # /proc/device-tree/model

    @property
    def kinds(self) -> tuple[AcceleratorKind, ...]:
        return tuple(a.kind for a in self.accelerators)

    @property
    def accelerator(self) -> str:
        """The node's ``kubevc.io/accelerator`` label value: the first kind by precedence, or cpu."""
        return accelerator_label(self.kinds)

    @property
    def has_nvidia_gpu(self) -> bool:
        """A GPU NVIDIA's container runtime drives (a discrete card or a Jetson's integrated one)."""
        return "nvidia" in self.kinds or "jetson" in self.kinds

    def to_data(self) -> dict[str, Any]:
        """The region spec's spelling (``nodes[].inventory``, camelCase, unknowns left out)."""
        data: dict[str, Any] = {"arch": self.architecture}
        if self.cpu_model:
            data["cpuModel"] = self.cpu_model
        if self.cpus:
            data["cpus"] = self.cpus
        if self.memory_mib:
            data["memoryMiB"] = self.memory_mib
        data["accelerators"] = [a.to_data() for a in self.accelerators]
        return data


def kube_arch(architecture: str) -> str:
    """Debian architecture -> the ``kubernetes.io/arch`` spelling (armhf -> arm)."""
    return _DEB_TO_KUBE_ARCH.get(architecture, architecture)


def accelerator_label(kinds: Iterable[str]) -> str:
    """``kubevc.io/accelerator``'s value for a node with these accelerator kinds (cpu: none)."""
    found = set(kinds)
    for kind in ACCELERATOR_PRECEDENCE:
        if kind in found:
            return kind
    return "cpu"


def accelerator_labels(kinds: Iterable[str], architecture: str) -> dict[str, str]:
    """The labels ``node join`` sets: ``kubevc.io/accelerator`` and ``kubevc.io/arch``."""
    return {ACCELERATOR_LABEL: accelerator_label(kinds), ARCH_LABEL: kube_arch(architecture)}


def node_labels(inventory: Inventory) -> dict[str, str]:
    """:func:`accelerator_labels` of a node's inventory."""
    return accelerator_labels(inventory.kinds, inventory.architecture)


def _nvidia_from_lspci(lines: Iterable[str]) -> list[tuple[str, str]]:
    found = []
    for line in lines:
        match = _LSPCI_LINE.match(line.strip())
        if not match or match.group("code") not in _DISPLAY_CLASSES:
            continue
        ids = _PCI_ID.findall(match.group("desc"))
        if not ids or ids[-1][0] != _NVIDIA_VENDOR:
            continue
        # "NVIDIA Corporation GA106 [GeForce RTX 3060] [10de:2503] (rev a1)": the bracketed
        # marketing name when lspci's database has one, else the chip description
        desc = _PCI_ID.sub("", match.group("desc"))
        desc = re.sub(r"\(rev [0-9a-f]+\)", "", desc).strip()
        bracket = re.search(r"\[([^\]]+)\]", desc)
        found.append((match.group("slot"), bracket.group(1) if bracket else " ".join(desc.split())))
    return found


def _nvidia_from_sysfs(entries: Iterable[str]) -> list[tuple[str, str]]:
    # "0000:01:00.0 0x10de 0x2503 0x030000"
    found = []
    for entry in entries:
        parts = entry.split()
        if len(parts) != 4:
            continue
        slot, vendor, device, cls = parts
        if vendor.lower().removeprefix("0x") == _NVIDIA_VENDOR and cls.lower().removeprefix("0x")[:4] in (
            _DISPLAY_CLASSES
        ):
            found.append((slot, f"NVIDIA device {device.lower().removeprefix('0x')}"))
    return found


def _mib(kib: str) -> int | None:
    try:
        return int(kib) // 1024
    except ValueError:
        return None


def parse_inventory(output: Iterable[str]) -> Inventory:
    """The :class:`Inventory` of the inventory fact's ``key=value`` lines."""
    values: dict[str, list[str]] = {}
    for raw in output:
        key, sep, value = raw.rstrip("\n").partition("=")
        if sep:
            values.setdefault(key.strip(), []).append(value.strip())

    def first(key: str) -> str | None:
        items = [v for v in values.get(key, []) if v]
        return items[0] if items else None

    architecture = first("arch") or _MACHINE_TO_DEB_ARCH.get(first("machine") or "", first("machine") or "")
    cpus_text = first("cpus")
    cpus = int(cpus_text) if cpus_text and cpus_text.isdigit() and int(cpus_text) > 0 else None
    mem = first("mem_kib")
    memory_mib = _mib(mem) if mem else None
    dt_model = first("dt_model")
    tegra = first("tegra")
    accelerators: list[Accelerator] = []

    gpus = _nvidia_from_lspci(values.get("pci", [])) or _nvidia_from_sysfs(values.get("pci_sys", []))
    if gpus:
        names = sorted({name for _, name in gpus})
        accelerators.append(
            Accelerator("nvidia", len(gpus), ", ".join(names), tuple(slot for slot, _ in gpus))
        )
    if (dt_model and "jetson" in dt_model.lower()) or tegra:
        accelerators.append(Accelerator("jetson", 1, dt_model or "NVIDIA Jetson", ()))

    # one line per device: `lsusb` lines when lsusb exists, else sysfs idVendor:idProduct pairs
    usb = [u.lower() for u in values.get("usb", []) if u] + _lsusb_ids(values.get("lsusb", []))
    corals_usb = [u for u in usb if u in CORAL_USB_IDS]
    apex = sorted(d for d in values.get("dev", []) if re.fullmatch(r"/dev/apex_\d+", d))
    if corals_usb or apex:
        if apex and corals_usb:
            model = "Coral Edge TPU (USB and PCIe)"
        else:
            model = "Coral USB Accelerator" if corals_usb else "Coral PCIe/M.2 Edge TPU"
        devices = (*apex, *sorted(set(corals_usb)))
        accelerators.append(Accelerator("coral", len(corals_usb) + len(apex), model, devices))
    hailo = sorted(d for d in values.get("dev", []) if re.fullmatch(r"/dev/hailo\d+", d))
    if hailo:
        accelerators.append(Accelerator("hailo", len(hailo), "Hailo-8", tuple(hailo)))

    return Inventory(
        architecture=architecture,
        cpu_model=first("cpu_model") or dt_model,
        cpus=cpus,
        memory_mib=memory_mib,
        accelerators=tuple(accelerators),
        nvidia_driver=first("nvidia_driver"),
        nvidia_runtime=first("nvidia_runtime") == "1",
        tegra_release=tegra,
        device_model=dt_model,
    )


def _lsusb_ids(lines: Iterable[str]) -> list[str]:
    ids = []
    for line in lines:
        match = _LSUSB_ID.search(line)
        if match:
            ids.append(match.group("id").lower())
    return ids
