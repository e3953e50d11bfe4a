"""kubevc.nodeprep.testing, the chroot harness itself: mirror discovery from apt sources, skip
reasons and the cache folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kubevc.nodeprep import testing


def test_mirror_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb deb-src\n"
        "URIs: http://mirror.example.org/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
        "\n"
        "Types: deb\n"
        "URIs: http://security.example.org/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
    )
    assert testing.debian_mirror("bookworm", tmp_path) == "http://mirror.example.org/debian"
    assert (
        testing.debian_mirror("bookworm-security", tmp_path) == "http://security.example.org/debian-security"
    )
    assert testing.debian_mirror("trixie", tmp_path) is None


def test_mirror_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main contrib\n"
    )
    assert testing.debian_mirror("bookworm", tmp_path) == "http://one.example/debian"


def test_disabled_deb822_entry_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "x.sources").write_text(
        "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\n"
    )
    assert testing.debian_mirror("bookworm", tmp_path) is None


def test_not_root_is_a_skip_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert testing.why_not_available() == "chroot tests need root (debootstrap and chroot)"


def test_missing_debootstrap_is_a_skip_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == "debootstrap" else "/usr/bin/x")
    reason = testing.why_not_available()
    assert reason is not None and reason.startswith("debootstrap is not installed")


def test_cache_is_the_checkout_cache_for_an_editable_install() -> None:
    checkout = Path(__file__).resolve().parents[2]
    assert testing.cache_dir() == checkout / ".cache" / "nodeprep"
    assert testing.cache_dir() == testing.CACHE_DIR


def test_cache_outside_a_checkout_is_the_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = tmp_path / "site-packages" / "kubevc" / "nodeprep" / "testing.py"
    monkeypatch.setattr(testing, "__file__", str(installed))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert testing.cache_dir() == tmp_path / "xdg" / "kubevc" / "nodeprep"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert testing.cache_dir() == tmp_path / "home" / ".cache" / "kubevc" / "nodeprep"


def test_fake_pi_adds_cmdline_swap_and_zram(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/fstab").write_text("proc /proc proc defaults 0 0\n")
    testing.make_fake_pi(tmp_path)
    assert (tmp_path / "boot/firmware/cmdline.txt").read_text() == testing.RPI_CMDLINE
    assert (tmp_path / "etc/fstab").read_text().endswith(testing.FSTAB_EXTRA)
    assert (tmp_path / "usr/lib/systemd/system-generators/zram-generator").stat().st_mode & 0o111
    assert testing.chroot_target(tmp_path).name == f"@chroot{tmp_path}"
