"""``apply_change``: the one mutating path of every ``kubevc-gen`` command (see :mod:`._git`).

It holds the fleet lock (:mod:`._lock`) and writes through the journal (:mod:`._journal`), so a
command killed at any point leaves the old commit or the new one, and the next command rolls the
rest back. With ``--branch`` the commit is built beside the work tree (a temporary index, blobs
written straight into git) and only the new branch's ref moves: the work tree, the index and the
checked-out branch stay exactly as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import SpecError
from ._git import Change, ChangeOptions, ChangeResult, Git, HasRoot, unified_diff
from ._journal import Journal, recover
from ._lock import fleet_lock
from ._yamlio import atomic_write

_ZERO = "0" * 40


def _check_rel(root: Path, rel: str) -> Path:
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()) or ".git" in Path(rel).parts:
        raise SpecError(f"refusing to write outside the fleet repo: {rel}")
    return path


def _dirty(git: Git, paths: Sequence[str]) -> list[str]:
    """Those of ``paths`` whose work-tree state differs from HEAD (changed, new or deleted)."""
    if not paths:
        return []
    # `git status` takes no pathspec file: list everything (cheap) and keep ours
    out = git.run("status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")
    wanted = set(paths)
    return sorted({entry[3:] for entry in out.split("\0") if len(entry) > 3} & wanted)


def check_fleet_branch(root: Path, configured: str) -> None:
    """Refuse (:class:`SpecError`) to change a fleet checked out on a branch other than its own.

    ``configured`` is ``branch:`` in ``kubevc-fleet.yaml`` (what Flux reconciles); a command on
    another branch would commit where no region looks.
    """
    current = Git(root).current_branch()
    if current != configured:
        where = f"branch {current!r}" if current else "a detached HEAD"
        raise SpecError(
            f"the fleet repo is on {where}, not the fleet's branch {configured!r} (kubevc-fleet.yaml); "
            f"`git -C {root} switch {configured}` first, or pass --allow-other-branch"
        )


def apply_change(fleet: HasRoot, change: Change, options: ChangeOptions) -> ChangeResult:
    """Apply ``change`` as one operation (see :mod:`._git`'s docstring); all or nothing."""
    root: Path = fleet.root
    for rel in [*change.files, *change.include]:
        _check_rel(root, rel)
    with fleet_lock(root, change.message.splitlines()[0] if change.message else "kubevc-gen"):
        note = recover(root)
        result = _apply_locked(root, change, options)
        if change.render_state is not None and not options.dry_run and options.branch is None:
            change.render_state.save(root)  # the work tree now holds this render
    if note:
        result.summary = f"{note}\n{result.summary}"
    return result


def _apply_locked(root: Path, change: Change, options: ChangeOptions) -> ChangeResult:
    git = Git(root)
    files = change.effective(root)
    included = _dirty(git, [p for p in change.include if p not in files])
    if options.branch is not None:
        if not git.valid_branch_name(options.branch):
            raise SpecError(f"--branch {options.branch!r} is not a valid git branch name")
        if git.branch_exists(options.branch):
            raise SpecError(f"--branch {options.branch!r} already exists")
    if not files and not included:
        return ChangeResult([], None, None, "nothing to change: the fleet repo is already up to date")
    diff = unified_diff(root, files)
    if options.dry_run:
        more = f" (and {len(included)} edited spec file(s) committed as they are)" if included else ""
        return ChangeResult(
            sorted(files), None, None, f"dry run: {len(files)} file(s) would change{more}", diff
        )
    head = git.head()
    branch = git.current_branch()
    ref = f"refs/heads/{branch}" if branch else ("HEAD" if head else None)
    changed = sorted({*files, *included})
    journal = Journal.begin(
        root,
        [] if options.branch is not None else sorted(files),
        command=change.message.splitlines()[0] if change.message else "kubevc-gen",
        head=head,
        ref=ref,
        new_branch=options.branch,
    )
    try:
        if options.branch is not None:
            commit = _commit_beside(git, journal, files, included, change.message, head, options.branch)
            if commit is None:
                journal.finish()
                return ChangeResult(
                    changed, None, None, "nothing to change: HEAD already has these files", diff
                )
        else:
            for rel, content in files.items():
                path = root / rel
                if content is None:
                    path.unlink()
                    _prune_empty(path.parent, root)
                else:
                    atomic_write(path, content)
                journal.step()
            tracked = _known_paths(git, changed)
            _git_paths(git, ["add", "-A", "--"], tracked)
            journal.step()
            staged = set(git.run("diff", "--cached", "--name-only", "--no-renames", "-z").split("\0")) & set(
                tracked
            )
            if not staged:
                # The files now equal what is committed (e.g. a hand edit was undone): nothing to commit.
                journal.finish()
                return ChangeResult(
                    changed,
                    None,
                    None,
                    f"restored {len(changed)} file(s) to the committed state; no commit needed",
                    diff,
                )
            commit = None
            if not options.no_commit:
                _git_paths(git, ["commit", "-q", "--no-verify", "-m", change.message, "--"], tracked)
                journal.step()
                commit = git.head()
        journal.finish()
    except BaseException:
        journal.rollback()
        raise
    what = f"committed {commit[:12]}" if commit else "staged, not committed"
    lines = [f"{what}: {change.message} ({len(changed)} file(s))"]
    if included:
        lines.append(f"with the spec edits it rendered from: {', '.join(included)}")
    if options.branch is not None:
        stay = f"you stay on {branch}" if branch else "the work tree is unchanged"
        lines.append(f"on new branch {options.branch} ({stay}); to open a pull request:")
        lines.append(f"  git -C {root} push -u origin {options.branch}")
        lines.append(f'  gh pr create --head {options.branch} --title "{change.message}"')
    return ChangeResult(changed, commit, options.branch, "\n".join(lines), diff)


def _commit_beside(
    git: Git,
    journal: Journal,
    files: dict[str, bytes | None],
    included: Sequence[str],
    message: str,
    head: str | None,
    branch: str,
) -> str | None:
    """Commit HEAD + ``files`` + the work tree's ``included`` paths on new ``branch``; touch nothing else."""
    root = git.root
    blobs = journal.folder / "blobs"
    blobs.mkdir()
    sources: list[tuple[str, Path]] = []
    removed: list[str] = []
    for number, (rel, content) in enumerate(sorted(files.items())):
        if content is None:
            removed.append(rel)
            continue
        blob = blobs / str(number)
        blob.write_bytes(content)
        sources.append((rel, blob))
    for rel in included:
        if (root / rel).is_file():
            sources.append((rel, root / rel))
        else:
            removed.append(rel)
    env = {"GIT_INDEX_FILE": str(journal.folder / "branch-index")}
    if head is not None:
        git.run("read-tree", head, extra_env=env)
    else:
        git.run("read-tree", "--empty", extra_env=env)
    shas = git.run(
        "hash-object", "-w", "--no-filters", "--stdin-paths", input_text="".join(f"{p}\n" for _, p in sources)
    ).split()
    modes = {
        line.split("\t", 1)[1]: line.split()[0]
        for line in git.run("ls-files", "-s", "-z", extra_env=env).split("\0")
        if "\t" in line
    }
    info = [f"{modes.get(rel, '100644')} {sha}\t{rel}\n" for (rel, _), sha in zip(sources, shas, strict=True)]
    info += [f"0 {_ZERO}\t{rel}\n" for rel in removed if rel in modes]
    git.run("update-index", "--index-info", input_text="".join(info), extra_env=env)
    tree = git.run("write-tree", extra_env=env).strip()
    journal.step()
    if head is not None and git.run("rev-parse", f"{head}^{{tree}}").strip() == tree:
        return None
    parents = ["-p", head] if head is not None else []
    commit = git.run("commit-tree", tree, *parents, "-m", message).strip()
    journal.step()
    git.run(
        "update-ref", "-m", f"kubevc-gen: {message.splitlines()[0]}", f"refs/heads/{branch}", commit, _ZERO
    )
    journal.step()
    return commit


def _known_paths(git: Git, paths: Sequence[str]) -> list[str]:
    """Those of ``paths`` on disk or in the index: ``git add`` fails on a pathspec matching neither."""
    if not paths:
        return []
    in_index = set(git.run("ls-files", "-z").split("\0"))  # `ls-files` takes no pathspec file
    return [p for p in paths if p in in_index or (git.root / p).exists()]


def _git_paths(git: Git, args: list[str], paths: Sequence[str]) -> str:
    # Pass paths via a pathspec file so long lists never hit the argument limit.
    spec = "\0".join(paths) + "\0"
    return git.run(*args[:-1], "--pathspec-from-file=-", "--pathspec-file-nul", input_text=spec)


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
