"""placeholder"""

from __future__ import annotations

from bench.results import SuiteResult


def run(mode: str) -> SuiteResult:
    res = SuiteResult("throughput", "throughput", mode)
    res.skip("throughput", "not implemented yet")
    return res
