"""``python -m bench.abuse_bodies``: the gateway's memory under large and slow request bodies
(issue 18), the cases ``bench/suites/abuse.py`` does not replay: oversized bodies, many
concurrent bodies just under ``maxBodyBytes``, slow uploads that hold their bodies open, and a
chunked body without a length. One fresh gateway process per case (the harness of the abuse
suite: address space capped, ``KUBEVC_BENCH_GATEWAY_PYTHON`` for an older checkout); printed as
a Markdown table of peak RSS (VmHWM from /proc) per case with the answers the requests got.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.stages import machine
from bench.suites.abuse import CappedGateway, gateway_python, jpeg_512, post, summarize
from kubevc.gateway.testing import memory_use, run_test_backend

MIB = 1 << 20
BODY = 30 * MIB  # just under the default maxBodyBytes (32 MiB)


def upload(url: str, size: int) -> str:
    try:
        r = httpx.post(
            url + "/v1/models/yolov5/infer",
            content=b"\xff" * size,
            headers={"content-type": "image/jpeg"},
            timeout=120,
        )
        return str(r.status_code)
    except httpx.HTTPError as exc:
        return type(exc).__name__


def concurrent_uploads(url: str, n: int, size: int) -> list[str]:
    codes: list[str] = []
    threads = [threading.Thread(target=lambda: codes.append(upload(url, size))) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return sorted(codes)


def slow_uploads(port: int, n: int, size: int, sent: int, hold: float) -> list[str]:
    """``n`` connections each promising ``size`` bytes and sending ``sent``, held ``hold`` s."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(
            b"POST /v1/models/yolov5/infer HTTP/1.1\r\nhost: gw\r\ncontent-type: image/jpeg\r\n"
            b"content-length: %d\r\n\r\n" % size
        )
        s.sendall(b"\xff" * sent)
        socks.append(s)
    time.sleep(hold)
    answered = waiting = 0
    for s in socks:
        s.setblocking(False)
        try:
            answered += bool(s.recv(65536))
        except BlockingIOError:
            waiting += 1
        except OSError:
            pass
        s.close()
    return [f"{answered} answered at once (503)", f"{waiting} still receiving"]


def chunked(port: int, total: int) -> list[str]:
    """One chunked body of ``total`` bytes in 1 MiB chunks, no Content-Length."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(
            b"POST /v1/models/yolov5/infer HTTP/1.1\r\nhost: gw\r\ncontent-type: image/jpeg\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        with contextlib.suppress(OSError):  # the gateway may answer and close mid-body
            for _ in range(total // MIB):
                s.sendall(b"%x\r\n%s\r\n" % (MIB, b"\xff" * MIB))
            s.sendall(b"0\r\n\r\n")
        with contextlib.suppress(OSError):
            answer = s.recv(65536)
    return [answer[9:12].decode() if answer.startswith(b"HTTP/1.1") else "closed"]


def cases() -> dict[str, tuple[str, Callable[[CappedGateway], list[str]]]]:
    return {
        "oversized": (
            "one 64 MiB body (Content-Length above maxBodyBytes)",
            lambda gw: [upload(gw.url, 64 * MIB)],
        ),
        "chunked": ("one chunked 64 MiB body, no Content-Length", lambda gw: chunked(gw.port, 64 * MIB)),
        "bodies16": (
            "16 concurrent 30 MiB bodies",
            lambda gw: concurrent_uploads(gw.url, 16, BODY),
        ),
        "slow32": (
            "32 slow uploads promising 30 MiB, 2 MiB sent, held 5 s",
            lambda gw: slow_uploads(gw.port, 32, BODY, 2 * MIB, 5.0),
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.abuse_bodies", description=__doc__.split("\n")[0])
    parser.parse_args(argv)
    cap_gib = float(os.environ.get("KUBEVC_BENCH_GATEWAY_CAP_GIB", "8"))
    print(f"Measured with `python -m bench.abuse_bodies` · {machine()}")
    print(f"Gateway interpreter: {gateway_python()}; address space capped at {cap_gib:g} GiB.\n")
    print("| case | peak RSS MiB | RSS after MiB | answers | JPEG afterwards |\n|---|--:|--:|---|---|")
    jpeg = jpeg_512()
    with run_test_backend() as backend, tempfile.TemporaryDirectory() as tmp:
        for label, case in cases().values():
            gw = CappedGateway(backend.address, Path(tmp), cap_gib)
            try:
                post(gw.url, jpeg, "image/jpeg")  # warm
                answers = case(gw)
                alive = gw.proc.poll() is None
                mem = memory_use(gw.proc.pid) if alive else None
                after = post(gw.url, jpeg, "image/jpeg", timeout=60) if alive else "gateway dead"
            finally:
                gw.stop()
            peak = f"{mem.peak_mib:.1f}" if mem else "—"
            rss = f"{mem.rss_mib:.1f}" if mem else "—"
            print(f"| {label} | {peak} | {rss} | {summarize(answers)} | {after} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
