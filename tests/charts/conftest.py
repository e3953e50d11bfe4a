"""Fixtures of the chart tests: the external tools they run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

TOOLS_DIR = Path(__file__).resolve().parents[2] / ".tools"


def find_tool(env_var: str, command: str, tools_venv_path: str) -> Path | None:
    """The tool named by env_var, else on PATH, else in the venv `make tools` creates."""
    for candidate in (os.environ.get(env_var), shutil.which(command), str(TOOLS_DIR / tools_venv_path)):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def checkov_bin() -> Path:
    # The Makefile always provides checkov (its own venv): a missing one is a broken setup, not a skip.
    found = find_tool("KUBEVC_CHECKOV", "checkov", "checkov/bin/checkov")
    if found is None:
        pytest.fail("checkov not found: set KUBEVC_CHECKOV or put checkov on PATH (make tools installs it)")
    return found


@pytest.fixture(scope="session")
def promtool_bin() -> Path:
    # Debian's prometheus package ships promtool; `make system-deps` installs it.
    found = find_tool("KUBEVC_PROMTOOL", "promtool", "prometheus/promtool")
    if found is None:
        pytest.fail("promtool not found: set KUBEVC_PROMTOOL or install Debian prometheus (make system-deps)")
    return found


@pytest.fixture(scope="session")
def tf_python() -> Path:
    # tensorflow-serving-api lives in its own venv (see docs/architecture.md); `make tools` creates it.
    found = find_tool("KUBEVC_TF_PYTHON", "kubevc-no-such-command", "tf/bin/python")
    if found is None:
        pytest.fail(
            "no python with tensorflow-serving-api: set KUBEVC_TF_PYTHON (make tools creates .tools/tf)"
        )
    return found
