"""Platform detection from recorded fact output, and the pure file transformations."""

from __future__ import annotations

import tomllib

import pytest

from kubevc.nodeprep import texts
from kubevc.nodeprep.facts import NodePlatform
from kubevc.nodeprep.platform import Runtime, UnsupportedPlatformError, parse_platform

# What the NodePlatform fact prints on real systems (os-release lines as the distributions ship them).
RPI_OS_ARM64 = """\
arch=arm64
machine=aarch64
os_PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
os_VERSION_ID="12"
os_VERSION_CODENAME=bookworm
os_ID=debian
model=Raspberry Pi 4 Model B Rev 1.4
rpi_issue=1
cmdline=/boot/firmware/cmdline.txt
runtime=live
init=systemd
systemctl=1
"""
RPI_OS_ARMHF = """\
arch=armhf
machine=armv7l
os_PRETTY_NAME="Raspbian GNU/Linux 12 (bookworm)"
os_ID=raspbian
os_ID_LIKE=debian
os_VERSION_CODENAME=bookworm
model=Raspberry Pi 3 Model B Plus Rev 1.3
cmdline=/boot/firmware/cmdline.txt
runtime=live
init=systemd
systemctl=1
"""
UBUNTU_ARM64_PI = """\
arch=arm64
machine=aarch64
os_PRETTY_NAME="Ubuntu 24.04.1 LTS"
os_VERSION_ID="24.04"
os_VERSION_CODENAME=noble
os_ID=ubuntu
os_ID_LIKE=debian
model=Raspberry Pi 5 Model B Rev 1.0
cmdline=/boot/firmware/cmdline.txt
runtime=live
init=systemd
systemctl=1
"""
DEBIAN_AMD64 = """\
arch=amd64
machine=x86_64
os_PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
os_ID=debian
os_VERSION_CODENAME=bookworm
runtime=live
init=systemd
systemctl=1
"""
UBUNTU_AMD64_CHROOT = """\
arch=amd64
machine=x86_64
os_ID=ubuntu
os_ID_LIKE=debian
runtime=chroot
"""
FEDORA = """\
arch=
machine=x86_64
os_PRETTY_NAME="Fedora Linux 40 (Server Edition)"
os_ID=fedora
runtime=live
"""
DEBIAN_RISCV = """\
arch=riscv64
machine=riscv64
os_ID=debian
runtime=live
"""


@pytest.mark.parametrize(
    ("output", "arch", "pi", "os_id", "runtime"),
    [
        (RPI_OS_ARM64, "arm64", True, "debian", Runtime.LIVE),
        (RPI_OS_ARMHF, "armhf", True, "raspbian", Runtime.LIVE),
        (UBUNTU_ARM64_PI, "arm64", True, "ubuntu", Runtime.LIVE),
        (DEBIAN_AMD64, "amd64", False, "debian", Runtime.LIVE),
        (UBUNTU_AMD64_CHROOT, "amd64", False, "ubuntu", Runtime.CHROOT),
    ],
)
def test_supported_platforms(output: str, arch: str, pi: bool, os_id: str, runtime: Runtime) -> None:
    platform = NodePlatform().process(output.splitlines())
    assert platform.architecture == arch
    assert platform.raspberry_pi is pi
    assert platform.os_id == os_id
    assert platform.family == "apt"
    assert platform.runtime is runtime
    assert platform.live is (runtime is Runtime.LIVE)
    platform.check_supported()
    assert "containerd" in platform.packages() and "open-iscsi" in platform.packages()
    assert (platform.cmdline_path is not None) is pi


def test_pretty_name_unquoted_and_systemd_flags() -> None:
    platform = parse_platform(RPI_OS_ARM64.splitlines())
    assert platform.pretty_name == "Debian GNU/Linux 12 (bookworm)"
    assert platform.codename == "bookworm" and platform.version_id == "12"
    assert platform.systemd_running and platform.has_systemctl
    offline = parse_platform(["arch=amd64", "os_ID=debian", "runtime=offline"])
    assert offline.runtime is Runtime.OFFLINE and not offline.systemd_running


