"""``kubevc-gen status``, ``reconcile``, ``suspend`` and ``resume``: the fleet's live side.

``status`` and ``reconcile`` only read the fleet repo; ``suspend``/``resume`` change it through
:func:`kubevc.generator.workflows.set_suspended` (one commit) and then patch the region when
reachable. The collection and verdict logic lives in :mod:`kubevc.generator.live`.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .. import workflows
from ..errors import RegionFault, SpecError
from ..live import (
    EXIT_CODES,
    FleetStatus,
    ReconcileEvent,
    RegionStatus,
    RegionTarget,
    collect_fleet,
    connect,
    load_client,
    reconcile_region,
    set_live_suspend,
    timeout_reason,
    worst_exit_code,
)
from ..repo import Fleet, fleet_commit, parse_revision
from ..spec import RegionSpec, Selector, check_name
from ._common import (
    CONTEXT_SETTINGS,
    F,
    change_options,
    context_option,
    get_fleet,
    git_options,
    handle_errors,
    kubeconfig_option,
    report_change,
    selected_regions,
    selector_option,
)
from ._output import emit, output_option

EXIT_UNREACHABLE = EXIT_CODES["unreachable"]
EXIT_NOT_OK = EXIT_CODES["degraded"]


def parse_duration(ctx: click.Context | None, param: click.Parameter | None, value: Any) -> float:
    """``10s``, ``500ms``, ``2m``, ``1h`` or plain seconds (a click option callback)."""
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*", str(value))
    if not match or float(match.group(1)) <= 0:
        raise click.BadParameter(f"{value!r} is not a duration such as 10s, 500ms or 2m", ctx, param)
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    return float(match.group(1)) * scale


def timeout_option(default: str, help_text: str) -> Callable[[F], F]:
    """``--timeout DURATION`` (10s, 500ms, 2m...) in seconds, with ``default``."""
    return click.option(
        "--timeout",
        metavar="DURATION",
        callback=parse_duration,
        default=default,
        show_default=True,
        help=help_text,
    )


def _target(fleet: Fleet, name: str) -> tuple[RegionTarget, RegionSpec | None]:
    """A region's target, or one carrying the fault to report on its row (unknown, invalid...)."""
    try:
        check_name(name)
    except SpecError:
        return RegionTarget(name=name, context=None, fault="invalid region name (not a DNS-1123 label)"), None
    if name not in fleet.region_names():
        return RegionTarget(
            name=name, context=None, fault=f"unknown region (no regions/{name}/region.yaml)"
        ), None
    try:
        spec = fleet.load(name)
    except SpecError as exc:
        return RegionTarget(name=name, context=None, fault=f"invalid region spec: {exc.problems[0]}"), None
    target = RegionTarget(
        name=name,
        context=spec.effective_kube_context,
        namespace=fleet.config.namespace,
        models=tuple(m.name for m in spec.models),
        suspended=spec.suspended,
        compare_with=fleet_commit(fleet.root, spec.git.branch),
    )
    return target, spec


def _targets(fleet: Fleet, names: Sequence[str]) -> list[RegionTarget]:
    chosen = list(dict.fromkeys(names)) or fleet.region_names()
    return [_target(fleet, n)[0] for n in chosen]


def with_context(targets: list[RegionTarget], context: str | None) -> list[RegionTarget]:
    """``targets`` with ``--context`` in place of the region's kubeContext (one region only)."""
    if context is None:
        return targets
    if len(targets) != 1:
        raise SpecError(f"--context {context} applies to one region; name exactly one REGION")
    return [dataclasses.replace(targets[0], context=context)]


def _console() -> Console:
    tty = sys.stdout.isatty()
    # no colour and a fixed width when not a terminal (pipes, CI logs, click's test runner)
    return Console(width=None if tty else 200, no_color=not tty, highlight=False, soft_wrap=False)


VERDICT_STYLE = {"ok": "green", "degraded": "yellow", "out-of-sync": "magenta", "unreachable": "red bold"}


def _source_cell(region: RegionStatus) -> str:
    src = region.source
    if src is None:
        return "-"
    short = (parse_revision(src.revision) or src.revision or "?")[:7]
    if src.sync == "in-sync":
        return f"in sync {short}"
    if src.sync in ("behind", "ahead"):
        return f"{src.sync} {src.behind_by} ({short})"
    return f"{src.sync} {short}".strip()


