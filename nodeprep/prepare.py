"""``node prepare``: take a Debian-family device to a node k3s or kubeadm can run on."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from pyinfra.api.host import Host
from pyinfra.api.state import State
from pyinfra.operations import server

from . import operations as ops
from .errors import UnsupportedPlatformError
from .facts import NodeInventory, NodePlatform
from .plans.inventory import Inventory
from .platform import Platform
from .runner import RunReport, Target, run_deploy

__all__ = ["OP_NAMES", "PrepareOptions", "add_prepare_ops", "prepare_nodes"]

Distribution = Literal["k3s", "kubeadm"]

# Operation names as they appear in reports, in execution order.
OP_NAMES = {
    "packages": "kubevc: node packages",
    "iscsid": "kubevc: enable iscsid",
    "modules": "kubevc: kernel modules overlay + br_netfilter",
    "sysctl": "kubevc: sysctl for Kubernetes networking",
    "swap": "kubevc: swap off (fstab, now)",
    "swap_services": "kubevc: swap services disabled",
    "cmdline": "kubevc: Raspberry Pi cgroups in cmdline.txt",
    "containerd": "kubevc: containerd SystemdCgroup",
    "reboot": "kubevc: reboot for the new kernel command line",
    "nvidia_runtime": "kubevc: k3s default runtime nvidia",
}

# What node prepare does not install, per accelerator, and why: the distribution does not package
# it (NVIDIA's container toolkit, Coral's libedgetpu/gasket driver and HailoRT come from their
# vendors' own apt repositories), or installing a GPU driver needs non-free sources and a reboot.
ACCELERATOR_HINTS = {
    "nvidia_driver": (
        "NVIDIA GPU without a loaded driver: Debian packages it as nvidia-driver (+ firmware-misc-nonfree, "
        "non-free component); install it and reboot"
    ),
    "nvidia_runtime": (
        "NVIDIA GPU but no nvidia-container-runtime: install nvidia-container-toolkit (NVIDIA's apt "
        "repository; Debian does not package it; on a Jetson it comes with JetPack), then run node "
        "prepare again; containerd is left as it is"
    ),
    "coral": (
        "Coral Edge TPU: the device plugin hands /dev/apex_* (PCIe: gasket-dkms) or the USB bus to pods; "
        "libedgetpu and gasket-dkms come from Google's Coral apt repository (Debian does not package them)"
    ),
    "hailo": (
        "Hailo: /dev/hailo* comes from the hailo_pci driver (Raspberry Pi OS: hailo-all; elsewhere "
        "Hailo's own packages; Debian does not package it)"
    ),
}


@dataclass(frozen=True)
class PrepareOptions:
    distribution: Distribution = "k3s"
    reboot: bool = True
    architectures: tuple[str, ...] = ()  # the region's declared architectures (empty: any supported)
    # called with (host name, its inventory) once the inventory fact is read
    on_inventory: Callable[[str, Inventory], None] | None = None


def add_prepare_ops(host: Host, options: PrepareOptions) -> list[str]:
    """Add the preparation operations for the current host; returns operator messages."""
    platform: Platform = host.get_fact(NodePlatform)
    platform.check_supported()
    if options.architectures and platform.architecture not in options.architectures:
        raise UnsupportedPlatformError(
            f"the node is {platform.architecture} but the region lists {', '.join(options.architectures)}; "
            "add the architecture to the region first (images and charts are chosen per architecture)"
        )
    live = platform.live
    messages = [
        f"{platform.pretty_name or platform.os_id} {platform.architecture}"
        f"{' (Raspberry Pi)' if platform.raspberry_pi else ''}, root is {platform.runtime.value}"
    ]
    ops.packages(names=platform.packages(), name=OP_NAMES["packages"])
    ops.unit_enabled(
        unit="iscsid.service", restart=live and platform.systemd_running, name=OP_NAMES["iscsid"]
    )
    ops.kernel_modules(load_now=live, name=OP_NAMES["modules"])
    ops.sysctl_settings(apply_now=live, name=OP_NAMES["sysctl"])
    ops.swap_off(now=live, name=OP_NAMES["swap"])
    ops.swap_services(now=live and platform.systemd_running, name=OP_NAMES["swap_services"])
    if platform.raspberry_pi and platform.cmdline_path:
        cmdline = ops.rpi_cgroups(cmdline_path=platform.cmdline_path, name=OP_NAMES["cmdline"])
        if options.reboot and live:
            server.reboot(name=OP_NAMES["reboot"], _if=cmdline.did_change)
        elif cmdline.will_change:
            why = "--no-reboot" if live else f"the root is {platform.runtime.value}"
            messages.append(
                f"{platform.cmdline_path} changes; reboot the node for the cgroup settings to apply "
                f"(not rebooted: {why})"
            )
    inventory: Inventory = host.get_fact(NodeInventory)
    if options.on_inventory is not None:
        options.on_inventory(host.name, inventory)
    messages += _accelerator_ops(inventory, options, live and platform.systemd_running)
    return messages


def _accelerator_ops(inventory: Inventory, options: PrepareOptions, restart: bool) -> list[str]:
    """The node prep an accelerator needs (only what the distribution packages); operator notes."""
    kinds = ", ".join(inventory.kinds) or "none"
    messages = [f"accelerators: {kinds} (kubevc.io/accelerator={inventory.accelerator})"]
    nvidia = inventory.has_nvidia_gpu and inventory.nvidia_runtime
    ops.containerd_config(
        systemd_cgroup=options.distribution == "kubeadm",
        nvidia_runtime=nvidia and options.distribution == "kubeadm",
        restart=restart,
        name=OP_NAMES["containerd"],
    )
    if nvidia and options.distribution == "k3s":
        ops.nvidia_k3s_runtime(name=OP_NAMES["nvidia_runtime"])
    if "nvidia" in inventory.kinds and inventory.nvidia_driver is None:
        messages.append(ACCELERATOR_HINTS["nvidia_driver"])
    if inventory.has_nvidia_gpu and not inventory.nvidia_runtime:
        messages.append(ACCELERATOR_HINTS["nvidia_runtime"])
    for kind in ("coral", "hailo"):
        if kind in inventory.kinds:
            messages.append(ACCELERATOR_HINTS[kind])
    return messages


def prepare_nodes(
    targets: Iterable[Target],
    options: PrepareOptions,
    *,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RunReport:
    """Prepare every target; in a dry run only report which operations would change something."""

    def deploy(state: State, host: Host) -> list[str]:
        if progress:
            progress(f"{host.name}: reading facts")
        return add_prepare_ops(host, options)

    report = run_deploy(targets, deploy, dry_run=dry_run)
    if progress:
        for outcome in report.outcomes:
            verb = "would change" if dry_run and outcome.changed else "changed" if outcome.changed else "ok"
            if outcome.success is False:
                verb = "FAILED"
            progress(f"{outcome.host}: {outcome.name}: {verb}")
    return report
