"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The workplace's shared/ folder (upstream CRDs, upstream chart values, the paper's numbers).

    It sits beside the clone (``../shared``); ``KUBEVC_SHARED`` points elsewhere. Tests that read
    upstream test data skip, saying why, when it is absent.
    """
    path = Path(os.environ.get("KUBEVC_SHARED", REPO_ROOT.parent / "shared"))
    if not (path / "crds").is_dir():
        pytest.skip(f"upstream test data not found at {path} (set KUBEVC_SHARED)")
    return path
