"""The real MLServer (the ``mlserver`` executable of a venv where it is installed) run as a subprocess.

``make tools`` puts one in ``.tools/mlserver``; the caller names the executable (the tests take it
from ``KUBEVC_MLSERVER``). :func:`run_mlserver` starts ``mlserver start FOLDER`` on free loopback
ports, given as the ``MLSERVER_*`` environment variables the serving chart sets too, and waits
until the server and the models named are ready.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kubevc.gateway.testing._ports import free_port
from kubevc.gateway.testing._processes import stop

__all__ = ["MLServer", "run_mlserver"]

_LOG_TAIL = 3000  # characters of the server's log an error carries


@dataclass(frozen=True)
class MLServer:
    """A running MLServer: its ports on 127.0.0.1, its log file and its process."""

    http_port: int
    grpc_port: int
    metrics_port: int
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-_LOG_TAIL:]


def _answers_200(port: int, path: str) -> bool:
    with (
        contextlib.suppress(OSError, urllib.error.URLError),
        urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer,
    ):
        return bool(answer.status == 200)
    return False


def _wait_ready(server: MLServer, models: Sequence[str], timeout: float) -> None:
    """Until ``/v2/health/ready`` and each of ``models``' ``/v2/models/<name>/ready`` answer 200.

    The models are asked for by name too: a model whose load fails leaves the registry before the
    server shuts down, and an empty registry counts as ready."""
    paths = ["/v2/health/ready"]
    paths += [f"/v2/models/{urllib.parse.quote(name, safe='')}/ready" for name in models]
    deadline = time.monotonic() + timeout
    for path in paths:
        while not _answers_200(server.http_port, path):
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"MLServer exited with {server.process.returncode}:\n{_log_tail(server.log)}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"MLServer not ready within {timeout:.0f}s ({path}):\n{_log_tail(server.log)}"
                )
            time.sleep(0.3)


@contextlib.contextmanager
def run_mlserver(
    executable: str | os.PathLike[str],
    model_folder: Path,
    *,
    models: Sequence[str] = (),
    python_path: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    ready_timeout: float = 300.0,
) -> Iterator[MLServer]:
    """Serve ``model_folder`` with ``executable start model_folder`` until the block ends.

    ``models``: names that must be ready too before the block starts. ``python_path``: the
    ``PYTHONPATH`` of the server (where custom runtimes' code is; left as it is when empty).
    ``env``: more ``MLSERVER_*`` settings, over the defaults (host, the three ports, no parallel
    workers: inference in the server's own process). ``log``: where the server's output goes
    (default: a file removed with the block). A ``settings.json`` in ``model_folder`` wins over the
    environment, so it must not name the host or the ports. Raises ``RuntimeError`` if the server
    exits and ``TimeoutError`` if it is not ready within ``ready_timeout`` seconds, each with the
    tail of its log."""
    with tempfile.TemporaryDirectory(prefix="kubevc-mlserver-") as scratch:
        work = Path(scratch)  # the working directory: MLServer keeps its metrics files there
        log_path = log or work / "mlserver.log"
        http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
        server_env = {
            **os.environ,
            "MLSERVER_HOST": "127.0.0.1",
            "MLSERVER_HTTP_PORT": str(http_port),
            "MLSERVER_GRPC_PORT": str(grpc_port),
            "MLSERVER_METRICS_PORT": str(metrics_port),
            "MLSERVER_PARALLEL_WORKERS": "0",
            **(env or {}),
        }
        if python_path:
            server_env["PYTHONPATH"] = os.pathsep.join(str(p) for p in python_path)
        command = [str(executable), "start", str(model_folder)]
        with log_path.open("wb") as output:
            process = subprocess.Popen(
                command, cwd=work, stdout=output, stderr=subprocess.STDOUT, env=server_env
            )
            try:
                server = MLServer(http_port, grpc_port, metrics_port, log_path, process)
                _wait_ready(server, models, ready_timeout)
                yield server
            finally:
                stop(process)
