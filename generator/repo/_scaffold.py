"""``kubevc-gen init``: a new fleet repo from the cookiecutter template shipped in the package.

The shared tree to commit with it comes from the caller (``plan``): rendering is a layer above.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, distributions, version
from pathlib import Path

from pydantic import ValidationError

from ..errors import SpecError
from ..spec import FleetConfig, GitSpec, check_name
from ._fleet import Fleet
from ._git import Change, Git
from ._problems import format_validation_error
from ._yamlio import atomic_write

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "fleet"
# Folders that cannot ship as package data under their real (hidden) name.
RENAMES = {"_github": ".github"}


def _kubevc_version() -> str:
    try:
        return version("kubevc")
    except PackageNotFoundError:  # pragma: no cover
        return "0.1.0"


KUBEVC_SOURCE_HELP = "give the fleet CI's kubevc with `init --kubevc-source SPEC`"


def kubevc_source_from(direct_url: str | None) -> str:
    """The pip requirement for the fleet CI from kubevc's PEP 610 ``direct_url.json`` (None: absent).

    A VCS install gives ``kubevc[gen] @ git+URL@COMMIT``; a local folder or file gives its
    ``file://`` URL (machine-local: :func:`is_machine_local`); an archive URL is kept. An install
    from a package index has no ``direct_url.json``: no release of kubevc is published there yet,
    so this refuses to guess (SpecError naming ``--kubevc-source``).
    """
    try:
        info = json.loads(direct_url) if direct_url else {}
    except json.JSONDecodeError:
        info = {}
    url = str(info.get("url", "")) if isinstance(info, dict) else ""
    vcs = (info.get("vcs_info") or {}) if isinstance(info, dict) else {}
    if url and vcs.get("vcs") == "git" and vcs.get("commit_id"):
        return f"kubevc[gen] @ git+{url}@{vcs['commit_id']}"
    if url.startswith(("file://", "https://")) and not any(c in url for c in '"\\\n '):
        return f"kubevc[gen] @ {url}"
    raise SpecError(
        "kubevc-gen was not installed from git, a folder or a wheel URL, so the fleet CI has no "
        f"kubevc source that resolves: {KUBEVC_SOURCE_HELP}"
    )


def default_kubevc_source() -> str:
    """The pip requirement kubevc-gen itself was installed from (see :func:`kubevc_source_from`)."""
    # every kubevc on sys.path: a source checkout's kubevc.egg-info (no direct_url.json) may come
    # first when the working directory is the checkout, before the installed dist-info
    raws = [d.read_text("direct_url.json") for d in distributions(name="kubevc")]
    return kubevc_source_from(next((raw for raw in raws if raw), None))


def is_machine_local(source: str) -> bool:
    """Whether ``source`` names a path on this machine (a CI runner elsewhere cannot install it)."""
    return "@ file://" in source


def init_fleet(
    path: Path,
    plan: Callable[[Fleet], Change],
    *,
    git_url: str,
    branch: str,
    name: str | None = None,
    namespace: str = "kubevc",
    age_recipient: str = "",
    force: bool = False,
    kubevc_source: str | None = None,
) -> str:
    """Scaffold, write the files of ``plan`` (the rendered shared tree), ``git init`` and commit;
    return the commit id.

    On failure everything created is removed again (files that existed before are restored).
    """
    # cookiecutter pulls in jinja2 and more: imported only when a fleet is created (start-up time)
    from cookiecutter.main import cookiecutter

    path = path.resolve()
    fleet_name = name or path.name
    check_name(fleet_name, "fleet name")
    check_name(namespace, "namespace")
    try:
        FleetConfig(git_url=git_url, branch=branch, name=fleet_name, namespace=namespace)
        GitSpec(url=git_url, branch=branch)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, "init options")) from None
    if path.exists() and not path.is_dir():
        raise SpecError(f"{path} exists and is not a folder")
    existed = path.exists()
    if existed and any(path.iterdir()) and not force:
        raise SpecError(f"{path} is not empty; use --force to scaffold into it anyway")
    if (path / "kubevc-fleet.yaml").exists():
        raise SpecError(f"{path} is already a fleet repo")
    if kubevc_source is not None and (not kubevc_source.strip() or any(c in kubevc_source for c in '"\n\\')):
        raise SpecError("--kubevc-source must be one pip requirement (no quotes, backslashes or newlines)")
    kubevc_source = kubevc_source or default_kubevc_source()
    probe = subprocess.run(["git", "check-ref-format", "--branch", branch], capture_output=True, check=False)
    if probe.returncode != 0:
        raise SpecError(f"--branch {branch!r} is not a valid git branch name")

    had_git = (path / ".git").exists()
    created: list[Path] = []
    backups: dict[Path, bytes] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="kubevc-init-") as tmp:
            out = Path(
                cookiecutter(
                    str(TEMPLATE_DIR),
                    no_input=True,
                    output_dir=tmp,
                    extra_context={
                        "fleet_name": fleet_name,
                        "fleet_slug": "fleet",
                        "git_url": git_url,
                        "branch": branch,
                        "namespace": namespace,
                        "age_recipient": age_recipient,
                        "kubevc_version": _kubevc_version(),
                        "kubevc_source": kubevc_source,
                    },
                )
            )
            for old, new in RENAMES.items():
                if (out / old).exists():
                    (out / old).rename(out / new)
            if not existed:
                path.mkdir(parents=True)
                created.append(path)
            for src in sorted(out.rglob("*")):
                if src.is_dir():
                    continue
                dest = path / src.relative_to(out)
                if dest.exists():
                    backups[dest] = dest.read_bytes()
                else:
                    created.append(dest)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
        change = plan(Fleet(path))
        for rel, content in sorted(change.files.items()):
            if content is None:
                continue
            dest = path / rel
            if dest.exists():
                backups[dest] = dest.read_bytes()
            else:
                created.append(dest)
            atomic_write(dest, content)
        git = Git(path)
        if not had_git:
            subprocess.run(["git", "init", "-q", "-b", branch, str(path)], check=True, capture_output=True)
        # Commit exactly what init wrote: files already in a --force'd folder stay the operator's.
        ours = "\0".join(sorted({p.relative_to(path).as_posix() for p in [*created, *backups] if p != path}))
        git.run("add", "--pathspec-from-file=-", "--pathspec-file-nul", input_text=ours + "\0")
        git.run(
            "commit",
            "-q",
            "--no-verify",
            "-m",
            f"init fleet {fleet_name} (kubevc {_kubevc_version()})",
            "--pathspec-from-file=-",
            "--pathspec-file-nul",
            input_text=ours + "\0",
        )
        head = git.head()
        assert head is not None
        return head
    except BaseException:
        if not existed:
            shutil.rmtree(path, ignore_errors=True)
        else:
            if not had_git:
                shutil.rmtree(path / ".git", ignore_errors=True)
            for dest in reversed(created):
                if dest.is_file():
                    dest.unlink()
            for dest, content in backups.items():
                dest.write_bytes(content)
            for folder in sorted({p.parent for p in created}, key=lambda p: len(p.parts), reverse=True):
                while folder != path and folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
                    folder = folder.parent
        raise
