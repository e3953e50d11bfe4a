"""Pure text transformations behind the file operations (each returns the *desired* content).

Operations compare the desired content with what the node has and only then yield commands, so
applying any of these functions to its own output must return the same text (idempotence).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "K3S_NVIDIA_DROPIN",
    "KERNEL_MODULES",
    "KUBERNETES_SYSCTLS",
    "RPI_CGROUP_TOKENS",
    "ZRAM_GENERATOR_DISABLED",
    "cmdline_with_tokens",
    "containerd_nvidia_runtime",
    "containerd_systemd_cgroup",
    "containerd_uses_nvidia_runtime",
    "containerd_uses_systemd_cgroup",
    "fstab_without_swap",
    "modules_load_content",
    "sysctl_content",
]

KERNEL_MODULES: tuple[str, ...] = ("overlay", "br_netfilter")

KUBERNETES_SYSCTLS: dict[str, str] = {
    "net.ipv4.ip_forward": "1",
    "net.ipv6.conf.all.forwarding": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
}

RPI_CGROUP_TOKENS: tuple[str, ...] = ("cgroup_enable=cpuset", "cgroup_memory=1", "cgroup_enable=memory")

ZRAM_GENERATOR_DISABLED = (
    "# Written by kubevc: no zram swap on Kubernetes nodes (an empty config creates no devices).\n"
)

_HEADER = "# Managed by kubevc (kubevc-gen node prepare); local edits are overwritten.\n"


def modules_load_content(modules: Iterable[str] = KERNEL_MODULES) -> str:
    return _HEADER + "".join(f"{name}\n" for name in modules)


def sysctl_content(values: Mapping[str, str] = KUBERNETES_SYSCTLS) -> str:
    return _HEADER + "".join(f"{key} = {value}\n" for key, value in values.items())


def cmdline_with_tokens(current: str, tokens: Iterable[str] = RPI_CGROUP_TOKENS) -> str:
    """Append the missing kernel command-line tokens; ``cmdline.txt`` must stay one line.

    Tokens already present (anywhere on the line) are not repeated; the existing order is kept.
    """
    words = current.split()
    for token in tokens:
        if token not in words:
            words.append(token)
    return " ".join(words) + "\n"


_COMMENT_PREFIX = "# disabled by kubevc (no swap on Kubernetes nodes): "


def fstab_without_swap(current: str) -> str:
    """Comment out every active swap entry of an fstab (type field ``swap``)."""
    out: list[str] = []
    for line in current.splitlines(keepends=True):
        stripped = line.strip()
        fields = stripped.split()
        if stripped and not stripped.startswith("#") and len(fields) >= 3 and fields[2] == "swap":
            out.append(_COMMENT_PREFIX + line.lstrip())
        else:
            out.append(line)
    text = "".join(out)
    if current and not text.endswith("\n"):
        text += "\n"
    return text


def fstab_swap_entries(current: str) -> list[str]:
    """The active swap lines of an fstab (empty when swap is already off at boot)."""
    entries = []
    for line in current.splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#") and len(fields) >= 3 and fields[2] == "swap":
            entries.append(line)
    return entries


# containerd 1.x config (version 2) and 2.x config (version 3) keep the runc options in
# different plugin tables.
_RUNC_TABLES = {
    2: 'plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc',
    3: 'plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc',
}
_RUNC_PATH = {
    2: ("plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", "runc"),
    3: ("plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc"),
}
_SYSTEMD_LINE = re.compile(r"^(\s*)SystemdCgroup\s*=\s*\S+(.*)$")
_TABLE_LINE = re.compile(r"^\s*\[\[?\s*(.+?)\s*\]\]?\s*(#.*)?$")


def _lookup(data: Mapping[str, Any], path: Iterable[str]) -> Any:
    node: Any = data
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _normalise_table(name: str) -> str:
    return re.sub(r"\s*\.\s*", ".", name.strip())


def containerd_uses_systemd_cgroup(text: str) -> bool:
    """True when the config makes runc use the systemd cgroup driver."""
    data = tomllib.loads(text)
    version = int(data.get("version", 1))
    if version not in _RUNC_PATH:
        return False
    return _lookup(data, (*_RUNC_PATH[version], "options", "SystemdCgroup")) is True


def containerd_systemd_cgroup(current: str | None) -> str:
    """Return ``config.toml`` with ``SystemdCgroup = true`` for runc (kubeadm's cgroup driver).

    Debian's containerd 1.6 ships a ``version = 2`` file without any runtime table; the setting is
    edited in place when the options table exists, otherwise the runc table is appended (TOML lets
    a sub-table follow its parents anywhere). Other settings and comments stay as they are.
    """
    text = current if current and current.strip() else "version = 2\n"
    data = tomllib.loads(text)
    if containerd_uses_systemd_cgroup(text):
        return text
    version = int(data.get("version", 1))
    if version not in _RUNC_TABLES:
        raise ValueError(f"containerd config version {version} is not supported (expected 2 or 3)")
    runc_table = _RUNC_TABLES[version]
    options_table = f"{runc_table}.options"
    lines = text.splitlines(keepends=True)
    current_table = ""
    options_seen = False
    for index, line in enumerate(lines):
        table = _TABLE_LINE.match(line)
        if table:
            current_table = _normalise_table(table.group(1))
            if current_table == options_table:
                options_seen = True
                # insert right after the header when the key is absent; replaced below if present
                insert_at = index + 1
            continue
        if current_table == options_table:
            match = _SYSTEMD_LINE.match(line)
            if match:
                newline = "\n" if line.endswith("\n") else ""
                lines[index] = f"{match.group(1)}SystemdCgroup = true{newline}"
                result = "".join(lines)
                break
    else:
        if options_seen:
            lines.insert(insert_at, "  SystemdCgroup = true\n")
            result = "".join(lines)
        else:
            if not text.endswith("\n"):
                text += "\n"
            block = "\n# kubeadm: the kubelet uses the systemd cgroup driver, so runc must too.\n"
            runc = _lookup(data, _RUNC_PATH[version])
            if runc is None:
                block += f'[{runc_table}]\n  runtime_type = "io.containerd.runc.v2"\n'
            block += f"[{options_table}]\n  SystemdCgroup = true\n"
            result = text + block
    if not containerd_uses_systemd_cgroup(result):  # pragma: no cover - guards the text edit
        raise ValueError("could not set SystemdCgroup in the containerd config")
    return result


# --- NVIDIA container runtime -----------------------------------------------------------------------

_CRI_CONTAINERD_PATH = {
    2: ("plugins", "io.containerd.grpc.v1.cri", "containerd"),
    3: ("plugins", "io.containerd.cri.v1.runtime", "containerd"),
}
_DEFAULT_RUNTIME_LINE = re.compile(r"^(\s*)default_runtime_name\s*=.*$")

# k3s writes containerd's config itself from its own template, and adds an ``nvidia`` runtime on
# its own when it finds nvidia-container-runtime on the node; a config.toml.tmpl would replace that
# template (and redefine its nvidia table). What is left to set is the default runtime, which k3s
# takes as an agent option: a config.yaml.d drop-in, read by both k3s server and agent.
K3S_NVIDIA_DROPIN = (
    _HEADER + "# NVIDIA GPU node: containers run with nvidia-container-runtime unless they pick another.\n"
    "default-runtime: nvidia\n"
)


def containerd_uses_nvidia_runtime(text: str, binary: str) -> bool:
    """True when the config has an ``nvidia`` runtime running ``binary`` and it is the default."""
    data = tomllib.loads(text)
    path = _CRI_CONTAINERD_PATH.get(int(data.get("version", 1)))
    if path is None:
        return False
    return bool(
        _lookup(data, (*path, "default_runtime_name")) == "nvidia"
        and _lookup(data, (*path, "runtimes", "nvidia", "options", "BinaryName")) == binary
    )


def containerd_nvidia_runtime(current: str | None, binary: str, systemd_cgroup: bool = True) -> str:
    """Return ``config.toml`` (kubeadm's containerd) with the NVIDIA runtime as the default.

    Adds the ``nvidia`` runtime table (runc v2 shim running ``binary``) when it is missing and sets
    ``default_runtime_name = "nvidia"`` in the CRI containerd table (edited in place when the table
    is written out, else the table is appended: TOML lets a parent table follow its sub-tables).
    A config that already does both comes back unchanged.
    """
    text = current if current and current.strip() else "version = 2\n"
    if containerd_uses_nvidia_runtime(text, binary):
        return text
    data = tomllib.loads(text)
    version = int(data.get("version", 1))
    if version not in _CRI_CONTAINERD_PATH:
        raise ValueError(f"containerd config version {version} is not supported (expected 2 or 3)")
    containerd_table = ".".join(
        [_CRI_CONTAINERD_PATH[version][0], f'"{_CRI_CONTAINERD_PATH[version][1]}"', "containerd"]
    )
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    header_at = None
    current_table = ""
    replaced = False
    for index, line in enumerate(lines):
        table = _TABLE_LINE.match(line)
        if table:
            current_table = _normalise_table(table.group(1))
            if current_table == containerd_table:
                header_at = index
            continue
        if current_table == containerd_table and _DEFAULT_RUNTIME_LINE.match(line):
            indent = _DEFAULT_RUNTIME_LINE.match(line).group(1)  # type: ignore[union-attr]
            lines[index] = f'{indent}default_runtime_name = "nvidia"\n'
            replaced = True
    if not replaced and header_at is not None:
        lines.insert(header_at + 1, '  default_runtime_name = "nvidia"\n')
    block = ""
    if not replaced and header_at is None:
        block += f'\n[{containerd_table}]\n  default_runtime_name = "nvidia"\n'
    nvidia = _lookup(data, (*_CRI_CONTAINERD_PATH[version], "runtimes", "nvidia"))
    if nvidia is None:
        block += (
            "\n# NVIDIA GPU node: the NVIDIA container runtime (nvidia-container-toolkit) as the default.\n"
            f'[{containerd_table}.runtimes.nvidia]\n  runtime_type = "io.containerd.runc.v2"\n'
            f'[{containerd_table}.runtimes.nvidia.options]\n  BinaryName = "{binary}"\n'
            f"  SystemdCgroup = {'true' if systemd_cgroup else 'false'}\n"
        )
    result = "".join(lines) + block
    if not containerd_uses_nvidia_runtime(result, binary):
        raise ValueError(
            "the containerd config has an nvidia runtime with another BinaryName; fix it by hand "
            "(nvidia-ctk runtime configure --runtime=containerd) and run node prepare again"
        )
    return result
