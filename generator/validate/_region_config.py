"""The ``spec`` checks of a region beyond its file's own schema: does an image of the fleet's
catalogue run on every node architecture of the region, and are its chart values overrides keys
the charts know."""

from __future__ import annotations

from ..repo import check_value_overrides
from ..spec import FLEET_MARKER, FleetConfig, RegionSpec, image_problems
from ._report import Report


def check_region_config(spec: RegionSpec, config: FleetConfig, report: Report) -> None:
    """Add a ``spec`` finding per workload without a fitting image and per bad values key."""
    region_file = f"regions/{spec.name}/region.yaml"
    runtimes = [m.serving_runtime for m in spec.models]
    for problem in image_problems(spec.name, spec.architectures, config.images, spec.images, runtimes):
        where = region_file if spec.images is not None else FLEET_MARKER
        report.add(spec.name, "spec", where, "images", problem)
    for problem in check_value_overrides(spec):
        report.add(spec.name, "spec", region_file, "values", problem.removeprefix(f"{region_file}: "))
