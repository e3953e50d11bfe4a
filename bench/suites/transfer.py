"""placeholder"""

from __future__ import annotations

from bench.results import SuiteResult


def run(mode: str) -> SuiteResult:
    res = SuiteResult("transfer", "transfer", mode)
    res.skip("transfer", "not implemented yet")
    return res
