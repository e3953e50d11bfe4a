"""`node prepare` for real: pyinfra's @chroot connector against a debootstrap'd Debian root.

Packages really install from the Debian mirror with apt, files really change, and a second run
reports no change for every operation. No /proc is mounted in the root, so the operations see an
*offline* root and never touch the host's kernel (no modprobe, sysctl -w or swapoff here).
"""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from pyinfra.api.host import Host
from pyinfra.api.state import State

from kubevc.nodeprep import operations as ops
from kubevc.nodeprep import testing, texts
from kubevc.nodeprep.facts import NodePlatform
from kubevc.nodeprep.platform import APT_PACKAGES, Runtime
from kubevc.nodeprep.prepare import OP_NAMES, PrepareOptions, prepare_nodes
from kubevc.nodeprep.runner import RunReport, run_deploy
from kubevc.nodeprep.testing import FSTAB_EXTRA, RPI_CMDLINE, chroot_target, make_fake_pi

from .conftest import PreparedRoot

pytestmark = [pytest.mark.chroot, pytest.mark.slow]

FreshRoot = Callable[[Path | None], Path]


def dpkg_installed(root: Path) -> set[str]:
    out = subprocess.run(
        ["chroot", str(root), "dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package}\n"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {line.split()[1] for line in out.splitlines() if line.startswith("ii ")}


def run_one(root: Path, add: Callable[[], object], *, dry_run: bool = False) -> RunReport:
    def deploy(state: State, host: Host) -> None:
        add()

    return run_deploy([chroot_target(root)], deploy, dry_run=dry_run)


def single_outcome(report: RunReport) -> bool:
    assert report.ok, report.messages
    assert len(report.outcomes) == 1, report.outcomes
    return report.outcomes[0].changed


# --- first run -----------------------------------------------------------------------------------


def test_first_run_installs_packages(prepared: PreparedRoot) -> None:
    report = prepared.report
    assert report.ok, (report.failed_hosts, report.messages)
    assert report.outcome(report.outcomes[0].host, OP_NAMES["packages"]).changed
    installed = dpkg_installed(prepared.root)
    assert set(APT_PACKAGES) <= installed
    for binary in (
        "usr/bin/containerd",
        "usr/sbin/runc",
        "usr/bin/socat",
        "usr/sbin/conntrack",
        "usr/bin/curl",
    ):
        assert (prepared.root / binary).is_file(), binary
    assert (prepared.root / "usr/sbin/iscsiadm").is_file()


def test_first_run_writes_kernel_and_swap_files(prepared: PreparedRoot) -> None:
    root = prepared.root
    modules = (root / "etc/modules-load.d/kubevc-kubernetes.conf").read_text()
    assert [line for line in modules.splitlines() if not line.startswith("#")] == ["overlay", "br_netfilter"]
    sysctl = (root / "etc/sysctl.d/99-kubevc-kubernetes.conf").read_text()
    settings = {
        key.strip(): value.strip()
        for key, _, value in (line.partition("=") for line in sysctl.splitlines())
        if key and not key.startswith("#")
    }
    assert settings == texts.KUBERNETES_SYSCTLS
    assert oct((root / "etc/sysctl.d/99-kubevc-kubernetes.conf").stat().st_mode & 0o777) == "0o644"
    fstab = (root / "etc/fstab").read_text()
    swap_lines = [line for line in fstab.splitlines() if "/var/swap" in line]
    assert len(swap_lines) == 1 and swap_lines[0].startswith("#")
    assert texts.fstab_swap_entries(fstab) == []
    zram = root / "etc/systemd/zram-generator.conf"
    assert zram.read_text() == texts.ZRAM_GENERATOR_DISABLED


def test_first_run_adds_pi_cgroup_tokens_once(prepared: PreparedRoot) -> None:
    cmdline = (prepared.root / "boot/firmware/cmdline.txt").read_text()
    assert cmdline.count("\n") == 1 and cmdline.endswith("\n")
    words = cmdline.split()
    assert words[: len(RPI_CMDLINE.split())] == RPI_CMDLINE.split()
    for token in texts.RPI_CGROUP_TOKENS:
        assert words.count(token) == 1
    # the root is offline: no reboot, and the operator is told why
    assert any("reboot the node" in m for m in prepared.report.messages)
    assert all(o.name != OP_NAMES["reboot"] for o in prepared.report.outcomes)


def test_first_run_sets_systemd_cgroup_for_kubeadm(prepared: PreparedRoot) -> None:
    text = (prepared.root / "etc/containerd/config.toml").read_text()
    config = tomllib.loads(text)
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert config["version"] == 2
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert cri["containerd"]["runtimes"]["runc"]["runtime_type"] == "io.containerd.runc.v2"
    # Debian's own settings survive the edit
    assert cri["cni"]["bin_dir"] == "/usr/lib/cni"


def test_platform_fact_in_chroot(prepared: PreparedRoot) -> None:
    found = {}

    def deploy(state: State, host: Host) -> None:
        found["platform"] = host.get_fact(NodePlatform)

    run_deploy([chroot_target(prepared.root)], deploy, dry_run=True)
    platform = found["platform"]
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    assert platform.os_id == "debian" and platform.codename == "bookworm"
    assert platform.architecture == arch
    assert platform.runtime is Runtime.OFFLINE
    assert platform.raspberry_pi and platform.cmdline_path == "/boot/firmware/cmdline.txt"
    assert not platform.systemd_running


# --- second run and no-op cases ------------------------------------------------------------------


def test_second_run_reports_no_changes(prepared: PreparedRoot) -> None:
    before = testing.tree_digest(prepared.root)
    report = prepare_nodes([chroot_target(prepared.root)], PrepareOptions(distribution="kubeadm"))
    assert report.ok, report.messages
    assert len(report.outcomes) == len(prepared.report.outcomes)
    assert [o.name for o in report.changed()] == []
    assert all(o.success for o in report.outcomes)
    assert testing.tree_digest(prepared.root) == before


@pytest.mark.parametrize(
    "add",
    [
        pytest.param(lambda: ops.packages(names=APT_PACKAGES), id="packages"),
        pytest.param(lambda: ops.unit_enabled(unit="iscsid.service"), id="iscsid"),
        pytest.param(lambda: ops.kernel_modules(), id="kernel_modules"),
        pytest.param(lambda: ops.sysctl_settings(), id="sysctl"),
        pytest.param(lambda: ops.swap_off(), id="swap_off"),
        pytest.param(lambda: ops.swap_services(), id="swap_services"),
        pytest.param(lambda: ops.rpi_cgroups(cmdline_path="/boot/firmware/cmdline.txt"), id="rpi_cgroups"),
        pytest.param(lambda: ops.containerd_config(systemd_cgroup=True), id="containerd"),
        pytest.param(lambda: ops.containerd_config(systemd_cgroup=False), id="containerd_k3s"),
    ],
)
def test_operation_noop_on_prepared_root(prepared: PreparedRoot, add: Callable[[], object]) -> None:
    before = testing.tree_digest(prepared.root)
    assert single_outcome(run_one(prepared.root, add)) is False
    assert testing.tree_digest(prepared.root) == before


def test_operations_change_then_settle(prepared: PreparedRoot, fresh_root: FreshRoot) -> None:
    """Undo each setting on a copy of the prepared root: one run fixes it, the next is a no-op."""
    root = fresh_root(prepared.snapshot)
    (root / "etc/sysctl.d/99-kubevc-kubernetes.conf").write_text("net.ipv4.ip_forward = 0\n")
    (root / "etc/modules-load.d/kubevc-kubernetes.conf").unlink()
    with open(root / "etc/fstab", "a") as fstab:
        fstab.write("/dev/sda3 none swap defaults 0 0\n")
    (root / "boot/firmware/cmdline.txt").write_text("root=/dev/mmcblk0p2 cgroup_memory=1 rootwait\n")
    config = root / "etc/containerd/config.toml"
    config.write_text(config.read_text().replace("SystemdCgroup = true", "SystemdCgroup = false"))
    cases: list[tuple[str, Callable[[], object]]] = [
        ("sysctl", lambda: ops.sysctl_settings()),
        ("modules", lambda: ops.kernel_modules()),
        ("swap", lambda: ops.swap_off()),
        ("cmdline", lambda: ops.rpi_cgroups(cmdline_path="/boot/firmware/cmdline.txt")),
        ("containerd", lambda: ops.containerd_config()),
    ]
    for label, add in cases:
        assert single_outcome(run_one(root, add)) is True, label
        assert single_outcome(run_one(root, add)) is False, label
    words = (root / "boot/firmware/cmdline.txt").read_text().split()
    assert words == [
        "root=/dev/mmcblk0p2",
        "cgroup_memory=1",
        "rootwait",
        "cgroup_enable=cpuset",
        "cgroup_enable=memory",
    ]
    assert "SystemdCgroup = true" in config.read_text() and "SystemdCgroup = false" not in config.read_text()
    assert texts.fstab_swap_entries((root / "etc/fstab").read_text()) == []


def test_packages_installs_only_what_is_missing(prepared: PreparedRoot, fresh_root: FreshRoot) -> None:
    root = fresh_root(prepared.snapshot)
    subprocess.run(
        ["chroot", str(root), "sh", "-c", "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q socat"],
        check=True,
        capture_output=True,
    )
    assert "socat" not in dpkg_installed(root)
    report = run_one(root, lambda: ops.packages(names=APT_PACKAGES))
    assert single_outcome(report) is True
    assert "socat" in dpkg_installed(root)
    assert single_outcome(run_one(root, lambda: ops.packages(names=APT_PACKAGES))) is False


# --- dry run and the k3s flavour ------------------------------------------------------------------


def test_dry_run_changes_nothing(fresh_root: FreshRoot) -> None:
    root = fresh_root(None)
    make_fake_pi(root)
    before = testing.tree_digest(root)
    report = prepare_nodes([chroot_target(root)], PrepareOptions(distribution="kubeadm"), dry_run=True)
    assert report.dry_run and report.ok, report.messages
    would = {o.name for o in report.changed()}
    assert {OP_NAMES["packages"], OP_NAMES["sysctl"], OP_NAMES["cmdline"], OP_NAMES["swap"]} <= would
    assert all(o.success is None for o in report.outcomes)
    assert testing.tree_digest(root) == before
    assert FSTAB_EXTRA in (root / "etc/fstab").read_text()


def test_k3s_leaves_containerd_config_alone(prepared: PreparedRoot, fresh_root: FreshRoot) -> None:
    root = fresh_root(prepared.snapshot)
    config = root / "etc/containerd/config.toml"
    config.write_text("version = 2\n")
    report = prepare_nodes([chroot_target(root)], PrepareOptions(distribution="k3s"))
    assert report.ok, report.messages
    assert not report.outcome(report.outcomes[0].host, OP_NAMES["containerd"]).changed
    assert config.read_text() == "version = 2\n"