def test_architecture_falls_back_to_uname() -> None:
    assert parse_platform(["machine=armv7l", "os_ID=debian"]).architecture == "armhf"
    assert parse_platform(["machine=aarch64", "os_ID=debian"]).architecture == "arm64"


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (FEDORA, "unsupported operating system: Fedora Linux 40"),
        (DEBIAN_RISCV, "unsupported architecture: riscv64"),
    ],
)
def test_unsupported_platforms(output: str, message: str) -> None:
    platform = parse_platform(output.splitlines())
    with pytest.raises(UnsupportedPlatformError, match=message):
        platform.packages()


# --- texts ---------------------------------------------------------------------------------------


def test_cmdline_tokens_once_and_order_kept() -> None:
    line = "console=tty1 root=PARTUUID=1 cgroup_memory=1 rootwait\n"
    once = texts.cmdline_with_tokens(line)
    assert (
        once
        == "console=tty1 root=PARTUUID=1 cgroup_memory=1 rootwait cgroup_enable=cpuset cgroup_enable=memory\n"
    )
    assert texts.cmdline_with_tokens(once) == once
    assert texts.cmdline_with_tokens("a b") == "a b " + " ".join(texts.RPI_CGROUP_TOKENS) + "\n"


def test_fstab_swap_commented_once() -> None:
    fstab = (
        "proc /proc proc defaults 0 0\n"
        "PARTUUID=1-02 / ext4 defaults,noatime 0 1\n"
        "/var/swap none swap sw 0 0\n"
        "  UUID=abc none swap sw,pri=5 0 0\n"
        "# /old none swap sw 0 0\n"
    )
    once = texts.fstab_without_swap(fstab)
    assert texts.fstab_swap_entries(once) == []
    assert once.count("# disabled by kubevc") == 2
    assert "PARTUUID=1-02 / ext4 defaults,noatime 0 1\n" in once
    assert texts.fstab_without_swap(once) == once
    assert texts.fstab_swap_entries(fstab) == [
        "/var/swap none swap sw 0 0",
        "  UUID=abc none swap sw,pri=5 0 0",
    ]


DEBIAN_CONTAINERD = """\
version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
"""

DEFAULT_STYLE = """\
version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    BinaryName = ""
    SystemdCgroup = false  # default
"""


def _runc(text: str, plugin: str = "io.containerd.grpc.v1.cri") -> dict[str, object]:
    runc: dict[str, object] = tomllib.loads(text)["plugins"][plugin]["containerd"]["runtimes"]["runc"]
    return runc


def test_containerd_debian_config_gets_runc_table() -> None:
    out = texts.containerd_systemd_cgroup(DEBIAN_CONTAINERD)
    assert out.startswith(DEBIAN_CONTAINERD)
    runc = _runc(out)
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"] == {"SystemdCgroup": True}
    assert texts.containerd_systemd_cgroup(out) == out


def test_containerd_existing_false_is_flipped_in_place() -> None:
    out = texts.containerd_systemd_cgroup(DEFAULT_STYLE)
    assert out == DEFAULT_STYLE.replace("SystemdCgroup = false  # default", "SystemdCgroup = true")
    assert _runc(out)["options"] == {"BinaryName": "", "SystemdCgroup": True}


def test_containerd_options_table_without_key() -> None:
    text = DEFAULT_STYLE.replace("    SystemdCgroup = false  # default\n", "")
    out = texts.containerd_systemd_cgroup(text)
    assert _runc(out)["options"] == {"SystemdCgroup": True, "BinaryName": ""}


def test_containerd_missing_file_and_version_3() -> None:
    assert texts.containerd_uses_systemd_cgroup(texts.containerd_systemd_cgroup(None))
    v3 = texts.containerd_systemd_cgroup("version = 3\n")
    assert _runc(v3, "io.containerd.cri.v1.runtime")["options"] == {"SystemdCgroup": True}
    with pytest.raises(ValueError, match="version 1"):
        texts.containerd_systemd_cgroup("oom_score = 0\n")


def test_sysctl_and_modules_content() -> None:
    assert texts.modules_load_content().splitlines()[1:] == ["overlay", "br_netfilter"]
    body = [line for line in texts.sysctl_content().splitlines() if not line.startswith("#")]
    assert body == [
        "net.ipv4.ip_forward = 1",
        "net.ipv6.conf.all.forwarding = 1",
        "net.bridge.bridge-nf-call-iptables = 1",
        "net.bridge.bridge-nf-call-ip6tables = 1",
    ]
