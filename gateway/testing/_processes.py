"""Stopping the servers that the testing package starts as subprocesses."""

from __future__ import annotations

import subprocess

__all__ = ["stop"]


def stop(process: subprocess.Popen[bytes], *, grace: float = 30.0) -> None:
    """Terminate ``process``, kill it if it has not exited within ``grace`` seconds, and reap it
    (no zombie left behind whichever way it ended)."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
