"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadFileScheduling

# One pytest process runs the gRPC gateway tests and then pyinfra, which forks (gevent) for every
# command it runs in the chroot. With gRPC's fork support on, the forked child restarts gRPC's
# poller, which then finds its epoll fd closed and writes errors into the command's output, so
# pyinfra facts fail at random. Nothing in kubevc forks with gRPC loaded outside this process.
# It must be set before grpc is first imported, hence here at the top of the root conftest.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The workplace's shared/ folder (upstream CRDs, upstream chart values, the paper's numbers).

    It sits beside the clone (``../shared``); ``KUBEVC_SHARED`` points elsewhere. Tests that read
    upstream test data skip, saying why, when it is absent.
    """
    path = Path(os.environ.get("KUBEVC_SHARED", REPO_ROOT.parent / "shared"))
    if not (path / "crds").is_dir():
        pytest.skip(f"upstream test data not found at {path} (set KUBEVC_SHARED)")
    return path


# Under pytest-xdist (`make test` runs `-n 2 --dist loadfile`) each file runs in one worker, so a
# module-scoped fixture (a real server, the image build) is built once. Files sharing an expensive
# session fixture are one unit here, so that fixture is not built in both workers. (xdist's own
# --dist loadgroup cannot do this: its markers no longer change node ids under pytest 9.)
SHARED_SESSION_FIXTURES: dict[str, str] = {
    # a real `node prepare` run in a debootstrap'd root (tests/nodeprep/conftest.py)
    "prepared": "nodeprep-prepared",
}
FILE_GROUPS: dict[str, str] = {
    "tests/nodeprep/test_prepare_chroot.py": "nodeprep-prepared",
    "tests/nodeprep/test_k3s_stage.py": "nodeprep-prepared",
}


class FileGroupScheduling(LoadFileScheduling):
    """xdist's per-file distribution, with the files of FILE_GROUPS kept together."""

    def _split_scope(self, nodeid: str) -> str:
        file = super()._split_scope(nodeid)
        return FILE_GROUPS.get(file, file)


@pytest.hookimpl(optionalhook=True)  # a hook of xdist's: unknown with -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> FileGroupScheduling | None:
    if config.getvalue("dist") != "loadfile":
        return None
    return FileGroupScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A file using a shared session fixture must be in its group, or both workers build it."""
    for item in items:
        file = item.nodeid.split("::", 1)[0]
        for fixture, group in SHARED_SESSION_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()) and FILE_GROUPS.get(file) != group:
                raise pytest.UsageError(f"{file} uses the session fixture {fixture}: add it to FILE_GROUPS")
