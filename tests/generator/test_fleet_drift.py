"""The committed example fleet (fleet/) is what kubevc-gen renders today (`make fleet` refreshes it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .conftest import git, run_gen


def test_committed_fleet_has_no_drift(repo_root: Path, tmp_path: Path) -> None:
    src = repo_root / "fleet"
    assert (src / "kubevc-fleet.yaml").is_file(), "fleet/ is missing: run `make fleet`"
    root = tmp_path / "fleet"
    shutil.copytree(src, root)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "committed fleet")
    result = run_gen("render", "--check", fleet=root)
    assert result.exit_code == 0, "fleet/ drifted from the generator; run `make fleet`\n" + result.output
    regions = sorted(p.name for p in (root / "regions").iterdir() if p.is_dir())
    assert regions == ["busan", "seoul"]
    seoul = (root / "regions/seoul/region.yaml").read_text()
    busan = (root / "regions/busan/region.yaml").read_text()
    assert "distribution: k3s" in seoul and "arm64" in seoul and "nfs:" in seoul
    assert "distribution: kubeadm" in busan and "amd64" in busan and "iscsi:" in busan
