"""``python -m bench --quick|--full [--suite NAME ...] [--report-only]``."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

from bench import plots, report
from bench.machine import machine_info
from bench.results import DOC_PATH, IMG_DIR, RESULTS_DIR, SuiteResult, current_command, write_result

SUITES = (
    "payload",
    "codec",
    "transfer",
    "throughput",
    "deploy",
    "abuse",
    "wire",
    "triton",
    "kserve",
    "deploy_scale",
)
# What --quick runs without --suite: the gateway's abuse and wire-form suites do not fit its
# 3-minute budget (1000 idle connections alone are held 30 s), so they run in --full only; so do
# the real-tritonserver and KServe-transformer suites (Triton's start-up alone can take minutes).
QUICK_SUITES = ("payload", "codec", "transfer", "throughput", "deploy")


def run_suite(name: str, mode: str, img_dir: Path) -> SuiteResult:
    module = importlib.import_module(f"bench.suites.{name}")
    start = time.perf_counter()
    machine = machine_info()
    try:
        result: SuiteResult = module.run(mode)
    except Exception as exc:  # one broken suite must not lose the others' results
        traceback.print_exc()
        result = SuiteResult(name, f"{name} (failed)", mode)
        result.skip(name, f"suite raised {type(exc).__name__}: {exc}")
    result.machine = machine
    result.command = current_command()
    result.duration_s = time.perf_counter() - start
    png = plots.plot_suite(result.to_json(), img_dir)
    if png is not None:
        result.plots = [plots.repo_relative(png)]
    return result


def print_result(result: SuiteResult) -> None:
    print(f"== {result.title} [{result.duration_s or 0:.1f} s]")
    for row in result.rows:
        status = row.target.status(row.value) if row.target else None
        paper = "" if row.paper is None else f"  paper {report.fmt(row.paper, row.unit)}"
        ratio = "" if row.ratio is None else f"  {report.fmt_ratio(row.ratio)}"
        goal = (
            f"  [{row.target.op} {report.fmt(row.target.value)} {row.unit}: {status}]" if row.target else ""
        )
        print(f"  {row.label[:78]:78s} {report.fmt(row.value, row.unit):>14s}{paper}{ratio}{goal}")
    for s in result.skipped:
        print(f"  SKIPPED {s['what']}: {s['reason']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="bounded run, < 3 minutes (make bench)")
    mode.add_argument(
        "--full",
        action="store_true",
        help="more iterations, 100 regions, the gateway abuse and wire suites (make bench-full)",
    )
    parser.add_argument("--suite", action="append", choices=SUITES, help="run only these suites (repeatable)")
    parser.add_argument(
        "--report-only", action="store_true", help="only regenerate docs/benchmarks.md and plots"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--doc", type=Path, default=DOC_PATH)
    parser.add_argument("--img-dir", type=Path, default=IMG_DIR)
    args = parser.parse_args(argv)
    run_mode = "full" if args.full else "quick"
    started = time.perf_counter()
    if not args.report_only:
        print(f"{current_command()}: {run_mode} run")
        for name in args.suite or (SUITES if run_mode == "full" else QUICK_SUITES):
            result = run_suite(name, run_mode, args.img_dir)
            print_result(result)
            write_result(result, args.results_dir)
    path = report.regenerate(args.results_dir, args.doc, args.img_dir)
    print(f"wrote {path}")
    if not args.report_only:
        total = time.perf_counter() - started
        budget = (
            " (over the 3-minute budget of --quick: is the machine busy?)"
            if run_mode == "quick" and total > 180
            else ""
        )
        print(f"total {total:.0f} s{budget}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
