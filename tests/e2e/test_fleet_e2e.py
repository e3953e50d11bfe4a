"""End to end: the installed ``kubevc-gen`` console script on a real fleet repo, with real checkov."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
GEN = BIN / "kubevc-gen"
IDENTITY = {
    "GIT_AUTHOR_NAME": "e2e",
    "GIT_AUTHOR_EMAIL": "e2e@localhost",
    "GIT_COMMITTER_NAME": "e2e",
    "GIT_COMMITTER_EMAIL": "e2e@localhost",
}


def _checkov(repo_root: Path) -> str | None:
    for candidate in (
        os.environ.get("KUBEVC_CHECKOV"),
        str(repo_root / ".tools/checkov/bin/checkov"),
        shutil.which("checkov"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture
def env(repo_root: Path, tmp_path: Path) -> dict[str, str]:
    checkov = _checkov(repo_root)
    if checkov is None:
        pytest.skip("checkov not installed (make tools puts it in .tools/checkov; or set KUBEVC_CHECKOV)")
    cfg = tmp_path / "gitconfig"
    cfg.write_text("")
    return {
        **os.environ,
        "KUBEVC_CHECKOV": checkov,
        "GIT_CONFIG_GLOBAL": str(cfg),
        "GIT_CONFIG_NOSYSTEM": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def gen(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(GEN), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_operator_flow_with_checkov(env: dict[str, str], tmp_path: Path) -> None:
    fleet = tmp_path / "edge-fleet"
    steps = [
        ["init", str(fleet), "--git-url", "https://git.example.com/ops/edge-fleet.git"],
        [
            "--fleet",
            str(fleet),
            "region",
            "add",
            "seoul",
            "--api-endpoint",
            "https://10.8.0.1:6443",
            "--arch",
            "arm64",
            "--nfs-server",
            "10.8.0.10",
            "--nfs-path",
            "/export/models",
        ],
        [
            "--fleet",
            str(fleet),
            "region",
            "add",
            "busan",
            "--api-endpoint",
            "https://10.9.0.1:6443",
            "--distribution",
            "kubeadm",
            "--iscsi-portal",
            "10.9.0.20:3260",
            "--iscsi-iqn",
            "iqn.2026-01.kr.busan:models",
            "--iscsi-lun",
            "0",
        ],
        [
            "--fleet",
            str(fleet),
            "region",
            "set",
            "busan",
            "models=[{name: resnet50, basePath: /models/resnet50, profile: classification}]",
        ],
        # seoul is arm64 and tensorflow/serving amd64 only: validate needs an arm64 serving image
        [
            "--fleet",
            str(fleet),
            "image",
            "add",
            "serving",
            "emacski/tensorflow-serving:2.6.0",
            "--platform",
            "linux/arm64",
        ],
    ]
    for args in steps:
        proc = gen(env, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    log = subprocess.run(["git", "log", "--format=%s"], cwd=fleet, capture_output=True, text=True).stdout
    assert log.splitlines() == [
        "image add serving emacski/tensorflow-serving:2.6.0 (linux/arm64)",
        "region set busan models",
        "region add busan (kubeadm, amd64)",
        "region add seoul (k3s, arm64)",
        "init fleet edge-fleet (kubevc 0.1.0)",
    ]
    # cwd is the default fleet
    assert gen(env, "render", "--check", cwd=fleet).returncode == 0

    clean = gen(env, "validate", cwd=fleet)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no findings" in clean.stdout and "checkov:" in clean.stdout
    assert "checkov on" not in clean.stderr  # progress only on a terminal (tests/generator/test_progress.py)

    # A privileged pod committed by hand: checkov must catch it and name region, file and object.
    (fleet / "apps/seoul/debug.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: debug\n  namespace: kubevc\nspec:\n  containers:\n"
        "    - name: sh\n      image: busybox:1.37.0\n      securityContext:\n        privileged: true\n"
    )
    kust = fleet / "apps/seoul/kustomization.yaml"
    kust.write_text(kust.read_text() + "  - debug.yaml\n")
    dirty = gen(env, "validate", cwd=fleet)
    assert dirty.returncode == 1, dirty.stdout + dirty.stderr
    assert "seoul: checkov: fleet-tree.yaml: Pod.kubevc.debug: CKV_K8S_16" in dirty.stdout, dirty.stdout


@pytest.mark.slow
def test_demo_module_runs(env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kubevc.generator.demo", "--no-checkov"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "demo fleet: OK" in proc.stdout
    assert (
        "region add seoul (k3s, arm64)" in proc.stdout and "region add busan (kubeadm, amd64)" in proc.stdout
    )
