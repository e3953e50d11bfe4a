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
        # --no-compile (pip reads the variable of a --no-X option inverted: "0" turns X off): half
        # the install's CPU; Python compiles what the steps import when they import it
        "PIP_NO_COMPILE": "0",
    }
    for step in steps:
        if step["name"] == "Install checkov":
            continue  # checkov's own venv stands in (its pins clash with kubevc's)
        proc = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", step["run"]], cwd=fleet, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, f"{step['name']}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert (venv / "bin" / "kubevc-gen").is_file()


def test_the_default_source_is_where_kubevc_came_from() -> None:
    """PEP 610 ``direct_url.json``: git -> URL@commit, a folder or wheel -> its file:// URL
    (machine-local), an index install (no file) -> refused, naming ``--kubevc-source``."""
    from kubevc.generator.errors import SpecError
    from kubevc.generator.repo import is_machine_local, kubevc_source_from

    git = '{"url": "https://github.com/kubevc/kubevc.git", "vcs_info": {"vcs": "git", "commit_id": "abc123"}}'
    assert kubevc_source_from(git) == "kubevc[gen] @ git+https://github.com/kubevc/kubevc.git@abc123"
    assert not is_machine_local(kubevc_source_from(git))
    folder = kubevc_source_from('{"url": "file:///src/kubevc", "dir_info": {"editable": true}}')
    assert folder == "kubevc[gen] @ file:///src/kubevc" and is_machine_local(folder)
    for missing in (None, "", "not json", '{"url": "ftp://x"}'):
        with pytest.raises(SpecError) as refused:
            kubevc_source_from(missing)
        assert "init --kubevc-source SPEC" in str(refused.value) and "\n" not in str(refused.value)


def test_init_flags_a_machine_local_source(tmp_path: Path) -> None:
    made = run_gen("init", str(tmp_path / "fleet"))  # this checkout is installed editable: a folder
    assert made.exit_code == 0, made.output
    source = yaml.safe_load((tmp_path / "fleet/kubevc-fleet.yaml").read_text())["kubevcSource"]
    assert source.startswith("kubevc[gen] @ file://")
    assert f"note: the fleet CI installs kubevc from {source}, a path on this machine only" in made.output
