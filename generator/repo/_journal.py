"""The write journal: a crash at any point of a mutating command leaves the old commit or the new.

Before :func:`~kubevc.generator.repo.apply_change` touches the work tree, the index or a ref, it
records in ``.git/kubevc-gen/txn/`` everything needed to undo it: a copy of the index, a copy of
every file it will overwrite or delete, the folders it will create, the ref and the commit it
started from (and the review branch it may create). ``journal.json`` is written last (atomically);
deleting it is the commit point. A command killed before that (``kill -9``, power loss) leaves the
journal behind, and the next command, holding the fleet lock, rolls it back with :func:`recover`:
files, index and ref return to what they were, its temp files and a stale ``index.lock`` go, and
one line says what was cleaned.

``KUBEVC_GEN_FAULT_STEP=N`` kills the process (SIGKILL) at the N-th :meth:`Journal.step`: the crash
tests use it to stop a write at every step in turn.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._lock import git_dir_of
from ._yamlio import atomic_write

TXN_DIR = "kubevc-gen/txn"
JOURNAL = "journal.json"
FAULT_STEP_ENV = "KUBEVC_GEN_FAULT_STEP"
# How long recovery waits for a git process still holding index.lock (the orphaned child of a
# killed command finishing its write) before it treats the lock as someone else's.
_INDEX_LOCK_WAIT_SECONDS = 10.0

_steps_taken = 0


def fault_point() -> None:
    """Die here (SIGKILL) when ``KUBEVC_GEN_FAULT_STEP`` says so: the crash tests' injection point."""
    global _steps_taken
    target = os.environ.get(FAULT_STEP_ENV, "")
    if not target.isdigit():
        return
    _steps_taken += 1
    if _steps_taken == int(target):
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Journal:
    """The undo record of one write (see the module docstring)."""

    root: Path
    folder: Path
    command: str
    head: str | None
    ref: str | None
    new_branch: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    created_dirs: list[str] = field(default_factory=list)
    had_index: bool = False

    @classmethod
    def begin(
        cls,
        root: Path,
        paths: Sequence[str],
        *,
        command: str,
        head: str | None,
        ref: str | None,
        new_branch: str | None = None,
    ) -> Journal:
        folder = git_dir_of(root) / TXN_DIR
        if folder.exists():  # a crash before journal.json was written: nothing had been touched yet
            shutil.rmtree(folder)
        (folder / "files").mkdir(parents=True)
        journal = cls(root, folder, command, head, ref, new_branch)
        index = git_dir_of(root) / "index"
        if index.is_file():
            shutil.copy2(index, folder / "index")
            journal.had_index = True
        created: set[str] = set()
        for number, rel in enumerate(paths):
            path = root / rel
            entry: dict[str, Any] = {"path": rel, "backup": None}
            if path.is_file():
                shutil.copy2(path, folder / "files" / str(number))
                entry["backup"] = str(number)
            journal.files.append(entry)
            parent = path.parent
            while parent != root and not parent.exists():
                created.add(parent.relative_to(root).as_posix())
                parent = parent.parent
        journal.created_dirs = sorted(created, key=lambda d: (d.count("/"), d))
        atomic_write(folder / JOURNAL, json.dumps(journal._record(), indent=1).encode())
        fault_point()
        return journal

    def _record(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "command": self.command,
            "head": self.head,
            "ref": self.ref,
            "newBranch": self.new_branch,
            "hadIndex": self.had_index,
            "files": self.files,
            "createdDirs": self.created_dirs,
        }

    def step(self) -> None:
        fault_point()

    def finish(self) -> None:
        """The commit point: the write is done, forget how to undo it."""
        (self.folder / JOURNAL).unlink()
        fault_point()
        shutil.rmtree(self.folder, ignore_errors=True)

    def rollback(self) -> str:
        """Undo the write; return what was undone (for the one-line recovery note)."""
        return _roll_back(self.root, self.folder, self._record())


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)


