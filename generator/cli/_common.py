"""What every ``kubevc-gen`` command shares, defined once: context settings, exit codes, error
handling, the git options of mutating commands, the region filter and the change report."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import FleetBusyError, GitError, KubevcError, SpecError, YamlError
from ..repo import ChangeOptions, ChangeResult, Fleet, check_fleet_branch, fleet_lock, recover, select_regions
from ..spec import Selector, parse_selector

F = TypeVar("F", bound=Callable[..., Any])

# The exit codes of every command (README "Exit codes"); 2 is click's own usage error.
EXIT_FINDINGS = 1  # validate/render --check found something; a check or a git operation failed
EXIT_USAGE = 2  # click: unknown option, missing argument, bad choice
EXIT_UNREACHABLE = 3  # a region's API could not be reached
EXIT_DEGRADED = 4  # a region answered but is not healthy (degraded, out of sync)
EXIT_BAD_INPUT = 5  # bad input or configuration: invalid spec/value, not a fleet repo, wrong branch
EXIT_BUSY = 6  # another kubevc-gen holds the fleet lock

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def fail(problems: list[str], code: int = EXIT_BAD_INPUT) -> None:
    for line in problems:
        click.secho(f"error: {line}", fg="red", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn known errors into a clear message and a non-zero exit code (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            fail(exc.problems)
        except YamlError as exc:
            fail([str(exc)])
        except GitError as exc:
            fail([str(exc)], EXIT_FINDINGS)
        except FleetBusyError as exc:
            fail([str(exc)], EXIT_BUSY)
        return None

    return wrapper  # type: ignore[return-value]


def _command_line(ctx: click.Context) -> str:
    arguments = [
        str(ctx.params.get(p.name))
        for p in ctx.command.params
        if isinstance(p, click.Argument) and p.name and ctx.params.get(p.name) not in (None, ())
    ]
    return " ".join([ctx.command_path, *arguments])[:200]


def _guarded(func: F) -> F:
    """Run a mutating command under the fleet lock, after crash recovery and the branch check."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wait_lock: float = kwargs.pop("wait_lock")
        allow_other_branch: bool = kwargs.pop("allow_other_branch")
        ctx = click.get_current_context()
        try:
            fleet = get_fleet(ctx)
        except KubevcError:
            return func(*args, **kwargs)  # the command itself reports the missing fleet
        with fleet_lock(fleet.root, _command_line(ctx), wait_lock):
            note = recover(fleet.root)
            if note:
                click.echo(note, err=True)
            read_only = kwargs.get("dry_run") or kwargs.get("check")  # `render --check` in CI checkouts
            if not read_only and not allow_other_branch:
                check_fleet_branch(fleet.root, fleet.config.branch)
            return func(*args, **kwargs)

    return handle_errors(wrapper)  # type: ignore[return-value]


def dry_run_options(func: F) -> F:
    """``--dry-run``, ``--wait-lock`` and ``--allow-other-branch`` for a mutating command that commits
    on the fleet's configured branch only (``rollout``: its state must be where the next step looks)."""
    func = _guarded(func)
    func = click.option(
        "--allow-other-branch",
        is_flag=True,
        help="Run even when the checked-out branch is not the fleet's configured branch.",
    )(func)
    func = click.option(
        "--wait-lock",
        type=click.FloatRange(min=0),
        default=0,
        metavar="SECONDS",
        help="When another kubevc-gen holds the fleet lock, wait up to SECONDS (default: fail at once).",
    )(func)
    func = click.option("--dry-run", is_flag=True, help="Print the diff and write nothing.")(func)
    return func


def git_options(func: F) -> F:
    """``--branch``, ``--no-commit``, ``--dry-run``, ``--wait-lock`` and ``--allow-other-branch``
    for a mutating command, which runs holding the fleet lock on the fleet's configured branch."""
    func = dry_run_options(func)
    func = click.option("--no-commit", is_flag=True, help="Write and stage the change, do not commit.")(func)
    func = click.option(
        "--branch",
        "branch",
        metavar="NAME",
        default=None,
        help="Commit on a new branch NAME (for a pull request).",
    )(func)
    return func


def change_options(branch: str | None, no_commit: bool, dry_run: bool) -> ChangeOptions:
    if dry_run and (branch or no_commit):
        raise SpecError("--dry-run cannot be combined with --branch or --no-commit")
    return ChangeOptions(branch=branch, no_commit=no_commit, dry_run=dry_run)


