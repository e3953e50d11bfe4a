"""The README's path on a fresh fleet, in order, with the real sops and age (issue 15's "done when").

init -> region add -> a bootstrap-shaped commit -> secret set -> hub set with credentials ->
render --check clean -> validate green -> every clusters/<r> and clusters/hub builds with
kubectl kustomize, every SOPS file decrypts, every Flux object is strictly valid against the CRDs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from kubevc.generator.demo import BUSAN, SEOUL, SERVING_ARM64
from kubevc.generator.validate import kubectl_path

from .bootstrap_commit import bootstrap_commit
from .conftest import git, run_gen
from .test_flux_crds import _errors, _flux_objects, crd_validators  # noqa: F401  (fixture)
from .test_secrets import PLAIN, assert_no_plaintext, decrypt, sops_exe


def test_readme_walkthrough(tmp_path: Path, shared_dir: Path, crd_validators: Any) -> None:  # noqa: F811
    sops_exe()
    key = tmp_path / "keys" / "fleet.agekey"
    key.parent.mkdir()
    root = tmp_path / "fleet"
    outputs = []

    def gen(*args: str) -> None:
        result = run_gen(*args, fleet=None if args[0] == "init" else root)
        assert result.exit_code == 0, f"{args}: {result.output}"
        outputs.append(result.output)

    gen("init", str(root), "--git-url", "https://git.example.com/ops/fleet.git", "--age-key-file", str(key))
    gen(*SEOUL)
    gen(*SERVING_ARM64)  # seoul is arm64: tensorflow/serving is amd64 only
    gen(*BUSAN)
    bootstrap_commit(root, "seoul", shared_dir)
    gen("secret", "set", "seoul", "gateway-token", "--from-literal", f"token={PLAIN}")
    password = tmp_path / "rw-password"
    password.write_text(PLAIN)
    gen("hub", "set", "--api-endpoint", "https://10.7.0.1:6443", "--remote-write-username", "edge",
        "--remote-write-password-file", str(password))  # fmt: skip
    gen("render", "--check")
    gen("validate", "--no-checkov")
    assert git(root, "status", "--porcelain") == ""
    for cluster in ("seoul", "busan", "hub"):
        proc = subprocess.run(
            [kubectl_path(), "kustomize", str(root / "clusters" / cluster)], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
    sops_files = sorted(p.relative_to(root).as_posix() for p in root.rglob("?*.sops.yaml"))
    assert sops_files == [
        "apps/seoul/secrets/gateway-token.sops.yaml",
        "infrastructure/agents/busan/remote-write.sops.yaml",
        "infrastructure/agents/seoul/remote-write.sops.yaml",
    ]
    for rel in sops_files:
        assert decrypt(root, rel, key)["kind"] == "Secret"
    for rel, obj in _flux_objects(root):
        if rel.endswith("gotk-components.yaml"):
            continue
        assert _errors(crd_validators, obj) == [], f"{rel}: {obj['kind']}/{obj['metadata']['name']}"
    apps = yaml.safe_load((root / "clusters/seoul/apps.yaml").read_text())
    assert apps["spec"]["decryption"]["secretRef"]["name"] == "sops-age"
    assert_no_plaintext(root, *outputs)
