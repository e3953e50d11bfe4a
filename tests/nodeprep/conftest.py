"""Fixtures for the pyinfra @chroot tests: a real debootstrap'd Debian root, prepared once."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubevc.nodeprep import testing
from kubevc.nodeprep.prepare import PrepareOptions, prepare_nodes
from kubevc.nodeprep.runner import RunReport
from kubevc.nodeprep.testing import chroot_target, make_fake_pi

# The Debian root (debootstrap) and the first real `node prepare` in it (apt in the chroot) are
# session fixtures whose set-up is charged to the first test that asks for them: about 3 min on a
# quiet two-core machine, and 13 min were seen beside a CPU hog at load 12-18. They get a budget
# of their own instead of the suite's 600 s, so a loaded machine is slow, not failing.
CHROOT_SETUP_TIMEOUT = 2400


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("timeout")
        if "base_tarball" in getattr(item, "fixturenames", ()) and (
            marker is None or (marker.args and marker.args[0] < CHROOT_SETUP_TIMEOUT)
        ):
            item.add_marker(pytest.mark.timeout(CHROOT_SETUP_TIMEOUT))


@dataclass
class PreparedRoot:
    root: Path
    report: RunReport
    seconds: float
    snapshot: Path  # tarball of the root right after the first run


@pytest.fixture(scope="session")
def base_tarball() -> Path:
    reason = testing.why_not_available()
    if reason:
        pytest.skip(reason)
    try:
        return testing.base_tarball()
    except RuntimeError as error:  # the mirror is the only network these tests use
        pytest.skip(str(error))


@pytest.fixture
def fresh_root(base_tarball: Path, tmp_path: Path) -> Iterator[Callable[[Path | None], Path]]:
    """Restore a root (the base one, or a given snapshot) into a temporary folder."""
    made: list[Path] = []

    def make(tarball: Path | None = None) -> Path:
        dest = tmp_path / f"root{len(made)}"
        made.append(dest)
        return testing.restore(tarball or base_tarball, dest)

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def prepared(base_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PreparedRoot]:
    """A fake-Pi Debian root after the first real `node prepare` run (kubeadm flavour)."""
    workdir = tmp_path_factory.mktemp("prepared")
    root = testing.restore(base_tarball, workdir / "root")
    make_fake_pi(root)
    started = time.monotonic()
    report = prepare_nodes([chroot_target(root)], PrepareOptions(distribution="kubeadm"))
    seconds = time.monotonic() - started
    snapshot = workdir / "after-first-run.tar.zst"
    testing.pack(root, snapshot)
    yield PreparedRoot(root, report, seconds, snapshot)
    shutil.rmtree(workdir, ignore_errors=True)
