"""The ``placement`` finding: a model whose accelerator or memory floor no node of its region
offers (by the nodes' recorded inventories), one line naming the model, the region and what is
missing."""

from __future__ import annotations

from ..spec import RegionSpec, accelerator_problems
from ._report import Report

__all__ = ["PLACEMENT", "check_placement"]

PLACEMENT = "placement"


def check_placement(spec: RegionSpec, report: Report) -> None:
    for problem in accelerator_problems(spec):
        report.add(spec.name, PLACEMENT, f"regions/{spec.name}/region.yaml", "models", problem)