def _roll_back(root: Path, folder: Path, record: dict[str, Any]) -> str:
    done: list[str] = []
    git_dir = git_dir_of(root)
    ref = record.get("ref")
    head = record.get("head")
    if ref and head:
        current = _git(root, "rev-parse", "--verify", "-q", ref).stdout.strip()
        if current and current != head:
            _git(root, "update-ref", "-m", "kubevc-gen: roll back an interrupted write", ref, head)
            done.append(f"{ref.removeprefix('refs/heads/')} reset to {head[:12]}")
    elif ref and _git(root, "rev-parse", "--verify", "-q", ref).returncode == 0:
        _git(root, "update-ref", "-d", ref)  # the first commit on an unborn branch
        done.append(f"{ref} removed")
    new_branch = record.get("newBranch")
    branch_ref = f"refs/heads/{new_branch}"
    if new_branch and _git(root, "rev-parse", "--verify", "-q", branch_ref).returncode == 0:
        _git(root, "update-ref", "-d", branch_ref)
        done.append(f"branch {new_branch} removed")
    restored = 0
    removed = 0
    temp_files = 0
    for entry in record.get("files", []):
        rel = str(entry["path"])
        path = root / rel
        backup = entry.get("backup")
        if backup is not None:
            original = (folder / "files" / str(backup)).read_bytes()
            if not path.is_file() or path.read_bytes() != original:
                atomic_write(path, original)
                restored += 1
        elif path.is_file() or path.is_symlink():
            path.unlink()
            removed += 1
        temp_files += _remove_temp_files(path)
    for rel in reversed(record.get("createdDirs", [])):
        folder_path = root / rel
        with contextlib.suppress(OSError):
            if folder_path.is_dir() and not any(folder_path.iterdir()):
                folder_path.rmdir()
    if restored:
        done.append(f"{restored} file(s) restored")
    if removed:
        done.append(f"{removed} new file(s) removed")
    index = git_dir / "index"
    saved = folder / "index"
    if record.get("hadIndex") and saved.is_file():
        if not index.is_file() or index.read_bytes() != saved.read_bytes():
            shutil.copy2(saved, index)
            done.append("the index restored")
    elif not record.get("hadIndex"):
        index.unlink(missing_ok=True)
    if temp_files:
        done.append(f"{temp_files} temp file(s) removed")
    (folder / JOURNAL).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    return ", ".join(done) or "nothing had changed"


def _remove_temp_files(path: Path) -> int:
    """Remove :func:`atomic_write`'s leftovers for ``path`` (``.<name>.<random>.tmp``)."""
    count = 0
    if path.parent.is_dir():
        for leftover in path.parent.glob(f".{path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()
                count += 1
    return count


def _index_lock_in_use(root: Path, lock: Path) -> bool:
    """Is a live process writing ``index.lock``: holding it open, or a git running in this repo?"""
    proc_root = Path("/proc")
    if not proc_root.is_dir():  # no /proc: trust only an old lock to be stale
        with contextlib.suppress(OSError):
            return time.time() - lock.stat().st_mtime < 600
        return False
    repo = root.resolve()
    target = str(lock.resolve()) if lock.exists() else str(lock)
    for pid_dir in proc_root.iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            comm = (pid_dir / "comm").read_text().strip()
            if comm.startswith("git"):
                cwd = Path(os.readlink(pid_dir / "cwd"))
                if cwd == repo or repo in cwd.parents:
                    return True
        with contextlib.suppress(OSError):
            for fd in (pid_dir / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return True
    return False


def recover(root: Path) -> str | None:
    """Clean up after a killed command (the caller holds the fleet lock); ``None`` when all was clean.

    Rolls back an unfinished journal, removes the render cache's temp files and a stale
    ``index.lock`` nobody holds, and returns one line saying what it did.
    """
    git_dir = git_dir_of(root)
    notes: list[str] = []
    lock = git_dir / "index.lock"
    if lock.exists():
        deadline = time.monotonic() + _INDEX_LOCK_WAIT_SECONDS
        while lock.exists() and _index_lock_in_use(root, lock) and time.monotonic() < deadline:
            time.sleep(0.1)
        if lock.exists() and not _index_lock_in_use(root, lock):
            lock.unlink(missing_ok=True)
            notes.append("removed a stale .git/index.lock (no process held it)")
    folder = git_dir / TXN_DIR
    journal = folder / JOURNAL
    if journal.is_file():
        try:
            record = json.loads(journal.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = None
        if isinstance(record, dict):
            what = _roll_back(root, folder, record)
            notes.append(
                f"rolled back an interrupted `{record.get('command', 'kubevc-gen')}` "
                f"(pid {record.get('pid', '?')}): {what}"
            )
    elif folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    cache_dir = git_dir / "kubevc-gen"
    if cache_dir.is_dir():
        leftovers = list(cache_dir.glob(".*.tmp"))
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
        if leftovers:
            notes.append(f"removed {len(leftovers)} temp file(s) in .git/kubevc-gen")
    if not notes:
        return None
    return "recovered: " + "; ".join(notes)
