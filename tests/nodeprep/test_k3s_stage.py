"""Staging the k3s agent before any token exists: download, checksum check, install.

The release files come from a local HTTP server laid out like the GitHub release downloads
(``<version>/<asset>``, ``<version>/sha256sum-<arch>.txt``), fetched by curl inside a real root.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kubevc.nodeprep.join import stage_k3s_agent
from kubevc.nodeprep.plans.k3s import k3s_asset_name, k3s_stage_command
from kubevc.nodeprep.testing import chroot_target

from .conftest import PreparedRoot
from .test_cluster_chroot import STUB_K3S

VERSION = "v1.31.4+k3s1"


def test_k3s_stage_contract() -> None:
    assert [k3s_asset_name(a) for a in ("amd64", "arm64", "armhf")] == ["k3s", "k3s-arm64", "k3s-armhf"]
    with pytest.raises(ValueError, match="riscv64"):
        k3s_asset_name("riscv64")
    command = k3s_stage_command(VERSION, "armhf")
    base = "https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1"
    assert f"{base}/k3s-armhf" in command and f"{base}/sha256sum-armhf.txt" in command
    assert "sha256sum -c -" in command and "install -m 755" in command
    assert command.index("sha256sum -c") < command.index("install -m 755")
    assert "https://get.k3s.io" in command and command.startswith("set -e;")


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def releases(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    asset = k3s_asset_name(arch)
    folder = tmp_path / "www" / VERSION
    folder.mkdir(parents=True)
    (folder / asset).write_text(STUB_K3S)
    digest = hashlib.sha256(STUB_K3S.encode()).hexdigest()
    (folder / f"sha256sum-{arch}.txt").write_text(
        f"{'0' * 64}  k3s-airgap-images-{arch}.tar\n{digest}  {asset}\n"
    )
    (tmp_path / "www" / "install.sh").write_text("#!/bin/sh\necho stub installer\n")
    handler = functools.partial(Quiet, directory=str(tmp_path / "www"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder / f"sha256sum-{arch}.txt"
    server.shutdown()
    server.server_close()


@pytest.mark.chroot
@pytest.mark.slow
def test_stage_downloads_verifies_and_settles(
    prepared: PreparedRoot, fresh_root: Callable[[Path | None], Path], releases: tuple[str, Path]
) -> None:
    url, _ = releases
    root = fresh_root(prepared.snapshot)  # has curl
    target = chroot_target(root)
    first = stage_k3s_agent(target, VERSION, releases=url, installer_url=f"{url}/install.sh")
    assert first.ok, first.messages
    assert [o.changed for o in first.outcomes] == [True]
    assert (root / "usr/local/bin/k3s").read_text() == STUB_K3S
    assert (root / "var/lib/kubevc/k3s-install.sh").read_text().startswith("#!/bin/sh")
    again = stage_k3s_agent(target, VERSION, releases=url, installer_url=f"{url}/install.sh")
    assert again.ok and [o.changed for o in again.outcomes] == [False]


@pytest.mark.chroot
@pytest.mark.slow
def test_stage_refuses_a_binary_with_the_wrong_checksum(
    prepared: PreparedRoot, fresh_root: Callable[[Path | None], Path], releases: tuple[str, Path]
) -> None:
    url, sums = releases
    sums.write_text(sums.read_text().replace(hashlib.sha256(STUB_K3S.encode()).hexdigest(), "f" * 64))
    root = fresh_root(prepared.snapshot)
    report = stage_k3s_agent(chroot_target(root), VERSION, releases=url, installer_url=f"{url}/install.sh")
    assert not report.ok
    assert [o.success for o in report.outcomes] == [False]
    assert not (root / "usr/local/bin/k3s").exists()
    assert not (root / "var/lib/kubevc/k3s-install.sh").exists()
