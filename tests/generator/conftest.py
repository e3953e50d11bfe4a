"""Fixtures for the generator tests: real git repos in temporary folders, the real CLI."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kubevc.generator.cli import cli

# the demo's two regions, as `region add` arguments, and its arm64 serving image (seoul is arm64)
from kubevc.generator.demo import BUSAN, SEOUL, SERVING_ARM64


@pytest.fixture(scope="session")
def git_config_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a git with no global or system config (no identity; new repos on main)."""
    cfg = tmp_path_factory.mktemp("gitcfg") / "gitconfig"
    cfg.write_text("[init]\n\tdefaultBranch = main\n")
    return {"GIT_CONFIG_GLOBAL": str(cfg), "GIT_CONFIG_NOSYSTEM": "1"}


@contextmanager
def isolated_git(env: dict[str, str]) -> Iterator[None]:
    """``env`` (:func:`git_config_env`) in ``os.environ`` while a session or module fixture builds
    a fleet in-process, and the environment exactly as before afterwards."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(autouse=True)
def _isolated_git(git_config_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each generator test runs git without the machine's config: proves kubevc-gen works without a
    configured identity. Only for the test (monkeypatch): other packages' tests see the real one."""
    for key, value in git_config_env.items():
        monkeypatch.setenv(key, value)


Gen = Callable[..., Result]


def run_gen(*args: str, fleet: Path | None = None) -> Result:
    full = (["--fleet", str(fleet)] if fleet is not None else []) + list(args)
    return CliRunner().invoke(cli, full, prog_name="kubevc-gen", catch_exceptions=False)


@pytest.fixture(scope="session")
def base_fleet(tmp_path_factory: pytest.TempPathFactory, git_config_env: dict[str, str]) -> Path:
    """A fleet repo with seoul and busan (and an arm64 serving image), built once through the CLI."""
    root = tmp_path_factory.mktemp("base") / "fleet"
    init = ["init", str(root), "--git-url", "https://git.example.com/ops/fleet.git"]
    with isolated_git(git_config_env):
        for args in (init, SEOUL, BUSAN, SERVING_ARM64):
            result = run_gen(*args, fleet=None if args[0] == "init" else root)
            assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def fleet(base_fleet: Path, tmp_path: Path) -> Path:
    """A private copy of the two-region fleet repo (git history included)."""
    dest = tmp_path / "fleet"
    shutil.copytree(base_fleet, dest, symlinks=True)
    return dest


@pytest.fixture
def gen(fleet: Path) -> Gen:
    """Run ``kubevc-gen --fleet <fleet> ARGS`` in-process."""

    def _run(*args: str) -> Result:
        return run_gen(*args, fleet=fleet)

    return _run


TEST_IDENTITY = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@localhost",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@localhost",
}


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` (with an identity for the tests' own commits)."""
    env = {**os.environ, **TEST_IDENTITY}
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, env=env
    ).stdout


@dataclass(frozen=True)
class Snapshot:
    status: str
    head: str
    branches: str
    index: str
    files: dict[str, str]
    dirs: frozenset[str]


def snapshot(root: Path) -> Snapshot:
    """Everything a failed command must leave untouched: work tree, index, HEAD, branches."""
    files: dict[str, str] = {}
    dirs: set[str] = set()
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if rel.parts[0] == ".git":
            continue
        if path.is_file():
            files[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            dirs.add(rel.as_posix())
    return Snapshot(
        status=git(root, "status", "--porcelain", "--untracked-files=all"),
        head=git(root, "rev-parse", "HEAD"),
        branches=git(root, "branch", "--list", "-v"),
        index=git(root, "ls-files", "-s"),
        files=files,
        dirs=frozenset(dirs),
    )
