"""checkov on everything the ci cases render, once per session."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.rendering import case_manifests, ci_cases, render_case

SKIPS_FILE = Path(__file__).with_name("checkov-skips.yaml")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def checkov_report(checkov_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out_dir = tmp_path_factory.mktemp("rendered")
    for case in ci_cases():
        documents = [text for name, text in sorted(render_case(case).items()) if name.endswith(".yaml")]
        (out_dir / f"{case.chart}--{case.values_file.stem}.yaml").write_text("\n---\n".join(documents))
    # --skip-download: no network here; checkov then runs on its bundled checks only.
    command = [
        str(checkov_bin),
        "-d",
        str(out_dir),
        "--framework",
        "kubernetes",
        "-o",
        "json",
        "--quiet",
        "--skip-download",
    ]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)
    # Exit code 1 only means "some check failed"; anything else is checkov itself failing.
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    return report if isinstance(report, list) else [report]


def test_skip_list_is_short_and_justified() -> None:
    skips = yaml.safe_load(SKIPS_FILE.read_text())
    assert isinstance(skips, dict) and len(skips) <= 5
    assert all(isinstance(reason, str) and len(reason) > 20 for reason in skips.values())


def test_checkov_ran_on_every_rendered_object(checkov_report: list[dict[str, Any]]) -> None:
    # --quiet leaves passed checks out of the report; the resource count shows nothing was dropped
    # (checkov counts each workload's pod template as one more resource).
    summary = checkov_report[0]["summary"]
    rendered = sum(len(case_manifests(case)) for case in ci_cases())
    assert summary["parsing_errors"] == 0, summary
    assert summary["resource_count"] >= rendered, (summary, rendered)
    assert summary["passed"] > 10 * len(ci_cases()), summary


def test_no_failed_check_outside_the_skip_list(checkov_report: list[dict[str, Any]]) -> None:
    skips = yaml.safe_load(SKIPS_FILE.read_text())
    failed = [
        f"{check['check_id']} {check['check_name']}: {check['file_path']} {check['resource']}"
        for result in checkov_report
        for check in result["results"]["failed_checks"]
        if check["check_id"] not in skips
    ]
    assert not failed, "\n".join(failed)
