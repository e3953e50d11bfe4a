"""The fleet CI ``init`` writes installs kubevc from a source that resolves and passes.

Before, ``.github/workflows/fleet.yaml`` installed ``kubevc[gen]==0.1.0``, a release that does
not exist. Now it installs ``kubevcSource`` from kubevc-fleet.yaml; here that is a wheel built
from this checkout, and every ``run:`` step of the generated workflow runs in a fresh venv.
checkov comes from its own tool venv (``KUBEVC_CHECKOV``), as in the project's other tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kubevc.generator.demo import SEOUL, SERVING_ARM64

from .conftest import run_gen


@pytest.mark.slow
def test_generated_workflow_steps_pass_in_a_fresh_venv(repo_root: Path, tmp_path: Path) -> None:
    checkov = os.environ.get("KUBEVC_CHECKOV")
    if not checkov or not Path(checkov).is_file():
        pytest.skip("KUBEVC_CHECKOV does not name checkov (make tools)")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(repo_root),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("kubevc-*.whl")
    fleet = tmp_path / "fleet"
    source = f"kubevc[gen] @ {wheel.as_uri()}"
    made = run_gen("init", str(fleet), "--kubevc-source", source)
    assert made.exit_code == 0, made.output
    assert yaml.safe_load((fleet / "kubevc-fleet.yaml").read_text())["kubevcSource"] == source
    assert run_gen(*SEOUL, fleet=fleet).exit_code == 0
    assert run_gen(*SERVING_ARM64, fleet=fleet).exit_code == 0  # seoul is arm64
    workflow = yaml.safe_load((fleet / ".github/workflows/fleet.yaml").read_text())
    steps = [s for s in workflow["jobs"]["check"]["steps"] if "run" in s]
    assert [s["name"] for s in steps] == [
        "Install kubevc-gen (the source pinned in kubevc-fleet.yaml)",
        "Install checkov",
        "Generated files match the region specs",
        "Validate",
    ]
    venv = tmp_path / "ci-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))},
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "KUBEVC_CHECKOV": checkov,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    for step in steps:
        if step["name"] == "Install checkov":
            continue  # checkov's own venv stands in (its pins clash with kubevc's)
        proc = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", step["run"]], cwd=fleet, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, f"{step['name']}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert (venv / "bin" / "kubevc-gen").is_file()
