"""The plan `node prepare` makes for a *live* Raspberry Pi, checked as a dry run on a real root.

The platform fact is replaced by one reporting a booted Raspberry Pi OS (systemd running), so the
operations are added exactly as on a Pi; the run is a dry run, so nothing executes (no modprobe,
sysctl -w, swapoff or reboot can reach this machine).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typing_extensions import override

from kubevc.nodeprep import prepare as prepare_mod
from kubevc.nodeprep import testing
from kubevc.nodeprep.facts import NodePlatform
from kubevc.nodeprep.prepare import OP_NAMES, PrepareOptions, prepare_nodes
from kubevc.nodeprep.testing import chroot_target, make_fake_pi

from .test_platform_texts import RPI_OS_ARM64

pytestmark = [pytest.mark.chroot, pytest.mark.slow]


class LivePiPlatform(NodePlatform):
    @override
    def command(self) -> str:
        return "printf '%s' '" + RPI_OS_ARM64.replace("'", "") + "'"


@pytest.mark.parametrize("reboot", [True, False])
def test_live_pi_plan(
    fresh_root: Callable[[Path | None], Path], monkeypatch: pytest.MonkeyPatch, reboot: bool
) -> None:
    root = fresh_root(None)
    make_fake_pi(root)
    monkeypatch.setattr(prepare_mod, "NodePlatform", LivePiPlatform)
    before = testing.tree_digest(root)
    dry_run = True  # never run live-node commands against this machine
    report = prepare_nodes([chroot_target(root)], PrepareOptions("kubeadm", reboot=reboot), dry_run=dry_run)
    assert report.ok, report.messages
    names = [o.name for o in report.outcomes]
    would = {o.name for o in report.changed()}
    assert report.messages[0].startswith("@chroot")
    assert "Debian GNU/Linux 12 (bookworm) arm64 (Raspberry Pi), root is live" in report.messages[0]
    assert {OP_NAMES["modules"], OP_NAMES["cmdline"], OP_NAMES["containerd"]} <= would
    if reboot:
        assert names.index(OP_NAMES["reboot"]) == names.index(OP_NAMES["cmdline"]) + 1
        assert not any("reboot the node" in m for m in report.messages)
    else:
        assert OP_NAMES["reboot"] not in names
        assert any("not rebooted: --no-reboot" in m for m in report.messages)
    assert testing.tree_digest(root) == before
