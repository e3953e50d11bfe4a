"""The ``checkov`` policy check: checkov runs over the rendered files, in batches of regions."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

# checkov checks kubevc does not follow, and why.
CHECKOV_SKIPS: dict[str, str] = {
    "CKV_K8S_43": "images are pinned by tag; digests are optional chart values (image.digest)",
    "CKV_K8S_15": "IfNotPresent on purpose: edge links are slow and nodes must start offline",
}


def run_checkov(exe: str, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One checkov run over ``files`` (``<region>/<file>`` -> text), written to a temp folder."""
    with tempfile.TemporaryDirectory(prefix="kubevc-checkov-") as tmp:
        for rel, text in files.items():
            dest = Path(tmp) / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text, encoding="utf-8")
        env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
        return subprocess.run(
            [
                exe,
                "-d",
                tmp,
                "--framework",
                "kubernetes",
                "-o",
                "json",
                "--quiet",
                "--compact",
                "--skip-download",
                "--skip-check",
                ",".join(sorted(CHECKOV_SKIPS)),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
