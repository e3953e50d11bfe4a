"""Shared by the end-to-end tests: ``kubevc-gen`` run in-process, and a new one-region fleet repo
made through it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kubevc.generator.cli import cli


def gen(fleet: Path | None, *args: str) -> str:
    """``kubevc-gen [--fleet FLEET] ARGS`` in-process; its output, once it exited with 0."""
    full = (["--fleet", str(fleet)] if fleet else []) + list(args)
    result = CliRunner().invoke(cli, full, prog_name="kubevc-gen", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fleet_region: str) -> Path:
    """A fleet repo with one region, through the CLI (no global git config). The region's name is
    the ``fleet_region`` fixture, which each test module using this one defines."""
    cfg = tmp_path / "gitconfig"
    cfg.write_text("[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = tmp_path / "fleet"
    gen(None, "init", str(root))
    gen(root, "region", "add", fleet_region, "--api-endpoint", "https://10.9.0.1:6443",
        "--nfs-server", "10.9.0.20", "--nfs-path", "/export/models")  # fmt: skip
    return root