def _ready_cell(items: Sequence[Any]) -> str:
    if not items:
        return "-"
    ready = sum(1 for i in items if i.ready == "True")
    text = f"{ready}/{len(items)} ready"
    suspended = sum(1 for i in items if i.suspended)
    return text + (f", {suspended} suspended" if suspended else "")


def _nodes_cell(region: RegionStatus) -> str:
    nodes = region.nodes
    if nodes is None:
        return "-"
    arch = ", ".join(f"{a} {v['ready']}/{v['total']}" for a, v in sorted(nodes.by_arch.items()))
    devices = "".join(f", {a.resource.split('/')[-1]} {a.used}/{a.allocatable}" for a in region.accelerators)
    return f"{nodes.ready}/{nodes.total}" + (f" ({arch})" if arch else "") + devices


def _serving_cell(region: RegionStatus) -> str:
    parts = [
        f"{d.component} {d.ready}/{d.desired}"
        for d in region.deployments
        if d.component in ("serving", "gateway")
    ]
    return ", ".join(parts) or "-"


def print_table(status: FleetStatus, console: Console) -> None:
    table = Table(title=f"fleet status (timeout {status.timeout_s:g}s)", title_justify="left")
    for col in (
        "region",
        "verdict",
        "api",
        "nodes",
        "flux source",
        "kustomizations",
        "helmreleases",
        "serving",
    ):
        table.add_column(col, no_wrap=True)
    table.add_column("reason", overflow="fold", ratio=1, min_width=30)
    for r in status.regions:
        api = (
            f"{r.api.version or '?'} {r.api.latency_ms:.0f}ms"
            if r.api.reachable and r.api.latency_ms is not None
            else "-"
        )
        region = r.region + (" (suspended)" if r.spec_suspended else "")
        table.add_row(
            region,
            f"[{VERDICT_STYLE[r.verdict]}]{r.verdict}[/]",
            api,
            _nodes_cell(r),
            _source_cell(r),
            _ready_cell(r.kustomizations),
            _ready_cell(r.helm_releases),
            _serving_cell(r),
            r.reason or "",
        )
    console.print(table)
    for r in status.regions:
        if r.verdict in ("degraded", "out-of-sync"):  # the reason cell shows only the first one
            for problem in r.problems:
                console.print(f"  {r.region}: {problem}", markup=False)
    console.print(status.summary_line(), markup=False)


@click.command("status", context_settings=CONTEXT_SETTINGS)
@click.argument("regions", nargs=-1, metavar="[REGION]...")
@selector_option
@output_option
@timeout_option("10s", "Per-region deadline (10s, 500ms, 1m).")
@kubeconfig_option
@context_option
@click.pass_context
@handle_errors
def status(
    ctx: click.Context,
    regions: tuple[str, ...],
    selector: Selector | None,
    output: str,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
) -> None:
    """Live state of every region (or the REGIONs named), read in parallel through their kube contexts.

    Per region: API reachable/version/latency; nodes ready by architecture and pressure
    conditions; the flux-system GitRepository revision against the fleet repo's local commit of
    the region's git branch, HEAD when that branch is not local (in sync / behind N / unknown
    revision); every Kustomization and HelmRelease Ready condition
    (suspended ones marked); ready replicas of the serving and gateway Deployments; a verdict.

    \b
    Verdicts and exit code (worst region wins):
      ok 0 | degraded 4 | out-of-sync 4 | unreachable 3   (bad input, e.g. no fleet repo: 5)
    unreachable = no answer within --timeout, connection/TLS error, kube context missing,
    401 or 403; Flux not installed (no CRDs) = degraded.

    \b
    --output json|yaml (schemaVersion 1, stable; new keys may be added, none removed or renamed;
    -o name prints region/NAME):
      {"schemaVersion": 1, "kind": "FleetStatus", "fleetHead": SHA, "timeoutSeconds": 10.0,
       "regions": [{"region", "context", "verdict", "reason", "problems": [...],
         "api": {"reachable", "version", "latencyMs"},
         "nodes": {"ready", "total", "byArch": {ARCH: {"ready", "total"}}, "problems"} | null,
         "source": {"name", "revision", "ready", "reason", "message", "sync", "behindBy",
                    "suspended"} | null,   sync: in-sync|behind|ahead|diverged|unknown-revision|no-artifact
         "kustomizations" / "helmReleases": [{"kind", "namespace", "name", "ready", "reason",
                    "message", "suspended", "lastAppliedRevision"}],
         "deployments": [{"name", "component", "ready", "desired"}], "models": [...],
         "specSuspended", "elapsedMs",
         "accelerators": [{"resource", "capacity", "allocatable", "used", "nodes": [...]}]}],
                    resource: nvidia.com/gpu|kubevc.io/coral-tpu|kubevc.io/hailo; used = limits
                    of running pods; [] when no node has one (the table adds them to nodes)
       "summary": {"total", "ok", "degraded", "outOfSync", "unreachable", "exitCode"}}

    \b
    Example:
      kubevc-gen status
      kubevc-gen status seoul busan --timeout 5s
      kubevc-gen status -o json | jq -r '.regions[] | select(.verdict != "ok") | .region'
    """
    fleet = get_fleet(ctx)
    targets = with_context(_targets(fleet, selected_regions(fleet, regions, selector)), context)
    result = collect_fleet(targets, kubeconfig, timeout, fleet.root, fleet_head=fleet_commit(fleet.root))

    def table() -> None:
        if not targets:
            click.echo("no regions yet: kubevc-gen region add NAME ...")
        print_table(result, _console())

    doc = result.to_json()
    doc = {"schemaVersion": doc.pop("schemaVersion", 1), "kind": "FleetStatus", **doc}
    emit(output, doc, [f"region/{r.region}" for r in result.regions], table)
    sys.exit(result.exit_code)


