"""What the abuse tests and the abuse benchmark share: image bombs, multipart bodies, the memory of
a process read from ``/proc``, and a gateway run as its own process (so its memory is its own)."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

from kubevc.gateway.testing._ports import free_port

__all__ = ["GatewayProcess", "MemoryUse", "gateway_process", "memory_use", "multipart", "png_bomb"]


def png_bomb(width: int = 6000, height: int = 6000, mode: str = "1") -> bytes:
    """A PNG of one colour: a few KB that decode to ``width * height`` pixels (1-bit by default,
    as small as PNG bombs come; ``mode="RGB"`` for one that Pillow holds at 4 bytes a pixel)."""
    buf = io.BytesIO()
    Image.new(mode, (width, height)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def multipart(parts: list[tuple[str, bytes]], boundary: str = "kubevc-abuse") -> tuple[bytes, str]:
    """(body, Content-Type) of a ``multipart/form-data`` with one file part per (media type, bytes)."""
    chunks = []
    for i, (ctype, data) in enumerate(parts):
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p{i}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n"
        )
        chunks += [head.encode(), data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


@dataclass(frozen=True)
class MemoryUse:
    """A process's resident memory in MiB: now (VmRSS) and its peak so far (VmHWM)."""

    rss_mib: float
    peak_mib: float


def memory_use(pid: int) -> MemoryUse:
    """VmRSS and VmHWM of ``pid`` from ``/proc/<pid>/status``."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # kB -> MiB
    return MemoryUse(fields["VmRSS"], fields["VmHWM"])


@dataclass
class GatewayProcess:
    """``kubevc-gateway --config FILE`` running as a child process."""

    proc: subprocess.Popen[str]
    url: str
    port: int

    def memory(self) -> MemoryUse:
        return memory_use(self.proc.pid)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code (the gateway drains first)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@contextmanager
def gateway_process(
    doc: dict[str, Any], folder: Path, *, start_timeout: float = 60, stderr: Any = subprocess.DEVNULL
) -> Iterator[GatewayProcess]:
    """Run the gateway for configuration ``doc`` on a free loopback port until the block ends."""
    port = free_port()
    doc = {**doc, "server": {**doc.get("server", {}), "host": "127.0.0.1", "port": port}}
    path = folder / f"gateway-{port}.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubevc.gateway.cli", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
        env={**os.environ, "KUBEVC_GATEWAY_PORT": str(port)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:  # listening once the app has started (uvicorn binds after the lifespan startup)
                with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                    probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
                    if probe.recv(12).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.1)
        yield GatewayProcess(proc, url, port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
