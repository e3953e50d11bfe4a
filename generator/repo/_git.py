"""Git plumbing and the one-mutating-operation helper shared by every ``kubevc-gen`` command.

A mutating command never writes as it goes. It builds a :class:`Change` in memory (the full new
content of every file it touches, ``None`` for deletions, and a commit message), and hands it to
:func:`apply_change`, which

1. holds the fleet lock (``.git/kubevc-gen/lock``) and first rolls back what a killed command left;
2. validates the change against the repo (options, branch name, nothing to do);
3. with ``dry_run``: prints a unified diff and writes nothing;
4. with ``branch``: commits on a new branch beside the work tree (which stays on its branch);
5. else records an undo journal, writes every file atomically (temp file + rename), removes
   deleted files, stages exactly those paths and makes one commit (unless ``no_commit``);
6. on any failure, or at the next command after a crash, restores the files, the index and the
   ref: the work tree and history are exactly as before.

It lives in :mod:`._apply` (with :mod:`._lock` and :mod:`._journal`).

``kubevc.generator.workflows`` (``node add``...) uses it like this::

    from kubevc.generator.render import plan_with_regions
    from kubevc.generator.repo import ChangeOptions, apply_change
    change = plan_with_regions(fleet, [updated_spec], message="node add seoul 10.0.0.5")
    result = apply_change(fleet, change, ChangeOptions(branch=None, no_commit=False, dry_run=False))
    click.echo(result.summary)

It also answers where a Flux artifact revision stands against the fleet repo's commit
(:func:`compare_revision`, :func:`fleet_commit`) for ``kubevc-gen status``.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from ..errors import GitError
from ._render_state import RenderState

GIT_ENV_DEFAULTS = {
    "GIT_AUTHOR_NAME": "kubevc-gen",
    "GIT_AUTHOR_EMAIL": "kubevc-gen@localhost",
    "GIT_COMMITTER_NAME": "kubevc-gen",
    "GIT_COMMITTER_EMAIL": "kubevc-gen@localhost",
}


SyncState = Literal[
    "in-sync", "behind", "ahead", "diverged", "unknown-revision", "no-artifact", "not-checked"
]


class HasRoot(Protocol):
    """A fleet repo (anything with a ``root`` folder): what :func:`apply_change` writes to."""

    @property
    def root(self) -> Path: ...


class Git:
    """Thin wrapper over the ``git`` command line for one work tree."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Use the operator's identity when configured; fall back to a neutral one.
        probe = subprocess.run(
            ["git", "config", "user.email"], cwd=self.root, capture_output=True, text=True, check=False
        )
        if probe.returncode != 0 or not probe.stdout.strip():
            for key, value in GIT_ENV_DEFAULTS.items():
                env.setdefault(key, value)
        return env

    def run(
        self,
        *args: str,
        check: bool = True,
        input_text: str | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            env={**self._env(), **(extra_env or {})},
            input=input_text,
            check=False,
        )
        if check and proc.returncode != 0:
            raise GitError(f"git {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def head(self) -> str | None:
        out = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=self.root, capture_output=True, text=True
        )
        return out.stdout.strip() or None

    def current_branch(self) -> str:
        return self.run("symbolic-ref", "--short", "-q", "HEAD", check=False).strip()

    def branch_exists(self, name: str) -> bool:
        proc = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", f"refs/heads/{name}"], cwd=self.root, capture_output=True
        )
        return proc.returncode == 0

    def valid_branch_name(self, name: str) -> bool:
        proc = subprocess.run(
            ["git", "check-ref-format", "--branch", name], cwd=self.root, capture_output=True
        )
        return proc.returncode == 0

    def git_dir(self) -> Path:
        return Path(self.run("rev-parse", "--absolute-git-dir").strip())

    def log_oneline(self, n: int = 20) -> str:
        return self.run("log", "--oneline", f"-{n}", check=False)

    def query(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a read-only git command (no identity needed); the caller reads its return code."""
        return subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True, check=False)


@dataclass
class Change:
    """Everything a mutating command will do: new file contents (None = delete) and a message."""

    message: str
    files: dict[str, bytes | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Paths committed as they are on disk (``render`` commits the hand-edited specs it rendered from).
    include: list[str] = field(default_factory=list)
    # What the rendered files in the change come from, recorded once it is in the work tree
    # (:class:`RenderState`); None leaves the recorded state as it is.
    render_state: RenderState | None = None

    def effective(self, root: Path) -> dict[str, bytes | None]:
        """Only the entries that differ from what is on disk."""
        out: dict[str, bytes | None] = {}
        for rel, content in sorted(self.files.items()):
            path = root / rel
            current = path.read_bytes() if path.is_file() else None
            if current != content:
                out[rel] = content
        return out


@dataclass(frozen=True)
class ChangeOptions:
    """The git-related options every mutating command accepts."""

    branch: str | None = None
    no_commit: bool = False
    dry_run: bool = False


@dataclass
class ChangeResult:
    changed: list[str]
    commit: str | None
    branch: str | None
    summary: str
    diff: str = ""


def unified_diff(root: Path, files: Mapping[str, bytes | None]) -> str:
    chunks: list[str] = []
    for rel, content in sorted(files.items()):
        path = root / rel
        old = path.read_bytes() if path.is_file() else b""
        new = content or b""
        try:
            old_lines = old.decode().splitlines(keepends=True)
            new_lines = new.decode().splitlines(keepends=True)
        except UnicodeDecodeError:
            chunks.append(f"Binary file {rel} differs\n")
            continue
        chunks.extend(
            difflib.unified_diff(
                old_lines,
                new_lines,
                fromfile=f"a/{rel}" if path.is_file() else "/dev/null",
                tofile=f"b/{rel}" if content is not None else "/dev/null",
            )
        )
        if chunks and not chunks[-1].endswith("\n"):
            chunks[-1] += "\n\\ No newline at end of file\n"
    return "".join(chunks)


# --------------------------------------------------------------------------- revisions


def parse_revision(revision: str | None) -> str | None:
    """The commit sha of a Flux artifact revision: ``main@sha1:<sha>`` (v1) or ``main/<sha>`` (old)."""
    if not revision:
        return None
    match = re.search(r"(?:@sha1:|@sha256:|/)([0-9a-f]{40}|[0-9a-f]{64})$", revision)
    if match:
        return match.group(1)
    return revision if re.fullmatch(r"[0-9a-f]{40}", revision) else None


def compare_revision(root: Path, head: str | None, revision: str | None) -> tuple[SyncState, int | None]:
    """Where the region's artifact revision stands against the fleet repo's commit ``head``."""
    sha = parse_revision(revision)
    if sha is None:
        return "no-artifact", None
    if head is None:
        return "not-checked", None
    if sha == head:
        return "in-sync", 0
    git = Git(root)
    if git.query("cat-file", "-e", f"{sha}^{{commit}}").returncode != 0:
        return "unknown-revision", None
    if git.query("merge-base", "--is-ancestor", sha, head).returncode == 0:
        count = git.query("rev-list", "--count", f"{sha}..{head}").stdout.strip()
        return "behind", int(count) if count.isdigit() else None
    if git.query("merge-base", "--is-ancestor", head, sha).returncode == 0:
        count = git.query("rev-list", "--count", f"{head}..{sha}").stdout.strip()
        return "ahead", int(count) if count.isdigit() else None
    return "diverged", None


def fleet_commit(root: Path, branch: str | None = None) -> str | None:
    """The commit to compare regions with: the local ``branch`` when it exists, else HEAD."""
    git = Git(root)
    for ref in ([f"refs/heads/{branch}"] if branch else []) + ["HEAD"]:
        out = git.query("rev-parse", "--verify", "-q", f"{ref}^{{commit}}").stdout.strip()
        if out:
            return out
    return None
