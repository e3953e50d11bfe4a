"""Fixtures of the chart tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def checkov_bin() -> Path:
    # The Makefile always provides checkov (its own venv): a missing one is a broken setup, not a skip.
    found = os.environ.get("KUBEVC_CHECKOV") or shutil.which("checkov")
    if not found or not Path(found).is_file():
        pytest.fail("checkov not found: set KUBEVC_CHECKOV or put checkov on PATH (make tools installs it)")
    return Path(found)


@pytest.fixture(scope="session")
def promtool_bin() -> Path:
    # Debian's prometheus package ships promtool; `make system-deps` installs it.
    found = os.environ.get("KUBEVC_PROMTOOL") or shutil.which("promtool")
    if not found or not Path(found).is_file():
        pytest.fail(
            "promtool not found: install Debian's prometheus package (make system-deps) "
            "or set KUBEVC_PROMTOOL"
        )
    return Path(found)
