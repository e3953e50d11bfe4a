"""init: cookiecutter scaffold, git init, first commit; refuses non-empty folders; cleans up on failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import git, run_gen


def test_init_scaffolds_and_commits(tmp_path: Path) -> None:
    root = tmp_path / "edge"
    result = run_gen(
        "init",
        str(root),
        "--git-url",
        "https://git.example.com/ops/edge.git",
        "--branch",
        "prod",
        "--age-recipient",
        # a real age public key: init checks it
        "age173ru7ky2zhadl79u7k0ev42has45n7648cd3qemj8c33spyj4v7qj4sd0k",
    )
    assert result.exit_code == 0, result.output
    for rel in (
        ".sops.yaml",
        ".gitignore",
        "README.md",
        ".github/workflows/fleet.yaml",
        "kubevc-fleet.yaml",
        "charts/VERSIONS.yaml",
        "apps/base/kubevc-serving/helmrelease.yaml",
    ):
        assert (root / rel).is_file(), rel
    workflow = (root / ".github/workflows/fleet.yaml").read_text()
    assert "kubevc-gen render --check" in workflow and "kubevc-gen validate" in workflow
    assert "age173ru7ky2" in (root / ".sops.yaml").read_text()
    assert "https://git.example.com/ops/edge.git" in (root / "README.md").read_text()
    assert git(root, "rev-parse", "--abbrev-ref", "HEAD").strip() == "prod"
    assert git(root, "status", "--porcelain") == ""
    assert git(root, "rev-list", "--count", "HEAD").strip() == "1"
    assert run_gen("render", "--check", fleet=root).exit_code == 0


def test_init_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    root = tmp_path / "busy"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    result = run_gen("init", str(root))
    assert result.exit_code != 0 and "not empty" in result.output
    assert [p.name for p in root.iterdir()] == ["notes.txt"]
    forced = run_gen("init", str(root), "--force")
    assert forced.exit_code == 0, forced.output
    assert (root / "notes.txt").read_text() == "mine" and (root / "kubevc-fleet.yaml").is_file()
    assert git(root, "status", "--porcelain") == "?? notes.txt\n"  # the operator's file is not committed


def test_init_cleans_up_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubevc.generator import render

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("render exploded")

    monkeypatch.setattr(render, "plan_render", boom)
    root = tmp_path / "new"
    with pytest.raises(RuntimeError):
        run_gen("init", str(root))
    assert not root.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("keep")
    with pytest.raises(RuntimeError):
        run_gen("init", str(existing), "--force")
    assert sorted(p.name for p in existing.iterdir()) == ["keep.txt"]


def test_template_undefined_variable_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubevc.generator.repo import _scaffold as scaffold  # where init_fleet reads the template

    template = tmp_path / "template"
    shutil.copytree(scaffold.TEMPLATE_DIR, template)
    (template / "{{cookiecutter.fleet_slug}}" / "broken.md").write_text(
        "{{ cookiecutter.no_such_variable }}\n"
    )
    monkeypatch.setattr(scaffold, "TEMPLATE_DIR", template)
    root = tmp_path / "fleet"
    with pytest.raises(Exception, match="no_such_variable"):
        run_gen("init", str(root))
    assert not root.exists()


def test_init_rejects_bad_options(tmp_path: Path) -> None:
    for args, needle in (
        (["--git-url", "nope"], "git url"),
        (["--branch", "a..b"], "branch"),
        (["--name", "Bad_Name"], "DNS-1123"),
    ):
        result = run_gen("init", str(tmp_path / "x"), *args)
        assert result.exit_code != 0 and needle in result.output, result.output
        assert not (tmp_path / "x").exists()
