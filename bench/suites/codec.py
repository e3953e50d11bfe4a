"""placeholder"""

from __future__ import annotations

from bench.results import SuiteResult


def run(mode: str) -> SuiteResult:
    res = SuiteResult("codec", "codec", mode)
    res.skip("codec", "not implemented yet")
    return res
