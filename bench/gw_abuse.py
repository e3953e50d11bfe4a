"""The gateway's memory under the abuse cases of issue 18, one fresh gateway process per case.

``python -m bench.gw_abuse [--json FILE]`` runs each case against ``kubevc-gateway`` as a child
process (the test PredictionService as its backend, on loopback), and prints the process's peak
and final resident memory (VmHWM, VmRSS from /proc), the answers' status codes and the time of a
normal JPEG request afterwards. Self-contained on purpose: it runs against an older checkout
(``/old/.venv/bin/python -m bench.gw_abuse`` from this folder) to measure before and after.
The child's address space is capped (``--cap-gib``) so a gateway without limits cannot take the
machine down; a case that hits the cap shows its memory at the cap.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import simplejpeg
import yaml
from PIL import Image

from kubevc.gateway.testing import backend_doc, config_doc, free_port, run_test_backend, yolo_profile


def _png_bomb(mode: str = "1", size: int = 6000) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (size, size)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _multipart(parts: list[bytes]) -> tuple[bytes, str]:
    chunks = []
    for i, data in enumerate(parts):
        chunks += [
            f'--b\r\nContent-Disposition: form-data; name="image"; filename="p{i}"\r\n'
            "Content-Type: image/png\r\n\r\n".encode(),
            data,
            b"\r\n",
        ]
    chunks.append(b"--b--\r\n")
    return b"".join(chunks), "multipart/form-data; boundary=b"


def _memory(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def _jpeg() -> bytes:
    rng = np.random.default_rng(0)
    image = (rng.random((512, 512, 3)) * 255).astype(np.uint8)
    return bytes(simplejpeg.encode_jpeg(image, quality=90, colorspace="RGB"))


class _Gateway:
    def __init__(self, backend_address: str, folder: Path, cap_gib: float) -> None:
        self.port = free_port()
        doc = config_doc([backend_doc("tf", backend_address)], [yolo_profile("yolov5", "tf")])
        doc["server"] = {"host": "127.0.0.1", "port": self.port, "logLevel": "warning"}
        path = folder / f"gw-{self.port}.yaml"
        path.write_text(yaml.safe_dump(doc))
        cap = int(cap_gib * (1 << 30))

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubevc.gateway.cli", "--config", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=limit,  # only a resource limit: safe before exec
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _post(url: str, body: bytes, ctype: str, timeout: float = 120) -> int | str:
    try:
        return httpx.post(
            url + "/v1/models/yolov5/infer", content=body, headers={"content-type": ctype}, timeout=timeout
        ).status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__


def _concurrent(url: str, bodies: list[tuple[bytes, str]]) -> list[int | str]:
    codes: list[int | str] = []
    threads = [threading.Thread(target=lambda b=b: codes.append(_post(url, *b))) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return sorted(codes, key=str)


def _big_header(port: int) -> list[int | str]:
    answer = b""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Big: ")
            for _ in range(128):
                s.sendall(b"a" * 65536)
                sent += 65536
            s.sendall(b"\r\n\r\n")
        except OSError:
            pass
        try:
            while part := s.recv(65536):
                answer += part
        except OSError:
            pass
    status = answer[9:12].decode() if answer.startswith(b"HTTP/1.1") else "closed"
    return [status, f"{sent >> 10} KiB sent"]


def _idle(port: int, n: int = 1000, hold: float = 30) -> list[int | str]:
    sockets = []
    for _ in range(n):
        try:
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        except OSError:
            break
    time.sleep(hold)
    still_open = 0
    for s in sockets:
        s.setblocking(False)
        try:
            s.recv(1 << 16)  # b"" (closed) or a refusal the gateway wrote before closing
        except BlockingIOError:
            still_open += 1  # nothing to read and not closed
        except OSError:
            pass
        s.close()
    return [f"{len(sockets)} opened", f"{still_open} still open after {hold:.0f} s"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the rows here too")
    parser.add_argument("--cap-gib", type=float, default=8.0, help="address-space cap of the gateway")
    parser.add_argument("--case", action="append", help="run only these cases")
    args = parser.parse_args(argv)
    bomb = _png_bomb()
    rgb_bomb = _png_bomb("RGB")
    jpeg = _jpeg()
    b32, ct = _multipart([bomb] * 32)
    b4, _ = _multipart([bomb] * 4)
    b2, _ = _multipart([bomb] * 2)
    cases: dict[str, Callable[[_Gateway], list[int | str]]] = {
        "idle (baseline)": lambda gw: [],
        f"multipart of 32 PNG bombs ({len(b32) >> 10} KiB)": lambda gw: [_post(gw.url, b32, ct)],
        f"8 concurrent multiparts of 4 bombs ({len(b4) >> 10} KiB each)": lambda gw: _concurrent(
            gw.url, [(b4, ct)] * 8
        ),
        "8 concurrent multiparts of 2 bombs (72 Mpx, decodable)": lambda gw: _concurrent(
            gw.url, [(b2, ct)] * 8
        ),
        "4 concurrent RGB PNG bombs (36 Mpx, 4 B/px in Pillow)": lambda gw: _concurrent(
            gw.url, [(rgb_bomb, "image/png")] * 4
        ),
        "8 MiB header": lambda gw: _big_header(gw.port),
        "1000 idle connections": lambda gw: _idle(gw.port),
    }
    rows: list[dict[str, Any]] = []
    with run_test_backend() as backend, tempfile.TemporaryDirectory() as tmp:
        for name, case in cases.items():
            if args.case and not any(c in name for c in args.case):
                continue
            gw = _Gateway(backend.address, Path(tmp), args.cap_gib)
            try:
                _post(gw.url, jpeg, "image/jpeg")  # warm: imports, first backend call
                before = _memory(gw.proc.pid)
                started = time.perf_counter()
                answers = case(gw)
                case_s = time.perf_counter() - started
                alive = gw.proc.poll() is None
                after = _memory(gw.proc.pid) if alive else {}
                t0 = time.perf_counter()
                jpeg_code = _post(gw.url, jpeg, "image/jpeg", timeout=60) if alive else "dead"
                jpeg_ms = round((time.perf_counter() - t0) * 1000, 1)
            finally:
                gw.stop()
            row = {
                "case": name,
                "answers": [str(a) for a in answers],
                "case_s": round(case_s, 2),
                "rss_before_mib": before.get("VmRSS"),
                "peak_mib": after.get("VmHWM"),
                "rss_after_mib": after.get("VmRSS"),
                "jpeg_after": jpeg_code,
                "jpeg_after_ms": jpeg_ms,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(
            json.dumps({"python": sys.executable, "pid": os.getpid(), "rows": rows}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
