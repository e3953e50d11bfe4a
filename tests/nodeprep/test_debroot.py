"""The chroot test harness itself: mirror discovery from apt sources, and skip reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import debroot


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
    assert debroot.debian_mirror("bookworm", tmp_path) == "http://mirror.example.org/debian"
    assert (
        debroot.debian_mirror("bookworm-security", tmp_path) == "http://security.example.org/debian-security"
    )
    assert debroot.debian_mirror("trixie", tmp_path) is None


def test_mirror_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main contrib\n"
    )
    assert debroot.debian_mirror("bookworm", tmp_path) == "http://one.example/debian"


def test_disabled_deb822_entry_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "x.sources").write_text(
        "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\n"
    )
    assert debroot.debian_mirror("bookworm", tmp_path) is None


def test_not_root_is_a_skip_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debroot.os, "geteuid", lambda: 1000)
    assert debroot.why_not_available() == "chroot tests need root (debootstrap and chroot)"


def test_missing_debootstrap_is_a_skip_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debroot.os, "geteuid", lambda: 0)
    monkeypatch.setattr(debroot.shutil, "which", lambda tool: None if tool == "debootstrap" else "/usr/bin/x")
    reason = debroot.why_not_available()
    assert reason is not None and reason.startswith("debootstrap is not installed")
