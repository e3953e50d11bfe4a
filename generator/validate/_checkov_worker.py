"""A long-lived checkov process: one Kubernetes scan per folder named on stdin, one JSON line out.

Run as a script by the Python of checkov's own venv (``python _checkov_worker.py SKIPS``), never
imported by kubevc (checkov is not installed beside it). checkov's start-up (imports, check
registries) takes seconds and dominates a run over one region's few manifests; this pays it once
and then scans region after region, each with a fresh runner, so no state and no graph edge is
shared between regions (one scan over many regions links same-named resources of different
clusters, see ``CHECKOV_BATCH``).

Protocol: each stdin line is a folder; each stdout line is ``{"ok": true, "failed_checks": [...],
"passed_checks": N, "summary": {...}}`` (the fields ``kubevc-gen validate`` reads from checkov's
JSON output) or ``{"ok": false, "error": "..."}``. The first line out is ``{"ready": VERSION}``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys
from typing import Any


def _scan(runner_module: Any, filter_module: Any, folder: str, skips: list[str]) -> dict[str, Any]:
    runner_filter = filter_module.RunnerFilter(
        framework=["kubernetes"], skip_checks=skips, show_progress_bar=False, download_external_modules=False
    )
    report = runner_module.Runner().run(root_folder=folder, runner_filter=runner_filter)
    if isinstance(report, list):  # with an image report: the first is the manifests'
        report = report[0]
    failed = [
        {
            "check_id": r.check_id,
            "check_name": r.check_name,
            "resource": r.resource,
            "file_path": r.file_path,
        }
        for r in report.failed_checks
    ]
    return {"ok": True, "failed_checks": failed, "summary": report.get_summary()}


def main() -> int:
    skips = [s for s in (sys.argv[1] if len(sys.argv) > 1 else "").split(",") if s]
    os.environ.setdefault("BC_SKIP_MAPPING", "TRUE")
    os.environ.setdefault("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false")
    out = sys.stdout
    with contextlib.redirect_stdout(io.StringIO()):  # checkov prints banners; stdout is the protocol
        runner_module = importlib.import_module("checkov.kubernetes.runner")
        filter_module = importlib.import_module("checkov.runner_filter")
        version = importlib.import_module("checkov.version").version
    out.write(json.dumps({"ready": str(version)}) + "\n")
    out.flush()
    for line in sys.stdin:
        folder = line.strip()
        if not folder:
            continue
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                answer = _scan(runner_module, filter_module, folder, skips)
        except Exception as exc:  # any checkov failure is reported; the worker goes on
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
