"""The fleet lock: one mutating ``kubevc-gen`` command at a time per fleet repo.

Every mutating command holds an exclusive :func:`fcntl.flock` on ``.git/kubevc-gen/lock`` from
before it reads the fleet until after it has committed, so two commands started at once run one
after the other instead of each committing a tree planned from a state the other changes. The
kernel drops the lock when the holder dies (``kill -9`` included): a lock is never stale. The lock
file holds one line saying who holds it (pid, host, command, start time), printed to a command that
finds the fleet busy.

The lock is re-entrant within a process: :func:`apply_change` takes it too, which is a no-op when
the command already holds it and makes direct API callers safe as well.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import FleetBusyError

LOCK_FILE = "kubevc-gen/lock"  # under the fleet repo's git folder: never committed
_POLL_SECONDS = 0.1


@dataclass
class _Held:
    fd: int
    depth: int


_held: dict[Path, _Held] = {}


def git_dir_of(root: Path) -> Path:
    """The git folder of the work tree ``root`` (``.git`` itself, or where a ``.git`` file points)."""
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git.resolve()
    proc = subprocess.run(
        ["git", "rev-parse", "--absolute-git-dir"], cwd=root, capture_output=True, text=True, check=False
    )
    return Path(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else dot_git


def lock_path(root: Path) -> Path:
    return git_dir_of(root) / LOCK_FILE


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError):
        text = path.read_text(encoding="utf-8", errors="replace").strip()
        if text:
            return text.splitlines()[0][:300]
    return "another kubevc-gen process"


@contextlib.contextmanager
def fleet_lock(root: Path, command: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the fleet lock of ``root`` for the block; wait up to ``wait_seconds`` when busy.

    Raises :class:`FleetBusyError` naming the holder when the lock stays busy.
    """
    path = lock_path(root)
    key = path.resolve() if path.parent.exists() else path
    held = _held.get(key)
    if held is not None:
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    waited = f" after waiting {wait_seconds:g}s" if wait_seconds > 0 else ""
                    raise FleetBusyError(
                        f"the fleet repo is busy{waited}: locked by {_holder(path)}; "
                        "retry when it is done, or pass --wait-lock SECONDS"
                    ) from None
                time.sleep(_POLL_SECONDS)
    except BaseException:
        os.close(fd)
        raise
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    who = f"pid {os.getpid()} on {socket.gethostname()} ({command}, since {started})\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, who.encode(), 0)
    key = path.resolve()
    _held[key] = _Held(fd, 1)
    try:
        yield
    finally:
        del _held[key]
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def holds_lock(root: Path) -> bool:
    """True when this process holds the fleet lock of ``root``."""
    path = lock_path(root)
    return path.parent.exists() and path.resolve() in _held
