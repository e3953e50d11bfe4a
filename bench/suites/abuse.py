"""The gateway's memory under the abuse cases of issue 18, one fresh gateway process per case.

Each case runs against ``kubevc-gateway`` as a child process (the test PredictionService as its
backend, on loopback); the rows are the process's peak and final resident memory (VmHWM, VmRSS
from /proc), with the answers' status codes and the time of a normal JPEG request afterwards in the
notes. The child's address space is capped (``KUBEVC_BENCH_GATEWAY_CAP_GIB``, default 8) so a
gateway without limits cannot take the machine down; a case that hits the cap shows its memory at
the cap.

Before/after comparison (a manual step): install an older checkout in a venv of its own and run
``KUBEVC_BENCH_GATEWAY_PYTHON=/old/.venv/bin/python python -m bench --full --suite abuse
--results-dir /tmp/old`` from this checkout: the cases and measurement stay this harness's, only
the gateway process is the old one. The "recorded" table keeps such a run of the gateway before
issue 18 (main at c312524).
"""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import simplejpeg
import yaml

from bench.results import Row, SuiteResult, Target
from kubevc.gateway.testing import (
    backend_doc,
    config_doc,
    free_port,
    memory_use,
    multipart,
    png_bomb,
    run_test_backend,
    yolo_profile,
)

RSS_TARGET = Target("<=", 400.0, "gateway RSS never above 400 MiB")
IDLE_CONNECTIONS = 1000
IDLE_HOLD_S = 30.0

Answers = list[str]


@dataclass(frozen=True)
class Recorded:
    """One case as measured on an older gateway (kept from the ad-hoc script's raw JSON)."""

    peak_mib: float
    rss_after_mib: float
    answers: str


# The gateway before issue 18's limits: main at c312524, `python -m bench.gw_abuse` on 2026-12-01
# (the same cases and machine as the first run of this suite; the raw JSON was
# bench/results/gateway/abuse-before.json).
RECORDED_BEFORE_LABEL = "main at c312524, recorded 2026-12-01"
RECORDED_BEFORE: dict[str, Recorded] = {
    "idle": Recorded(111.6, 94.5, "—"),
    "bombs32": Recorded(3665.7, 3665.7, "504"),
    "bombs4x8": Recorded(4126.3, 3997.4, "200 ×1, 504 ×7"),
    "bombs2x8": Recorded(2769.8, 1211.3, "200 ×8"),
    "rgb4": Recorded(1819.2, 718.6, "200 ×4"),
    "header": Recorded(112.7, 112.7, "200 (8192 KiB sent)"),
    "idle_conns": Recorded(111.6, 100.9, "1000 opened, 1000 still open after 30 s"),
}


def gateway_python() -> str:
    """The interpreter that runs the gateway (another checkout's venv for a before/after run)."""
    return os.environ.get("KUBEVC_BENCH_GATEWAY_PYTHON") or sys.executable


