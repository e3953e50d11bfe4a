"""Throughput and footprint on this machine's cores: gateway + test backend as their own processes
on loopback, load from a separate process (Debian's ``wrk`` when installed, else an httpx/asyncio
load generator); gateway RSS idle / under load and CPU%."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import models, wire
from bench.gwconfig import write_config
from bench.machine import usable_cores
from bench.procs import Proc, python_cmd, wait_http
from bench.results import REPO_ROOT, Row, SuiteResult

WRK_LUA = """
local f = assert(io.open(os.getenv("KVB_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = os.getenv("KVB_CTYPE")
done = function(summary, latency, requests)
  io.write(string.format("KVB %d %d %d %d %f %f\\n", summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, 0, latency:percentile(50), latency:percentile(99)))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_wrk(url: str, body: Path, ctype: str, conc: int, seconds: float, script: Path) -> dict[str, Any]:
    env = {"KVB_BODY": str(body), "KVB_CTYPE": ctype, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{conc}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "60s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        env=env,
    )
    m = re.search(r"^KVB (\d+) (\d+) (\d+) \d+ ([\d.]+) ([\d.]+)$", proc.stdout, re.M)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed: {proc.stdout[-500:]} {proc.stderr[-500:]}")
    requests, duration_us, errors = int(m.group(1)), int(m.group(2)), int(m.group(3))
    return {
        "tool": "wrk",
        "requests": requests - errors,
        "errors": errors,
        "seconds": duration_us / 1e6,
        "requests_per_s": (requests - errors) / (duration_us / 1e6),
        "p50_ms": float(m.group(4)) / 1e3,
        "p99_ms": float(m.group(5)) / 1e3,
    }


def run_loadgen(url: str, body: Path, ctype: str, conc: int, seconds: float) -> dict[str, Any]:
    proc = subprocess.run(
        python_cmd("bench.loadgen", url, str(body), ctype, str(conc), str(seconds)),
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        cwd=REPO_ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr[-1000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


class Sampler:
    """Samples a process's RSS every 50 ms while active."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            rss = self.proc.rss_kib() or 0
            self.peak_kib = max(self.peak_kib, rss)
            self._stop.wait(0.05)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run(mode: str) -> SuiteResult:
    quick = mode == "quick"
    cores = usable_cores()
    res = SuiteResult("throughput", f"Throughput and footprint on {cores} cores (loopback)", mode)
    t = res.table(
        "rps",
        "Requests per second (YOLOv5, batch 1)",
        ratio_label="× TF REST JSON, same run",
        description="Gateway, test backend and load generator all share this machine's cores.",
    )
    t_fp = res.table("footprint", "Gateway process footprint")
    use_wrk = shutil.which("wrk") is not None
    m = models.IMAGE_MODELS["YOLOv5"]
    with tempfile.TemporaryDirectory(prefix="kvb-tput-") as tmpdir:
        tmp = Path(tmpdir)
        script = tmp / "post.lua"
        script.write_text(WRK_LUA)
        jpeg = tmp / "photo.jpg"
        jpeg.write_bytes(models.jpeg(models.uint8_input(m)[0], 90))
        js = tmp / "instances.json"
        js.write_bytes(wire.rest_json_request(models.float_input(m)))
        gport = free_port()
        with Proc(python_cmd("bench.serve_backend", "--port", "0"), tmp / "backend.log") as backend:
            addr = backend.wait_line("READY", 60).split()[1]
            cfg = write_config(tmp / "gateway.yaml", addr, "127.0.0.1", gport)
            with Proc(python_cmd("kubevc.gateway.cli", "--config", str(cfg)), tmp / "gateway.log") as gateway:
                base = f"http://127.0.0.1:{gport}"
                wait_http(f"{base}/healthz", 60)
                time.sleep(0.5)
                idle = gateway.rss_kib() or 0
                res.add(Row(t_fp, "gateway RSS idle (after start, before any request)", idle / 1024, "MiB"))
                cases = [
                    (
                        "JPEG in, detections out (`/infer`)",
                        f"{base}/v1/models/yolov5/infer",
                        jpeg,
                        "image/jpeg",
                        4,
                        6.0 if quick else 30.0,
                    ),
                    (
                        "TF REST JSON in, raw tensor JSON out (`:predict`)",
                        f"{base}/v1/models/yolov5-f32:predict",
                        js,
                        "application/json",
                        2,
                        8.0 if quick else 30.0,
                    ),
                ]
                rps: dict[str, float] = {}
                for label, url, body, ctype, conc, secs in cases:
                    # one warm-up request
                    run_loadgen(url, body, ctype, 1, 0.1)
                    cpu0, b0, w0 = (
                        gateway.cpu_seconds() or 0.0,
                        backend.cpu_seconds() or 0.0,
                        time.monotonic(),
                    )
                    with Sampler(gateway) as sampler:
                        out = (
                            run_wrk(url, body, ctype, conc, secs, script)
                            if use_wrk
                            else run_loadgen(url, body, ctype, conc, secs)
                        )
                    wall = time.monotonic() - w0
                    cpu = 100 * ((gateway.cpu_seconds() or 0.0) - cpu0) / wall
                    bcpu = 100 * ((backend.cpu_seconds() or 0.0) - b0) / wall
                    rps[label] = out["requests_per_s"]
                    res.add(
                        Row(
                            t,
                            f"{label}, {conc} connections",
                            out["requests_per_s"],
                            "req/s",
                            ratio=None,
                            note=f"p50 {out['p50_ms']:.1f} ms, p99 {out['p99_ms']:.1f} ms, "
                            f"{out['requests']} ok / {out['errors']} errors in "
                            f"{out['seconds']:.1f} s ({out['tool']}); gateway CPU {cpu:.0f}%, "
                            f"backend CPU {bcpu:.0f}%",
                            extra={
                                **out,
                                "gateway_cpu_percent": cpu,
                                "backend_cpu_percent": bcpu,
                                "gateway_rss_peak_mib": sampler.peak_kib / 1024,
                                "plot": {"group": "requests/s", "series": label},
                            },
                        )
                    )
                    res.add(
                        Row(t_fp, f"gateway RSS peak under load: {label}", sampler.peak_kib / 1024, "MiB")
                    )
                    res.add(Row(t_fp, f"gateway CPU under load: {label}", cpu, "%", note="100% = one core"))
                keys = list(rps)
                if len(keys) == 2 and rps[keys[1]] > 0:
                    for row in res.rows:
                        if row.table == t:
                            row.ratio = row.value / rps[keys[1]] if row.value is not None else None
    res.notes.append(
        f"Load generator: {'wrk (Debian package), 1 thread' if use_wrk else 'httpx/asyncio'} in its "
        "own process; gateway = `kubevc-gateway --config` (uvicorn, one worker); backend = the "
        "gateway's test PredictionService in its own process."
    )
    return res