def report_change(result: ChangeResult) -> None:
    if result.diff and not result.commit and result.summary.startswith("dry run"):
        click.echo(result.diff, nl=False)
    click.echo(result.summary)


def get_fleet(ctx: click.Context) -> Fleet:
    """The fleet repo named by the global ``--fleet`` option (default: the current folder)."""
    root: Path = ctx.find_root().obj["fleet_path"]
    return Fleet.find(root)


def progress(message: str) -> None:
    """A progress line on stderr (stdout stays the command's result)."""
    click.echo(f"… {message}", err=True)


def region_filter(help_text: str, metavar: str | None = "R") -> Callable[[F], F]:
    """``--region R`` (repeatable) narrowing a command to some regions; ``help_text`` says how."""

    def decorate(func: F) -> F:
        return click.option("--region", "regions", multiple=True, metavar=metavar, help=help_text)(func)

    return decorate


# `promote`, `rollback` and `canary` act on every region that has the model unless narrowed.
only_regions_option = region_filter("Only region R (repeatable; default: all).")


def store_options(func: F) -> F:
    """``--store`` and ``--via-host``: where the model store is."""
    func = click.option(
        "--via-host",
        metavar="HOST",
        default=None,
        help="Reach the store on this host (the NFS server) over SSH with pyinfra.",
    )(func)
    func = click.option(
        "--store",
        metavar="PATH",
        default=None,
        envvar="KUBEVC_MODEL_STORE",
        help="The store root: a local/mounted path, or with --via-host a path on HOST "
        "(default there: the region's storage.nfs.path). Env KUBEVC_MODEL_STORE.",
    )(func)
    return func


def skip_store_check_option(help_text: str) -> Callable[[F], F]:
    """``--skip-store-check``: a command that points a label at a version does not ask the store
    whether it is published (``help_text`` says which check it skips)."""
    return click.option("--skip-store-check", is_flag=True, help=help_text)


def file_option(*decls: str, help_text: str, exists: bool = False, as_path: bool = True) -> Callable[[F], F]:
    """An option naming a file (not a folder), default none: a :class:`~pathlib.Path` (the str
    when not ``as_path``); with ``exists`` click refuses a file that is not there."""
    kind = click.Path(exists=exists, dir_okay=False, path_type=Path if as_path else None)
    return click.option(*decls, type=kind, default=None, help=help_text)


def kubeconfig_option_for(help_text: str, as_path: bool = False) -> Callable[[F], F]:
    """``--kubeconfig FILE`` (a :class:`~pathlib.Path` when ``as_path``, else a str)."""
    return file_option("--kubeconfig", help_text=help_text, as_path=as_path)


# the live commands (status, reconcile, suspend, resume) read one context per region
kubeconfig_option = kubeconfig_option_for(
    "Operator kubeconfig with one context per region (default: $KUBECONFIG, every file of "
    "a a:b list, or ~/.kube/config)."
)


def _parse_selector_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Selector | None:
    if value is None:
        return None
    try:
        return parse_selector(value)
    except SpecError as exc:
        raise click.BadParameter(exc.problems[0].removeprefix(f"selector {value!r}: "), ctx, param) from None


def selector_option(func: F) -> F:
    """``--selector/-l`` on every command that acts on several regions (one parser: spec.parse_selector)."""
    return click.option(
        "--selector",
        "-l",
        "selector",
        metavar="SELECTOR",
        default=None,
        callback=_parse_selector_option,
        help="Only the regions whose labels match (kubectl syntax: 'tier=canary,site!=lab,"
        "zone in (a,b),!legacy'); matching no region is an error.",
    )(func)


def context_option(func: F) -> F:
    """``--context``: the kubeconfig context to use instead of the region's kubeContext."""
    return click.option(
        "--context",
        "context",
        metavar="NAME",
        default=None,
        help="kubeconfig context to use instead of the region's kubeContext (one region only).",
    )(func)


def selected_regions(fleet: Fleet, regions: Sequence[str], selector: Selector | None) -> tuple[str, ...]:
    """The regions named, or those ``selector`` matches (both at once is refused)."""
    if selector is None:
        return tuple(regions)
    if regions:
        raise SpecError("name regions or give --selector, not both")
    return tuple(select_regions(fleet, selector))