class CappedGateway:
    """``kubevc.gateway.cli`` as a child process with its address space capped."""

    def __init__(self, backend_address: str, folder: Path, cap_gib: float) -> None:
        self.port = free_port()
        doc = config_doc([backend_doc("tf", backend_address)], [yolo_profile("yolov5", "tf")])
        doc["server"] = {"host": "127.0.0.1", "port": self.port, "logLevel": "warning"}
        path = folder / f"gw-{self.port}.yaml"
        path.write_text(yaml.safe_dump(doc))
        cap = int(cap_gib * (1 << 30))

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

        log = folder / f"gw-{self.port}.log"
        with log.open("wb") as log_file:
            self.proc = subprocess.Popen(
                [gateway_python(), "-m", "kubevc.gateway.cli", "--config", str(path)],
                stdout=subprocess.DEVNULL,
                stderr=log_file,
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
                self.stop()
                tail = log.read_bytes()[-1500:].decode(errors="replace")
                raise RuntimeError(f"the gateway did not start (exit {self.proc.returncode}): {tail}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def post(url: str, body: bytes, ctype: str, timeout: float = 120) -> str:
    try:
        response = httpx.post(
            url + "/v1/models/yolov5/infer", content=body, headers={"content-type": ctype}, timeout=timeout
        )
        return str(response.status_code)
    except httpx.HTTPError as exc:
        return type(exc).__name__


def concurrent(url: str, bodies: list[tuple[bytes, str]]) -> Answers:
    codes: Answers = []
    threads = [threading.Thread(target=lambda b=b: codes.append(post(url, *b))) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return sorted(codes)


def big_header(port: int) -> Answers:
    """An 8 MiB header line in 64 KiB writes; the gateway should refuse early (431) or close."""
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


def idle_connections(port: int, n: int = IDLE_CONNECTIONS, hold: float = IDLE_HOLD_S) -> Answers:
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


def summarize(answers: Answers) -> str:
    """``["413", "413"]`` -> ``413 ×2``; descriptive answers are joined as they are."""
    if not answers:
        return "—"
    if all(a.isdigit() for a in answers):
        counts = {a: answers.count(a) for a in sorted(set(answers))}
        return ", ".join(f"{code} ×{n}" for code, n in counts.items())
    return ", ".join(answers)


def jpeg_512() -> bytes:
    rng = np.random.default_rng(0)
    image = (rng.random((512, 512, 3)) * 255).astype(np.uint8)
    return bytes(simplejpeg.encode_jpeg(image, quality=90, colorspace="RGB"))


def cases() -> dict[str, tuple[str, Callable[[CappedGateway], Answers]]]:
    bomb = png_bomb()
    rgb_bomb = png_bomb(mode="RGB")
    b32, ct = multipart([("image/png", bomb)] * 32)
    b4, _ = multipart([("image/png", bomb)] * 4)
    b2, _ = multipart([("image/png", bomb)] * 2)
    return {
        "idle": ("idle (baseline)", lambda gw: []),
        "bombs32": (
            f"multipart of 32 PNG bombs ({len(b32) >> 10} KiB)",
            lambda gw: [post(gw.url, b32, ct)],
        ),
        "bombs4x8": (
            f"8 concurrent multiparts of 4 bombs ({len(b4) >> 10} KiB each)",
            lambda gw: concurrent(gw.url, [(b4, ct)] * 8),
        ),
        "bombs2x8": (
            "8 concurrent multiparts of 2 bombs (72 Mpx, decodable)",
            lambda gw: concurrent(gw.url, [(b2, ct)] * 8),
        ),
        "rgb4": (
            "4 concurrent RGB PNG bombs (36 Mpx, 4 B/px in Pillow)",
            lambda gw: concurrent(gw.url, [(rgb_bomb, "image/png")] * 4),
        ),
        "header": ("8 MiB header", lambda gw: big_header(gw.port)),
        "idle_conns": (
            f"{IDLE_CONNECTIONS} idle connections",
            lambda gw: idle_connections(gw.port),
        ),
    }


def run(mode: str) -> SuiteResult:
    result = SuiteResult("abuse", "Gateway memory under abuse (issue 18)", mode)
    peak = result.table(
        "peak",
        "Peak RSS (VmHWM) of the gateway process per abuse case, MiB",
        description="One fresh gateway per case, warmed by one 512x512 JPEG; "
        "answers = the status codes the abusive requests got.",
        paper_label="paper",
    )
    after = result.table(
        "after",
        "RSS (VmRSS) after each case, MiB, and a normal JPEG request afterwards",
    )
    recorded = result.table(
        "recorded",
        f"Recorded, not measured in this run: the gateway before issue 18 ({RECORDED_BEFORE_LABEL})",
        description="Same cases, same harness (then `python -m bench.gw_abuse`); kept for the "
        "before/after comparison. Re-measure with `KUBEVC_BENCH_GATEWAY_PYTHON` (see Notes).",
    )
    cap_gib = float(os.environ.get("KUBEVC_BENCH_GATEWAY_CAP_GIB", "8"))
    jpeg = jpeg_512()
    with run_test_backend() as backend, tempfile.TemporaryDirectory() as tmp:
        for key, (label, case) in cases().items():
            gw = CappedGateway(backend.address, Path(tmp), cap_gib)
            try:
                post(gw.url, jpeg, "image/jpeg")  # warm: imports, first backend call
                before = memory_use(gw.proc.pid)
                started = time.perf_counter()
                answers = case(gw)
                case_s = time.perf_counter() - started
                alive = gw.proc.poll() is None
                mem = memory_use(gw.proc.pid) if alive else None
                t0 = time.perf_counter()
                jpeg_code = post(gw.url, jpeg, "image/jpeg", timeout=60) if alive else "gateway dead"
                jpeg_ms = (time.perf_counter() - t0) * 1000
            finally:
                gw.stop()
            extra = {
                "case": key,
                "answers": answers,
                "case_s": round(case_s, 2),
                "rss_before_mib": round(before.rss_mib, 1),
                "jpeg_after": jpeg_code,
                "jpeg_after_ms": round(jpeg_ms, 1),
            }
            result.add(
                Row(
                    peak,
                    label,
                    None if mem is None else round(mem.peak_mib, 1),
                    "MiB",
                    target=RSS_TARGET,
                    note=f"answers {summarize(answers)}; case took {case_s:.1f} s",
                    extra=extra,
                )
            )
            result.add(
                Row(
                    after,
                    label,
                    None if mem is None else round(mem.rss_mib, 1),
                    "MiB",
                    note=f"before the case {before.rss_mib:.1f} MiB; JPEG afterwards {jpeg_code} "
                    f"in {jpeg_ms:.0f} ms",
                    extra=extra,
                )
            )
            old = RECORDED_BEFORE.get(key)
            if old is not None:
                result.add(
                    Row(
                        recorded,
                        f"{label}: peak",
                        old.peak_mib,
                        "MiB",
                        note=f"answers {old.answers}; RSS after {old.rss_after_mib:g} MiB",
                        extra={"case": key, "recorded": RECORDED_BEFORE_LABEL},
                    )
                )
    result.notes += [
        (
            f"Gateway interpreter: {gateway_python()}"
            if os.environ.get("KUBEVC_BENCH_GATEWAY_PYTHON")
            else "Gateway: this checkout"
        )
        + f"; its address space capped at {cap_gib:g} GiB (a case at the cap would show memory near it).",
        "Before/after is a manual step: install the older checkout in a venv of its own and run "
        "`KUBEVC_BENCH_GATEWAY_PYTHON=/old/.venv/bin/python python -m bench --full --suite abuse "
        "--results-dir /tmp/old` from this checkout (same cases, old gateway process).",
        "Not in `make bench` (the idle-connection case alone holds 30 s): runs in `make bench-full`.",
    ]
    return result
