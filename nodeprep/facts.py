"""Every pyinfra fact kubevc.nodeprep reads: node preparation, cluster init and join (all read-only)."""

from __future__ import annotations

import base64
import binascii
import shlex

from pyinfra.api.exceptions import FactProcessError
from pyinfra.api.facts import FactBase
from typing_extensions import override

from .plans.inventory import NVIDIA_RUNTIME_BINARY, Inventory, parse_inventory
from .plans.k3s import K3S_BINARY
from .platform import Platform, parse_platform

__all__ = [
    "ActiveSwaps",
    "FileBytes",
    "FileSha256",
    "K3sVersion",
    "LoadedKernelModules",
    "NodeInventory",
    "NodePlatform",
    "SysctlValues",
    "UnitEnabled",
]

_OS_RELEASE_KEYS = "ID|ID_LIKE|VERSION_ID|VERSION_CODENAME|PRETTY_NAME"

# One round trip: Debian architecture, os-release, Raspberry Pi hints, and whether this root is a
# booted system ("live"), a chroot under a running kernel, or a tree without /proc ("offline").
_PLATFORM_SCRIPT = f"""
printf 'arch=%s\\n' "$(dpkg --print-architecture 2>/dev/null)"
printf 'machine=%s\\n' "$(uname -m)"
if [ -r /etc/os-release ]; then grep -E '^({_OS_RELEASE_KEYS})=' /etc/os-release | sed 's/^/os_/'; fi
for f in /proc/device-tree/model /sys/firmware/devicetree/base/model; do
  if [ -r "$f" ]; then printf 'model=%s\\n' "$(tr -d '\\000' < "$f")"; break; fi
done
if [ -e /etc/rpi-issue ]; then echo rpi_issue=1; fi
for f in /boot/firmware/cmdline.txt /boot/cmdline.txt; do
  if [ -f "$f" ] && ! grep -q 'DO NOT EDIT' "$f"; then echo "cmdline=$f"; break; fi
done
if [ ! -d /proc/sys ]; then echo runtime=offline
elif a=$(stat -Lc %d:%i / 2>/dev/null) && b=$(stat -Lc %d:%i /proc/1/root/. 2>/dev/null); then
  if [ "$a" = "$b" ]; then echo runtime=live; else echo runtime=chroot; fi
elif command -v systemd-detect-virt >/dev/null 2>&1 && systemd-detect-virt -q --chroot; then
  echo runtime=chroot
else echo runtime=live
fi
if [ -d /run/systemd/system ]; then echo init=systemd; fi
if command -v systemctl >/dev/null 2>&1; then echo systemctl=1; fi
"""


class NodePlatform(FactBase[Platform]):
    """Operating system, Debian architecture, Raspberry Pi and runtime of the target root."""

    @override
    def command(self) -> str:
        return _PLATFORM_SCRIPT

    @override
    def process(self, output: list[str]) -> Platform:
        return parse_platform(output)


class FileBytes(FactBase[bytes | None]):
    """The exact bytes of a regular file (``None`` when it does not exist).

    base64 keeps trailing newlines and whitespace that line-based output would lose.
    """

    @override
    def command(self, path: str) -> str:
        quoted = "'" + path.replace("'", "'\\''") + "'"
        return f"if [ -f {quoted} ]; then printf 'present:'; base64 -w0 {quoted}; echo; else echo absent; fi"

    @override
    def process(self, output: list[str]) -> bytes | None:
        line = "".join(output).strip()
        if line == "absent":
            return None
        if not line.startswith("present:"):
            raise FactProcessError(f"unexpected output: {line[:40]!r}")
        try:
            return base64.b64decode(line.removeprefix("present:"), validate=True)
        except binascii.Error as error:
            raise FactProcessError(str(error)) from error


class LoadedKernelModules(FactBase[list[str]]):
    """Which of the given modules the running kernel has (loaded or built in: /sys/module)."""

    @staticmethod
    @override
    def default() -> list[str]:
        return []

    @override
    def command(self, names: tuple[str, ...]) -> str:
        checks = " ".join(names)
        return f"for m in {checks}; do if [ -d /sys/module/$m ]; then echo $m; fi; done; true"

    @override
    def process(self, output: list[str]) -> list[str]:
        return [line.strip() for line in output if line.strip()]


class SysctlValues(FactBase[dict[str, str]]):
    """Current kernel values of the given sysctl keys (missing keys are left out)."""

    @staticmethod
    @override
    def default() -> dict[str, str]:
        return {}

    @override
    def command(self, keys: tuple[str, ...]) -> str:
        paths = " ".join(key.replace(".", "/") for key in keys)
        return (
            f"for k in {paths}; do if [ -r /proc/sys/$k ]; then "
            'printf "%s=%s\\n" "$k" "$(cat /proc/sys/$k)"; fi; done; true'
        )

    @override
    def process(self, output: list[str]) -> dict[str, str]:
        values = {}
        for line in output:
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip().replace("/", ".")] = value.strip()
        return values


