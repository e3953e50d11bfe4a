"""What a node is: operating system family, Debian architecture, Raspberry Pi, how it runs.

Everything here is pure: :class:`Platform` is parsed from the ``key=value`` lines the
:class:`kubevc.nodeprep.facts.NodePlatform` fact prints, so detection is testable with recorded
fact output for every supported combination (Debian, Ubuntu, Raspberry Pi OS; amd64, arm64, armhf).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from .errors import UnsupportedPlatformError

__all__ = [
    "APT_PACKAGES",
    "SUPPORTED_ARCHITECTURES",
    "Platform",
    "Runtime",
    "UnsupportedPlatformError",
    "parse_platform",
]

SUPPORTED_ARCHITECTURES = ("amd64", "arm64", "armhf")

# `uname -m` -> Debian architecture, used only when dpkg cannot answer.
_MACHINE_TO_DEB_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "armhf",
    "armv6l": "armhf",
}

# The apt family (Debian, Ubuntu, Raspberry Pi OS) names every package the same way.
APT_PACKAGES: tuple[str, ...] = (
    "socat",
    "conntrack",
    "nfs-common",
    "open-iscsi",
    "containerd",
    "runc",
    "curl",
    "ca-certificates",
)

_APT_IDS = {"debian", "ubuntu", "raspbian"}


class Runtime(StrEnum):
    """How the target root is running, which decides what may be changed *now*.

    ``live``: a booted system (modprobe, sysctl -w, swapoff, service restarts, reboot allowed).
    ``chroot``: another root seen from a running kernel (/proc mounted but PID 1 lives elsewhere).
    ``offline``: no /proc at all (an image or a debootstrap'd tree); only files change.
    """

    LIVE = "live"
    CHROOT = "chroot"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Platform:
    os_id: str
    os_like: tuple[str, ...]
    version_id: str
    codename: str
    pretty_name: str
    architecture: str
    machine: str
    model: str
    raspberry_pi: bool
    cmdline_path: str | None
    runtime: Runtime
    systemd_running: bool
    has_systemctl: bool

    @property
    def family(self) -> str:
        """``apt`` for Debian and its derivatives, otherwise the os-release ID."""
        if self.os_id in _APT_IDS or _APT_IDS.intersection(self.os_like):
            return "apt"
        return self.os_id or "unknown"

    @property
    def live(self) -> bool:
        return self.runtime is Runtime.LIVE

    def packages(self) -> tuple[str, ...]:
        """The node packages for this platform's family (raises for unsupported ones)."""
        self.check_supported()
        return APT_PACKAGES

    def check_supported(self) -> None:
        if self.family != "apt":
            name = self.pretty_name or self.os_id or "an unknown operating system"
            raise UnsupportedPlatformError(
                f"unsupported operating system: {name} (supported: Debian, Ubuntu, Raspberry Pi OS)"
            )
        if self.architecture not in SUPPORTED_ARCHITECTURES:
            raise UnsupportedPlatformError(
                f"unsupported architecture: {self.architecture or self.machine or 'unknown'} "
                f"(supported: {', '.join(SUPPORTED_ARCHITECTURES)})"
            )


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_platform(lines: Iterable[str]) -> Platform:
    """Build a :class:`Platform` from the fact's ``key=value`` output lines."""
    values: dict[str, str] = {}
    for raw in lines:
        key, sep, value = raw.strip().partition("=")
        if sep and key and key not in values:
            values[key] = _unquote(value)

    machine = values.get("machine", "")
    arch = values.get("arch", "") or _MACHINE_TO_DEB_ARCH.get(machine, machine)
    model = values.get("model", "").strip("\x00 ").strip()
    cmdline = values.get("cmdline") or None
    os_id = values.get("os_ID", "").lower()
    raspberry_pi = (
        model.startswith("Raspberry Pi")
        or values.get("rpi_issue") == "1"
        or os_id == "raspbian"
        or cmdline is not None
    )
    try:
        runtime = Runtime(values.get("runtime", "live"))
    except ValueError:
        runtime = Runtime.LIVE
    return Platform(
        os_id=os_id,
        os_like=tuple(values.get("os_ID_LIKE", "").lower().split()),
        version_id=values.get("os_VERSION_ID", ""),
        codename=values.get("os_VERSION_CODENAME", ""),
        pretty_name=values.get("os_PRETTY_NAME", ""),
        architecture=arch,
        machine=machine,
        model=model,
        raspberry_pi=raspberry_pi,
        cmdline_path=cmdline,
        runtime=runtime,
        systemd_running=values.get("init") == "systemd",
        has_systemctl=values.get("systemctl") == "1",
    )
