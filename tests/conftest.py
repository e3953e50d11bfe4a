"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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


# Under pytest-xdist (`make test` runs `--dist loadgroup` on two workers) a group of tests runs in
# one worker, so a module- or session-scoped fixture (a real server, the image build, a chroot)
# is built once per group. Every file is its own group, except files sharing an expensive
# session fixture: they form one group named after it, so the fixture is not built in both workers.
SHARED_SESSION_FIXTURES: dict[str, str] = {
    # a real `node prepare` run in a debootstrap'd root (tests/nodeprep/conftest.py)
    "prepared": "nodeprep-prepared",
}


@pytest.hookimpl(tryfirst=True)  # before xdist's worker appends the group to each node id
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if getattr(config.option, "dist", "no") != "loadgroup":  # one process, or xdist's other modes
        return
    group_of_file: dict[str, str] = {}
    for item in items:
        file = item.nodeid.split("::", 1)[0]
        group_of_file.setdefault(file, file)
        for fixture, group in SHARED_SESSION_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                group_of_file[file] = group
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group_of_file[item.nodeid.split("::", 1)[0]]))
