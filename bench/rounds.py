"""Load runs against servers side by side, shared by the throughput, triton and kserve suites.

One *run*: a short warm-up, then ``wrk`` (Debian's, one thread, its own process) or, without it,
the httpx/asyncio load generator (:mod:`bench.loadgen`, its own process) at N connections for a
few seconds; CPU seconds of the server and of its backend from /proc (utime + stime) before and
after, the load generator's from this process's children, the server's peak RSS sampled every
50 ms. :func:`interleaved` repeats runs in rounds, interleaving the servers (server A, server B,
A, B, ... at each connection count) so that a change of the machine's load hits both alike.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import Proc, python_cmd
from bench.results import REPO_ROOT

__all__ = [
    "WRK_LUA",
    "Contender",
    "Measured",
    "Sampler",
    "children_cpu_s",
    "interleaved",
    "load_run",
    "run_loadgen",
    "run_wrk",
]

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


@dataclass
class Measured:
    """What one load run gave: the load generator's summary and CPU/RSS read from /proc."""

    out: dict[str, Any]  # requests, errors, seconds, requests_per_s, p50_ms, p99_ms, tool
    wall_s: float
    gateway_cpu_s: float
    backend_cpu_s: float
    loadgen_cpu_s: float
    gateway_rss_peak_kib: int

    def per_request_ms(self, cpu_s: float) -> float | None:
        n = int(self.out.get("requests") or 0)
        return 1e3 * cpu_s / n if n > 0 else None


def children_cpu_s() -> float:
    """CPU seconds of this process's finished children (the load generator runs)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _no_cpu() -> float:
    return 0.0


@dataclass(frozen=True)
class Contender:
    """One server under load: where to send what, and how to read its CPU (and its backend's)."""

    name: str
    url: str
    body: Path
    ctype: str
    cpu_seconds: Callable[[], float]
    backend_cpu_seconds: Callable[[], float] = field(default=_no_cpu)
    process: Proc | None = None  # sampled for the peak RSS during the run


def load_run(
    contender: Contender,
    connections: int,
    seconds: float,
    script: Path,
    *,
    use_wrk: bool,
    warmup_s: float = 0.2,
) -> Measured:
    """One warmed-up load run of ``contender`` (``script``: :data:`WRK_LUA` written to a file)."""
    c = contender
    run_loadgen(c.url, c.body, c.ctype, 1, warmup_s)
    cpu0, backend0, loadgen0 = c.cpu_seconds(), c.backend_cpu_seconds(), children_cpu_s()
    started = time.monotonic()
    sampler = Sampler(c.process) if c.process is not None else None
    if sampler is not None:
        sampler.__enter__()
    try:
        out = (
            run_wrk(c.url, c.body, c.ctype, connections, seconds, script)
            if use_wrk
            else run_loadgen(c.url, c.body, c.ctype, connections, seconds)
        )
    finally:
        if sampler is not None:
            sampler.__exit__(None, None, None)
    return Measured(
        out,
        wall_s=time.monotonic() - started,
        gateway_cpu_s=c.cpu_seconds() - cpu0,
        backend_cpu_s=c.backend_cpu_seconds() - backend0,
        loadgen_cpu_s=children_cpu_s() - loadgen0,
        gateway_rss_peak_kib=sampler.peak_kib if sampler is not None else 0,
    )


def interleaved(
    contenders: Sequence[Contender],
    connections: Sequence[int],
    rounds: int,
    seconds: float,
    script: Path,
    *,
    use_wrk: bool,
) -> dict[tuple[str, int], list[Measured]]:
    """``rounds`` rounds; in each, at each connection count, one run of every contender in turn.
    Returns the runs per (contender name, connections), in round order."""
    runs: dict[tuple[str, int], list[Measured]] = {(c.name, n): [] for c in contenders for n in connections}
    for _round in range(rounds):
        for n in connections:
            for c in contenders:
                runs[c.name, n].append(load_run(c, n, seconds, script, use_wrk=use_wrk))
    return runs
