"""Bounded timing loops and percentiles."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """At least ``min_count`` runs, then stop at ``max_count`` runs or ``max_seconds``."""

    min_count: int = 3
    max_count: int = 50
    max_seconds: float = 2.0


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        return math.nan
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def run_timed(fn: Callable[[], object], budget: Budget, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of each call of ``fn`` (GC off while timing one call)."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < budget.max_count:
        gc_was = gc.isenabled()
        gc.disable()
        try:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        finally:
            if gc_was:
                gc.enable()
        if len(times) >= budget.min_count and time.perf_counter() - start > budget.max_seconds:
            break
    return times


def summary(times: Sequence[float]) -> dict[str, float | int]:
    return {
        "n": len(times),
        "p50_ms": percentile(times, 50) * 1e3,
        "p95_ms": percentile(times, 95) * 1e3,
        "min_ms": (min(times) if times else math.nan) * 1e3,
    }
