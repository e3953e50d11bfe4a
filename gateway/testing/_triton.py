"""The real ``tritonserver`` that PyPI's ``nvidia-pytriton`` wheel ships, run as a subprocess.

The wheel carries the server binary, the Python backend and one backend stub per Python version,
but not in the layout ``tritonserver --backend-directory`` expects, and the stub links against a
CUDA runtime library the wheel keeps in ``nvidia_pytriton.libs``. :func:`triton_install` finds those
pieces in a venv where the wheel is installed (``make tools`` puts one in ``.tools/triton``), and
:func:`run_tritonserver` assembles a backend directory and serves a model repository on free
loopback ports. No GPU is needed: Triton logs that CUDA and NVML are missing and serves on the CPU.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kubevc.gateway.testing._ports import free_port
from kubevc.gateway.testing._processes import stop

__all__ = ["TritonInstall", "TritonServer", "run_tritonserver", "triton_install"]

TRITON_PYTHON_ENV = "KUBEVC_TRITON_PYTHON"


@dataclass(frozen=True)
class TritonInstall:
    """Where the pieces of one ``nvidia-pytriton`` install are."""

    venv: Path
    server: Path
    python_backend: Path
    stub: Path
    libs: Path


@dataclass(frozen=True)
class TritonServer:
    """A running ``tritonserver``: its ports on 127.0.0.1 and its log file."""

    grpc_port: int
    http_port: int
    metrics_port: int
    log: Path

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


def triton_install(python: str | os.PathLike[str] | None = None) -> TritonInstall:
    """The ``nvidia-pytriton`` install of the venv whose interpreter is ``python`` (default: the
    ``KUBEVC_TRITON_PYTHON`` environment variable). Raises ``FileNotFoundError`` naming what is
    missing."""
    chosen = python or os.environ.get(TRITON_PYTHON_ENV)
    if not chosen:
        raise FileNotFoundError(f"no Triton venv: set {TRITON_PYTHON_ENV} (`make tools` makes .tools/triton)")
    venv = Path(chosen).parent.parent
    site_packages = sorted(venv.glob("lib/python3.*/site-packages"))
    if not site_packages:
        raise FileNotFoundError(f"no site-packages under {venv}")
    site = site_packages[-1]
    root = site / "pytriton" / "tritonserver"
    python_version = site.parent.name.removeprefix("python")
    install = TritonInstall(
        venv=venv,
        server=root / "bin" / "tritonserver",
        python_backend=root / "backends" / "python",
        stub=root / "python_backend_stubs" / python_version / "triton_python_backend_stub",
        libs=site / "nvidia_pytriton.libs",
    )
    for path in (install.server, install.python_backend, install.stub, install.libs):
        if not path.exists():
            raise FileNotFoundError(f"nvidia-pytriton install incomplete: {path} is missing")
    return install


def _backend_directory(install: TritonInstall, into: Path) -> Path:
    """A ``--backend-directory`` with the Python backend and the stub for the venv's Python."""
    python_dir = into / "python"
    shutil.copytree(install.python_backend, python_dir, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(install.stub, python_dir / install.stub.name)
    return into


def _wait_ready(server: TritonServer, process: subprocess.Popen[bytes], timeout: float) -> None:
    url = f"http://127.0.0.1:{server.http_port}/v2/health/ready"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"tritonserver exited with {process.returncode}:\n{tail}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, timeout=2) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"tritonserver not ready within {timeout:.0f}s (log: {server.log})")


@contextlib.contextmanager
def run_tritonserver(
    model_repository: Path,
    *,
    install: TritonInstall | None = None,
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 120.0,
) -> Iterator[TritonServer]:
    """Serve ``model_repository`` with the real ``tritonserver`` until the block ends.

    Python-backend models run under the install's venv interpreter (its ``bin`` leads ``PATH``), so
    ``numpy`` and whatever else they import come from that venv."""
    found = install or triton_install()
    with tempfile.TemporaryDirectory(prefix="kubevc-triton-") as scratch:
        work = Path(scratch)
        backends = _backend_directory(found, work / "backends")
        server = TritonServer(free_port(), free_port(), free_port(), work / "tritonserver.log")
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(found.libs), env.get("LD_LIBRARY_PATH")]))
        env["PATH"] = os.pathsep.join([str(found.venv / "bin"), env.get("PATH", "")])
        command = [
            str(found.server),
            f"--model-repository={model_repository}",
            f"--backend-directory={backends}",
            f"--grpc-port={server.grpc_port}",
            f"--http-port={server.http_port}",
            f"--metrics-port={server.metrics_port}",
            "--allow-metrics=false",
            *extra_args,
        ]
        with server.log.open("wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                _wait_ready(server, process, ready_timeout)
                yield server
            finally:
                stop(process)
