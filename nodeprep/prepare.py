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
from .facts import NodePlatform
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
}


@dataclass(frozen=True)
class PrepareOptions:
    distribution: Distribution = "k3s"
    reboot: bool = True
    architectures: tuple[str, ...] = ()  # the region's declared architectures (empty: any supported)


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
    ops.containerd_config(
        systemd_cgroup=options.distribution == "kubeadm",
        restart=live and platform.systemd_running,
        name=OP_NAMES["containerd"],
    )
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
