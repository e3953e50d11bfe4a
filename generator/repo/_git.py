"""Git plumbing and the one-mutating-operation helper shared by every ``kubevc-gen`` command.

A mutating command never writes as it goes. It builds a :class:`Change` in memory (the full new
content of every file it touches, ``None`` for deletions, and a commit message), and hands it to
:func:`apply_change`, which

1. validates the change against the repo (options, branch name, nothing to do);
2. with ``dry_run``: prints a unified diff and writes nothing;
3. with ``branch``: creates and switches to a new branch first;
4. writes every file atomically (temp file + rename) and removes deleted files;
5. stages exactly those paths and makes one commit (unless ``no_commit``: the change stays staged);
6. on any failure restores the files, the index and the branch: the work tree and history are
   exactly as before.

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
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from ..errors import GitError, SpecError
from ._yamlio import atomic_write

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

    def run(self, *args: str, check: bool = True, input_text: str | None = None) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            env=self._env(),
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


def _check_rel(root: Path, rel: str) -> Path:
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()) or ".git" in Path(rel).parts:
        raise SpecError(f"refusing to write outside the fleet repo: {rel}")
    return path


def apply_change(
    fleet: HasRoot,
    change: Change,
    options: ChangeOptions,
) -> ChangeResult:
    """Apply ``change`` as one operation (see the module docstring); all or nothing."""
    root: Path = fleet.root
    git = Git(root)
    for rel in change.files:
        _check_rel(root, rel)
    files = change.effective(root)
    if options.branch is not None:
        if not git.valid_branch_name(options.branch):
            raise SpecError(f"--branch {options.branch!r} is not a valid git branch name")
        if git.branch_exists(options.branch):
            raise SpecError(f"--branch {options.branch!r} already exists")
    if not files:
        return ChangeResult([], None, None, "nothing to change: the fleet repo is already up to date")
    diff = unified_diff(root, files)
    if options.dry_run:
        return ChangeResult(sorted(files), None, None, f"dry run: {len(files)} file(s) would change", diff)

    git_dir = git.git_dir()
    backup_dir = Path(tempfile.mkdtemp(prefix="kubevc-gen-"))
    index = git_dir / "index"
    had_index = index.is_file()
    if had_index:
        shutil.copy2(index, backup_dir / "index")
    originals: dict[str, bytes | None] = {
        rel: ((root / rel).read_bytes() if (root / rel).is_file() else None) for rel in files
    }
    created_dirs: list[Path] = []
    orig_branch = git.current_branch()
    orig_head = git.head()
    switched = False
    committed = False
    try:
        if options.branch is not None:
            git.run("switch", "-q", "-c", options.branch)
            switched = True
        for rel, content in files.items():
            path = root / rel
            if content is None:
                path.unlink()
                _prune_empty(path.parent, root)
            else:
                parent = path.parent
                missing: list[Path] = []
                while not parent.exists():
                    missing.append(parent)
                    parent = parent.parent
                created_dirs.extend(reversed(missing))
                atomic_write(path, content)
        paths = sorted(files)
        _git_paths(git, ["add", "-A", "--"], paths)
        commit = None
        staged = set(git.run("diff", "--cached", "--name-only", "--no-renames", "-z").split("\0")) & set(
            paths
        )
        if not staged:
            # The files now equal what is committed (e.g. a hand edit was undone): nothing to commit.
            shutil.rmtree(backup_dir, ignore_errors=True)
            if switched and orig_branch:
                git.run("switch", "-q", orig_branch)
                git.run("branch", "-q", "-D", options.branch or "")
            return ChangeResult(
                sorted(files),
                None,
                None,
                f"restored {len(files)} file(s) to the committed state; no commit needed",
                diff,
            )
        if not options.no_commit:
            _git_paths(git, ["commit", "-q", "--no-verify", "-m", change.message, "--"], paths)
            committed = True
            commit = git.head()
    except BaseException:
        if switched:
            if orig_branch:
                git.run("switch", "-q", orig_branch, check=False)
            elif orig_head:
                git.run("switch", "-q", "--detach", orig_head, check=False)
            git.run("branch", "-q", "-D", options.branch or "", check=False)
        elif committed and orig_head is not None:
            git.run("reset", "-q", "--soft", orig_head, check=False)
        _restore(root, originals, created_dirs)
        if had_index:
            shutil.copy2(backup_dir / "index", index)
        else:
            index.unlink(missing_ok=True)
        shutil.rmtree(backup_dir, ignore_errors=True)
        raise
    shutil.rmtree(backup_dir, ignore_errors=True)
    what = f"committed {commit[:12]}" if commit else "staged, not committed"
    lines = [f"{what}: {change.message} ({len(files)} file(s))"]
    if options.branch is not None:
        lines.append(f"on new branch {options.branch}; to open a pull request:")
        lines.append(f"  git -C {root} push -u origin {options.branch}")
        lines.append(f'  gh pr create --head {options.branch} --title "{change.message}"')
    return ChangeResult(sorted(files), commit, options.branch, "\n".join(lines), diff)


def _git_paths(git: Git, args: list[str], paths: Sequence[str]) -> str:
    # Pass paths via a pathspec file so long lists never hit the argument limit.
    spec = "\0".join(paths) + "\0"
    return git.run(*args[:-1], "--pathspec-from-file=-", "--pathspec-file-nul", input_text=spec)


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _restore(root: Path, originals: Mapping[str, bytes | None], created_dirs: Sequence[Path]) -> None:
    for rel, content in originals.items():
        path = root / rel
        if content is None:
            if path.is_file():
                path.unlink()
        elif not path.is_file() or path.read_bytes() != content:
            atomic_write(path, content)
    for folder in reversed(created_dirs):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


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
