"""placeholder"""

from __future__ import annotations

from bench.results import SuiteResult


def run(mode: str) -> SuiteResult:
    res = SuiteResult("deploy", "deploy", mode)
    res.skip("deploy", "not implemented yet")
    return res
