"""Fixtures for the pyinfra @chroot tests: a real debootstrap'd Debian root, prepared once."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubevc.nodeprep.prepare import PrepareOptions, prepare_nodes
from kubevc.nodeprep.runner import RunReport, Target

from . import debroot

RPI_CMDLINE = (
    "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait\n"
)
FSTAB_EXTRA = "/var/swap  none  swap  sw  0  0\n"


@dataclass
class PreparedRoot:
    root: Path
    report: RunReport
    seconds: float
    snapshot: Path  # tarball of the root right after the first run


def chroot_target(root: Path) -> Target:
    return Target(f"@chroot{root}")


def make_fake_pi(root: Path) -> None:
    """What a Raspberry Pi OS image has that a debootstrap'd root lacks: cmdline.txt, swap, zram."""
    firmware = root / "boot/firmware"
    firmware.mkdir(parents=True, exist_ok=True)
    (firmware / "cmdline.txt").write_text(RPI_CMDLINE)
    with open(root / "etc/fstab", "a") as fstab:
        fstab.write(FSTAB_EXTRA)
    generator = root / "usr/lib/systemd/system-generators/zram-generator"
    generator.parent.mkdir(parents=True, exist_ok=True)
    generator.write_text("#!/bin/sh\n# stand-in for systemd-zram-generator\n")
    generator.chmod(0o755)


@pytest.fixture(scope="session")
def base_tarball() -> Path:
    reason = debroot.why_not_available()
    if reason:
        pytest.skip(reason)
    try:
        return debroot.base_tarball()
    except RuntimeError as error:  # the mirror is the only network these tests use
        pytest.skip(str(error))


@pytest.fixture
def fresh_root(base_tarball: Path, tmp_path: Path) -> Iterator[Callable[[Path | None], Path]]:
    """Restore a root (the base one, or a given snapshot) into a temporary folder."""
    made: list[Path] = []

    def make(tarball: Path | None = None) -> Path:
        dest = tmp_path / f"root{len(made)}"
        made.append(dest)
        return debroot.restore(tarball or base_tarball, dest)

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def prepared(base_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PreparedRoot]:
    """A fake-Pi Debian root after the first real `node prepare` run (kubeadm flavour)."""
    workdir = tmp_path_factory.mktemp("prepared")
    root = debroot.restore(base_tarball, workdir / "root")
    make_fake_pi(root)
    started = time.monotonic()
    report = prepare_nodes([chroot_target(root)], PrepareOptions(distribution="kubeadm"))
    seconds = time.monotonic() - started
    snapshot = workdir / "after-first-run.tar.zst"
    debroot.pack(root, snapshot)
    yield PreparedRoot(root, report, seconds, snapshot)
    shutil.rmtree(workdir, ignore_errors=True)