# --------------------------------------------------------------------------- reconcile


def _event_line(event: ReconcileEvent) -> str:
    words = {
        "requested": "reconcile requested",
        "ready": "Ready",
        "failed": "FAILED",
        "skipped": "skipped",
        "timeout": "not Ready before the timeout",
    }
    detail = f" ({event.detail})" if event.detail else ""
    return f"{event.region}: {event.kind} {event.name}: {words[event.state]}{detail}"


@click.command("reconcile", context_settings=CONTEXT_SETTINGS)
@click.argument("regions", nargs=-1, metavar="REGION...")
@click.option("--all-regions", is_flag=True, help="Every region of the fleet.")
@selector_option
@click.option("--wait", is_flag=True, help="Follow until every object is Ready (or --timeout).")
@timeout_option("5m", "Bound on the whole command (requests and, with --wait, the wait).")
@kubeconfig_option
@context_option
@click.pass_context
@handle_errors
def reconcile(
    ctx: click.Context,
    regions: tuple[str, ...],
    all_regions: bool,
    selector: Selector | None,
    wait: bool,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
) -> None:
    """Ask Flux in REGION to reconcile now, like `flux reconcile`.

    Sets the reconcile.fluxcd.io/requestedAt annotation (a merge-patch) on the region's
    flux-system GitRepository, then on each of its Kustomizations (suspended ones are skipped).
    Exit 0 when all were requested (and, with --wait, became Ready), 4 when one failed or timed
    out, 3 when a region could not be reached. --timeout bounds the whole command.

    \b
    Example:
      kubevc-gen reconcile seoul --wait
      kubevc-gen reconcile --all-regions
    """
    fleet = get_fleet(ctx)
    if all_regions and (regions or selector is not None):
        raise SpecError("give REGION names, --selector or --all-regions, only one of them")
    regions = selected_regions(fleet, regions, selector)
    if not all_regions and not regions:
        raise SpecError("name a REGION (or use --selector or --all-regions)")
    targets = with_context(_targets(fleet, regions), context)
    lock = threading.Lock()
    codes: dict[str, int] = {}
    request_timeout = min(timeout, 10.0)
    # --timeout bounds the whole command: the requests and the wait end at the deadline; a call in
    # flight then has at most `grace` (one request, at most 2 s) to report its verdict
    grace = min(2.0, request_timeout)
    load_client()
    deadline = time.monotonic() + timeout

    closed = threading.Event()

    def emit(event: ReconcileEvent) -> None:
        with lock:
            if not closed.is_set():
                click.echo(_event_line(event))

    def work(target: RegionTarget) -> None:
        try:
            if target.fault is not None or target.context is None:
                raise RegionFault(target.fault or "no kube context")
            api = connect(kubeconfig, target.context, request_timeout)
            wait_budget = max(0.0, deadline - time.monotonic())
            ok = reconcile_region(api, target.name, wait, wait_budget, emit)
            code = 0 if ok else EXIT_NOT_OK
        except RegionFault as fault:
            with lock:
                if not closed.is_set():
                    click.echo(f"{target.name}: not reconciled: {fault.reason}")
            code = EXIT_UNREACHABLE if fault.unreachable else EXIT_NOT_OK
        with lock:
            if not closed.is_set():
                codes[target.name] = code

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline + grace - time.monotonic()))
    with lock:
        for target in targets:
            if target.name not in codes:
                click.echo(f"{target.name}: not reconciled: {timeout_reason(timeout, None)}")
                codes[target.name] = EXIT_UNREACHABLE
        closed.set()  # a thread still running past the deadline prints nothing more
    sys.exit(worst_exit_code(codes.values()))


