"""The ``checkov`` policy check: checkov over each region's rendered files, in long-lived workers
(or, when checkov's Python cannot be found, the checkov command over batches of regions)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

# checkov checks kubevc does not follow, and why.
CHECKOV_SKIPS: dict[str, str] = {
    "CKV_K8S_43": "images are pinned by tag; digests are optional chart values (image.digest)",
    "CKV_K8S_15": "IfNotPresent on purpose: edge links are slow and nodes must start offline",
}


def run_checkov(exe: str, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One checkov run over ``files`` (``<region>/<file>`` -> text), written to a temp folder."""
    with tempfile.TemporaryDirectory(prefix="kubevc-checkov-") as tmp:
        for rel, text in files.items():
            dest = Path(tmp) / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text, encoding="utf-8")
        env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
        return subprocess.run(
            [
                exe,
                "-d",
                tmp,
                "--framework",
                "kubernetes",
                "-o",
                "json",
                "--quiet",
                "--compact",
                "--skip-download",
                "--skip-check",
                ",".join(sorted(CHECKOV_SKIPS)),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )


WORKER_SCRIPT = Path(__file__).with_name("_checkov_worker.py")


def worker_python(exe: str) -> str | None:
    """The Python interpreter of the venv checkov is installed in (its script's ``#!`` line), or None
    when the script is not a Python script (a wrapper, a binary): then checkov runs as a command."""
    resolved = shutil.which(exe) or exe
    try:
        with open(resolved, "rb") as fh:
            first = fh.readline(500)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if len(words) != 1 or "python" not in Path(words[0]).name or not Path(words[0]).is_file():
        return None
    return words[0]


class CheckovWorkers:
    """checkov started once per worker process and asked to scan one region's folder at a time.

    checkov's start-up (seconds of imports and check registries) dominates a scan of one region's
    manifests (a tenth of a second), so a validate of many regions runs up to ``processes`` long-
    lived workers (``_checkov_worker.py`` under checkov's own Python) instead of one checkov
    command per batch. Each scan uses a fresh checkov runner: no graph edge between regions.
    :meth:`scan` is safe to call from several threads; :meth:`start` returns None when no worker
    can run (then :func:`run_checkov` runs the checkov command, as before).
    """

    def __init__(self, python: str, processes: int) -> None:
        self.python = python
        self.processes = processes
        self._idle: queue.SimpleQueue[subprocess.Popen[str]] = queue.SimpleQueue()
        self._all: list[subprocess.Popen[str]] = []
        self._lock = threading.Lock()

    @classmethod
    def start(cls, exe: str, processes: int = 2) -> CheckovWorkers | None:
        python = worker_python(exe)
        if python is None:
            return None
        workers = cls(python, processes)
        first = workers._spawn()
        if first is None:
            workers.close()
            return None
        workers._idle.put(first)
        return workers

    def _spawn(self) -> subprocess.Popen[str] | None:
        env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
        proc = subprocess.Popen(
            [self.python, str(WORKER_SCRIPT), ",".join(sorted(CHECKOV_SKIPS))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        with self._lock:
            self._all.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        try:
            ready = json.loads(line)
        except ValueError:
            ready = None
        if not isinstance(ready, dict) or "ready" not in ready:
            proc.kill()
            proc.wait()
            return None
        return proc

    def _take(self) -> subprocess.Popen[str] | None:
        """An idle worker; a new one while fewer than ``processes`` are alive (None: it failed)."""
        while True:
            with contextlib.suppress(queue.Empty):
                return self._idle.get_nowait()
            with self._lock:
                alive = sum(1 for p in self._all if p.poll() is None)
            if alive < self.processes:
                return self._spawn()
            with contextlib.suppress(queue.Empty):
                return self._idle.get(timeout=1)

    def scan(self, folder: Path) -> dict[str, Any]:
        """checkov's answer for the manifests in ``folder``: ``{"ok": True, "failed_checks": [...],
        "summary": {...}}`` or ``{"ok": False, "error": "..."}``."""
        proc = self._take()
        if proc is None:
            return {"ok": False, "error": "the checkov worker did not start"}
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(f"{folder}\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            answer = json.loads(line) if line else {"ok": False, "error": "checkov worker exited"}
        except (OSError, ValueError) as exc:
            answer = {"ok": False, "error": f"checkov worker: {exc}"}
        if proc.poll() is None:
            self._idle.put(proc)
        return answer if isinstance(answer, dict) else {"ok": False, "error": "checkov worker: bad answer"}

    def close(self) -> None:
        with self._lock:
            procs = list(self._all)
        for proc in procs:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
