"""Progress bars: drawn on stderr only when stderr is a terminal (a pseudo-terminal here) and the
output is for people; nothing when stderr is a pipe or under ``-o json``."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from kubevc.generator.cli._progress import progress_bar, steps
from kubevc.generator.repo import Fleet
from kubevc.generator.validate import _validator as validator
from kubevc.generator.validate import validate_fleet


def _validate(fleet: Path, *args: str, tty: bool) -> tuple[str, str]:
    """Run ``kubevc-gen validate`` in a subprocess; stdout, and stderr (through a pty when ``tty``)."""
    cmd = [
        sys.executable,
        "-m",
        "kubevc.generator.cli",
        "--fleet",
        str(fleet),
        "validate",
        "--no-checkov",
        *args,
    ]
    env = dict(os.environ, COLUMNS="120", TERM="xterm")
    if not tty:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
        return proc.stdout, proc.stderr
    leader, follower = pty.openpty()
    try:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=follower, env=env) as proc:
            os.close(follower)
            chunks: list[bytes] = []
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the pty closed: the command is done
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            out = proc.stdout.read() if proc.stdout else b""
            proc.wait(timeout=600)
    finally:
        os.close(leader)
    return out.decode(), b"".join(chunks).decode(errors="replace")


def test_no_progress_when_stderr_is_not_a_terminal(fleet: Path) -> None:
    out, err = _validate(fleet, tty=False)
    assert "no findings" in out
    assert err == ""  # neither a bar nor the old "… step" lines


def test_a_bar_on_a_terminal_and_none_under_json(fleet: Path) -> None:
    out, err = _validate(fleet, tty=True)
    assert "no findings" in out
    assert "validate" in err and "\x1b[" in err  # rich drew (and cleared) the bar on the terminal
    out, err = _validate(fleet, "-o", "json", tty=True)
    assert '"kind": "ValidationReport"' in out
    assert err == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_helper_follows_the_stream() -> None:
    quiet = io.StringIO()
    with progress_bar("render", stream=quiet) as bar:
        bar.note("step")
        bar.update(1, 2)
    assert quiet.getvalue() == "" and not bar.enabled
    loud = _Terminal()
    with progress_bar("publish", stream=loud) as bar:
        bar.step("copy 3/12 saved_model.pb")
    assert bar.enabled and "publish" in loud.getvalue()
    with progress_bar("validate", output="yaml", stream=_Terminal()) as bar:
        assert not bar.enabled


def test_steps_print_lines_when_not_a_terminal(capsys: object) -> None:
    with steps("node prepare seoul") as say:
        say("preflight 10.0.0.1")
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert err == "… preflight 10.0.0.1\n"


class _SlowCheckov:
    """Checkov workers whose scans wait until validate has reported every region walked (or give
    up after a while): the bar must not wait for checkov to move."""

    def __init__(self, events: list[str], walked: threading.Event) -> None:
        self.events = events
        self.walked = walked

    def scan(self, folder: Path) -> dict[str, Any]:
        self.walked.wait(timeout=60)
        self.events.append(f"scanned {folder.name}")
        return {"ok": True, "failed_checks": [], "summary": {"passed": 1, "failed": 0, "resource_count": 1}}

    def close(self) -> None:
        pass


def test_the_validate_bar_moves_as_each_region_is_walked(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    walked = threading.Event()
    monkeypatch.setattr(validator, "find_checkov", lambda: "/usr/bin/checkov")
    monkeypatch.setattr(validator, "checkov_path", lambda: "/usr/bin/checkov")
    monkeypatch.setattr(validator.CheckovWorkers, "start", lambda *_a: _SlowCheckov(events, walked))

    def region_done(name: str, done: int, total: int) -> None:
        events.append(f"{done}/{total} {name}")
        if done == total:
            walked.set()

    notes: list[str] = []
    report = validate_fleet(
        Fleet(fleet), checkov=True, use_cache=False, progress=notes.append, region_done=region_done
    )
    assert report.findings == []
    assert events[:3] == ["0/2 ", "1/2 busan", "2/2 seoul"], events  # before any checkov answer
    assert sorted(events[3:]) == ["scanned busan", "scanned seoul"]
    assert notes[-1] == "checkov: 2/2 region(s) scanned"