# --------------------------------------------------------------------------- suspend / resume


def _patch_live(spec: RegionSpec, suspend: bool, kubeconfig: str | None, timeout: float) -> None:
    """Merge-patch spec.suspend on ``spec``'s live Kustomizations; an unreachable region is a warning."""
    context = spec.effective_kube_context
    try:
        patched = set_live_suspend(connect(kubeconfig, context, timeout), suspend)
    except RegionFault as fault:
        click.secho(
            f"live: {spec.name} not changed ({fault.reason}); Flux applies the git change once the "
            "commit is pushed and the region is reachable",
            fg="yellow",
            err=True,
        )
        return
    done = "suspended" if suspend else "resumed"
    names = ", ".join(patched) or "no Kustomizations found"
    click.echo(f"live: {done} on context {context}: {names}")


def _suspend_command(suspend: bool) -> click.Command:
    verb = "suspend" if suspend else "resume"

    doc = (
        f"{verb.capitalize()} Flux in REGION (maintenance window), in git and on the live cluster.\n\n"
        + ("Records `suspended: true` in" if suspend else "Removes `suspended: true` from")
        + " regions/REGION/region.yaml and re-renders "
        "spec.suspend on the region's Kustomizations (one commit; the flux-system sync stays live so "
        f"the change reaches the region), then merge-patches spec.suspend={str(suspend).lower()} on "
        "the live Kustomizations when the region is reachable (--no-live: git only; with --branch or "
        "--no-commit the live side waits: run the command again after the merge).\n\n"
        "With --selector/-l instead of REGION: every region whose labels match, in one commit.\n\n"
        "\b\nExample:\n"
        f"  kubevc-gen {verb} seoul\n"
        f"  kubevc-gen {verb} seoul --no-live --branch {verb}-seoul\n"
        f"  kubevc-gen {verb} -l tier=edge --no-live\n"
    )

    @click.command(verb, context_settings=CONTEXT_SETTINGS, help=doc)
    @click.argument("region", required=False)
    @selector_option
    @click.option("--no-live", is_flag=True, help="Only change git; do not patch the live cluster.")
    @timeout_option("10s", "Live API deadline.")
    @kubeconfig_option
    @git_options
    @click.pass_context
    @handle_errors
    def command(
        ctx: click.Context,
        region: str | None,
        selector: Selector | None,
        no_live: bool,
        timeout: float,
        kubeconfig: str | None,
        branch: str | None,
        no_commit: bool,
        dry_run: bool,
    ) -> None:
        options = change_options(branch, no_commit, dry_run)
        fleet = get_fleet(ctx)
        if region is None and selector is None:
            raise SpecError(f"name a REGION to {verb} (or give --selector)")
        if region is not None:
            check_name(region)
        names = selected_regions(fleet, (region,) if region else (), selector)
        if region is not None:  # one region: its own commit message, as before selectors
            spec, result = workflows.set_suspended(fleet, region, suspend, options)
            specs = [spec]
        else:
            specs, result = workflows.set_suspended_regions(fleet, names, suspend, options)
        report_change(result)
        if dry_run:
            click.echo("dry run: the live cluster was not changed")
            return
        if no_live:
            click.echo(f"--no-live: Flux {verb}s the region once the commit is pushed")
            return
        if branch or no_commit:
            # the change is not on the branch Flux reconciles yet: the live side waits for the merge
            where = f"on branch {branch}" if branch else "staged, not committed"
            again = region if region is not None else f"-l '{selector.text if selector else ''}'"
            click.echo(
                f"live: not changed (the git change is {where}); run `kubevc-gen {verb} {again}` after"
            )
            return
        for spec in specs:
            _patch_live(spec, suspend, kubeconfig, timeout)

    return command


suspend = _suspend_command(True)
resume = _suspend_command(False)


def region_targets(fleet: Fleet, names: Sequence[str]) -> list[RegionTarget]:
    """What ``status`` reads for the regions ``names`` (every region when empty): ``rollout`` too."""
    return _targets(fleet, names)