class ActiveSwaps(FactBase[list[str]]):
    """Swap areas in use now (/proc/swaps without its header)."""

    @staticmethod
    @override
    def default() -> list[str]:
        return []

    @override
    def command(self) -> str:
        return "if [ -r /proc/swaps ]; then tail -n +2 /proc/swaps; fi"

    @override
    def process(self, output: list[str]) -> list[str]:
        return [line.split()[0] for line in output if line.strip()]


class UnitEnabled(FactBase[str | None]):
    """``systemctl is-enabled`` for a unit: enabled, disabled, masked, static… or None if absent."""

    @override
    def command(self, unit: str) -> str:
        return (
            "if command -v systemctl >/dev/null 2>&1; then "
            f"systemctl is-enabled {unit} 2>/dev/null || true; fi"
        )

    @override
    def process(self, output: list[str]) -> str | None:
        state = "".join(output).strip()
        if not state or state == "not-found":
            return None
        return state


class FileSha256(FactBase[str | None]):
    """sha256 hex digest of a regular file (``None`` when it does not exist)."""

    @override
    def command(self, path: str) -> str:
        quoted = shlex.quote(path)
        return f"if [ -f {quoted} ]; then sha256sum {quoted} | cut -d' ' -f1; fi"

    @override
    def process(self, output: list[str]) -> str | None:
        return output[0].strip() if output and output[0].strip() else None


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


# One round trip: architecture, CPU, memory and every accelerator hint (plans/inventory.py parses
# it). Tools that a minimal image lacks (lspci from pciutils, lsusb from usbutils) are optional:
# sysfs answers the same questions. In a root without /proc or /sys mounted (an image, or the
# debootstrap'd test root) the same paths are read as plain files.
_INVENTORY_SCRIPT = f"""
printf 'arch=%s\\n' "$(dpkg --print-architecture 2>/dev/null)"
printf 'machine=%s\\n' "$(uname -m)"
if [ -r /proc/cpuinfo ]; then
  printf 'cpus=%s\\n' "$(grep -c '^processor' /proc/cpuinfo)"
  grep -m1 -E '^(model name|Model|Hardware)[[:space:]]*:' /proc/cpuinfo \\
    | sed 's/^[^:]*:[[:space:]]*/cpu_model=/'
fi
if [ -r /proc/meminfo ]; then awk '/^MemTotal:/ {{print "mem_kib=" $2}}' /proc/meminfo; fi
for f in /proc/device-tree/model /sys/firmware/devicetree/base/model; do
  if [ -r "$f" ]; then printf 'dt_model=%s\\n' "$(tr -d '\\000' < "$f")"; break; fi
done
if [ -r /etc/nv_tegra_release ]; then head -n1 /etc/nv_tegra_release | sed 's/^/tegra=/'; fi
if [ -r /proc/driver/nvidia/version ]; then
  head -n1 /proc/driver/nvidia/version | sed 's/^/nvidia_driver=/'
fi
if [ -x {NVIDIA_RUNTIME_BINARY} ]; then echo nvidia_runtime=1; fi
if command -v lspci >/dev/null 2>&1; then lspci -nn 2>/dev/null | sed 's/^/pci=/'
else
  for d in /sys/bus/pci/devices/*; do
    if [ -r "$d/vendor" ]; then
      printf 'pci_sys=%s %s %s %s\\n' "${{d##*/}}" \\
        "$(cat "$d/vendor")" "$(cat "$d/device")" "$(cat "$d/class")"
    fi
  done
fi
if command -v lsusb >/dev/null 2>&1; then lsusb 2>/dev/null | sed 's/^/lsusb=/'
else
  for d in /sys/bus/usb/devices/*; do
    if [ -r "$d/idVendor" ] && [ -r "$d/idProduct" ]; then
      printf 'usb=%s:%s\\n' "$(cat "$d/idVendor")" "$(cat "$d/idProduct")"
    fi
  done
fi
for f in /dev/apex_* /dev/hailo*; do if [ -e "$f" ]; then echo "dev=$f"; fi; done
true
"""


class NodeInventory(FactBase[Inventory]):
    """CPU architecture and model, memory, NVIDIA GPU / Jetson / Coral / Hailo of the target root."""

    @override
    def command(self) -> str:
        return _INVENTORY_SCRIPT

    @override
    def process(self, output: list[str]) -> Inventory:
        return parse_inventory(output)
