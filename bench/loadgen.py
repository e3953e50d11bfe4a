"""``python -m bench.loadgen URL BODY_FILE CONTENT_TYPE CONCURRENCY SECONDS``: a closed-loop HTTP
load generator (httpx + asyncio), used when Debian's ``wrk`` is not installed. Prints one JSON line:
requests, errors, seconds, requests_per_s and latency percentiles in ms."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import httpx


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    data = sorted(values)
    return data[min(len(data) - 1, round((len(data) - 1) * q / 100))]


async def _run(url: str, body: bytes, ctype: str, concurrency: int, seconds: float) -> dict[str, object]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120.0, limits=limits) as client:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, content=body, headers={"content-type": ctype})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {
        "tool": "httpx-asyncio",
        "requests": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": (_pct(latencies, 50) or 0) * 1e3,
        "p99_ms": (_pct(latencies, 99) or 0) * 1e3,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    url, body_file, ctype, conc, secs = args
    result = asyncio.run(_run(url, Path(body_file).read_bytes(), ctype, int(conc), float(secs)))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
