"""``kubevc-gen rollout start|next|status|abort``: one change, region step by region step.

The plan (waves, step sizes, soak) is ``rollout:`` in ``kubevc-fleet.yaml``; the state of a
rollout is ``rollouts/<id>.yaml`` in the fleet repo. The logic is
:mod:`kubevc.generator.workflows` (``start_rollout``, ``rollout_gate``, ``advance_rollout``,
``abort_rollout``); live state comes from :mod:`kubevc.generator.live` as for ``status``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
from rich.table import Table

from .. import workflows
from ..live import RegionStatus, collect_fleet
from ..models import LABELS
from ..repo import Fleet, fleet_commit, load_rollouts, running_rollout
from ..spec import Rollout, format_seconds
from ._common import (
    CONTEXT_SETTINGS,
    EXIT_BAD_INPUT,
    change_options,
    dry_run_options,
    fail,
    get_fleet,
    handle_errors,
    kubeconfig_option,
    progress,
    report_change,
    skip_store_check_option,
    store_options,
)
from ._output import document, emit, output_option
from ._status import VERDICT_STYLE, _console, region_targets, timeout_option


def clock() -> datetime:
    """Now, in UTC: the time every rollout step is stamped with (tests replace it)."""
    return datetime.now(UTC)


def _now() -> datetime:
    return clock()  # looked up at each call, so a replaced clock is seen


def _live(
    fleet: Fleet, names: Sequence[str], kubeconfig: str | None, timeout: float
) -> dict[str, RegionStatus]:
    """The live status of regions ``names``, read in parallel as ``kubevc-gen status`` does."""
    if not names:
        return {}
    targets = region_targets(fleet, list(dict.fromkeys(names)))
    found = collect_fleet(targets, kubeconfig, timeout, fleet.root, fleet_head=fleet_commit(fleet.root))
    return {r.region: r for r in found.regions}


@click.group(context_settings=CONTEXT_SETTINGS)
def rollout() -> None:
    """Staged rollouts: one change, wave by wave, each step gated on the last one's health.

    The plan is `rollout:` in kubevc-fleet.yaml: ordered waves (a label selector each, kubectl
    syntax, matching region labels and the computed kubevc.io/ ones), an optional step size per
    wave (maxRegions: N or P%) and a soak time. `start` commits the change for the first step's
    regions only; `next` goes on when every region of the step before is ok in live status and its
    soak time since that step's commit is over; `abort` puts back what the done steps changed.
    The rollout's state is rollouts/<id>.yaml in the fleet repo, committed with each step.

    \b
    Example (kubevc-fleet.yaml):
      rollout:
        soak: 10m
        waves:
          - selector: tier=canary
          - selector: tier=edge
            maxRegions: 25%
    \b
      kubevc-gen rollout start model resnet50 3 --store /mnt/models
      kubevc-gen rollout status
      kubevc-gen rollout next
      kubevc-gen rollout abort
    """


@rollout.command("start", context_settings=CONTEXT_SETTINGS)
@click.argument("change", nargs=-1, metavar="CHANGE...")
@click.option(
    "--label",
    type=click.Choice(LABELS),
    default="stable",
    show_default=True,
    help="With `model NAME VERSION`: the version label promoted (as `model promote --label`).",
)
@store_options
@skip_store_check_option("Do not check that the version is published (store unreachable).")
@dry_run_options
@click.pass_context
@handle_errors
def rollout_start(
    ctx: click.Context,
    change: tuple[str, ...],
    label: str,
    store: str | None,
    via_host: str | None,
    skip_store_check: bool,
    dry_run: bool,
) -> None:
    """Start a rollout of CHANGE: commit it for the first step's regions only.

    CHANGE is `model NAME VERSION` (as `model promote NAME --version VERSION --label stable`, in
    the regions that have the model) or one or more `values.CHART.KEY=VALUE` (as `region set`,
    checked against the chart's schema). The waves of the fleet's plan are resolved to regions
    now and recorded in rollouts/<id>.yaml (a wave matching no region is an error); regions no
    wave matches are not touched. Refused while another rollout runs. One commit.

    \b
    Example:
      kubevc-gen rollout start model resnet50 3 --store /mnt/models
      kubevc-gen rollout start model resnet50 4 --label canary --skip-store-check
      kubevc-gen rollout start values.kubevc-serving.resources.limits.cpu=2 --dry-run
    """
    options = change_options(None, False, dry_run)
    fleet = get_fleet(ctx)
    started, result = workflows.start_rollout(
        fleet,
        change,
        label=label,
        now=_now,
        store=store,
        via_host=via_host,
        skip_store_check=skip_store_check,
        options=options,
        progress=progress,
    )
    for number, step in enumerate(started.steps, start=1):
        click.echo(
            f"step {number}/{len(started.steps)}: wave {step.wave} ({step.wave_name or step.selector}), "
            f"soak {format_seconds(step.soak_seconds)}: {', '.join(step.regions)}"
        )
    if started.untouched:
        click.echo(f"not in any wave (unchanged): {', '.join(started.untouched)}")
    report_change(result)
    if not dry_run:
        click.echo(
            "next: `kubevc-gen rollout status`, then `kubevc-gen rollout next` once step 1 is ok and soaked"
        )


@rollout.command("next", context_settings=CONTEXT_SETTINGS)
@timeout_option("10s", "Per-region deadline of the health check (10s, 500ms, 1m).")
@kubeconfig_option
@dry_run_options
@click.pass_context
@handle_errors
def rollout_next(ctx: click.Context, timeout: float, kubeconfig: str | None, dry_run: bool) -> None:
    """Go on to the next step when the step before is healthy and soaked (one commit).

    Every region of the last done step must be ok in live status (as `kubevc-gen status`: Flux
    in sync with the fleet repo, everything Ready) and the step's soak time since its commit must
    be over. After the last step, `next` checks it the same way and marks the rollout done.

    \b
    Exit codes: 0 advanced | 4 a region degraded or out of sync, or still soaking |
    3 a region unreachable | 5 no rollout running (the refusal is one line naming the regions
    and the soak time left).
    \b
    Example:
      kubevc-gen rollout next
      kubevc-gen rollout next --dry-run --timeout 5s
    """
    options = change_options(None, False, dry_run)
    fleet = get_fleet(ctx)
    current = workflows.require_running(fleet)
    done = current.done_steps
    statuses = _live(fleet, done[-1].regions if done else [], kubeconfig, timeout)
    gate = workflows.rollout_gate(current, statuses, _now())
    if not gate.passed:
        fail([f"rollout next: {gate.reason}"], gate.exit_code)
    progress(gate.reason)
    report_change(workflows.advance_rollout(fleet, current, _now, options))


@rollout.command("abort", context_settings=CONTEXT_SETTINGS)
@dry_run_options
@click.pass_context
@handle_errors
def rollout_abort(ctx: click.Context, dry_run: bool) -> None:
    """Stop the running rollout and put back what its done steps changed (one commit).

    The regions of the done steps get the model entry or the values they had before the rollout
    (a region removed since is skipped); rollouts/<id>.yaml is marked aborted. No health check:
    aborting is how a bad step is undone.

    \b
    Example:
      kubevc-gen rollout abort --dry-run
      kubevc-gen rollout abort
    """
    options = change_options(None, False, dry_run)
    fleet = get_fleet(ctx)
    _, result = workflows.abort_rollout(fleet, _now, options)
    report_change(result)


def _step_state(rollout: Rollout, index: int) -> str:
    step = rollout.steps[index]
    if step.done:
        return "done"
    if rollout.phase == "running" and step is rollout.next_step:
        return "next"
    return "pending" if rollout.phase == "running" else "skipped"


def _document(
    rollout: Rollout, statuses: dict[str, RegionStatus], gate: workflows.Gate | None
) -> dict[str, Any]:
    steps = []
    for index, step in enumerate(rollout.steps):
        regions = []
        for name in step.regions:
            status = statuses.get(name)
            regions.append(
                {
                    "name": name,
                    "verdict": status.verdict if status is not None else None,
                    "reason": status.reason if status is not None else None,
                }
            )
        steps.append(
            {
                "step": index + 1,
                "wave": step.wave,
                "waveName": step.wave_name,
                "selector": step.selector,
                "state": _step_state(rollout, index),
                "committedAt": step.committed_at.isoformat() if step.committed_at else None,
                "soakSeconds": step.soak_seconds,
                "regions": regions,
            }
        )
    return document(
        "Rollout",
        id=rollout.id,
        file=rollout.file,
        phase=rollout.phase,
        change=rollout.change.to_yaml_data(),
        startedAt=rollout.started_at.isoformat(),
        finishedAt=rollout.finished_at.isoformat() if rollout.finished_at else None,
        steps=steps,
        untouched=list(rollout.untouched),
        gate=None
        if gate is None
        else {
            "passed": gate.passed,
            "exitCode": gate.exit_code,
            "reason": gate.reason,
            "soakLeftSeconds": gate.soak_left,
        },
    )


@rollout.command("status", context_settings=CONTEXT_SETTINGS)
@click.argument("rollout_id", required=False, metavar="[ID]")
@output_option
@click.option("--no-live", is_flag=True, help="Do not read the regions' live status.")
@timeout_option("10s", "Per-region deadline (10s, 500ms, 1m).")
@kubeconfig_option
@click.pass_context
@handle_errors
def rollout_status(
    ctx: click.Context,
    rollout_id: str | None,
    output: str,
    no_live: bool,
    timeout: float,
    kubeconfig: str | None,
) -> None:
    """Each step of the running rollout (or the latest, or ID) with its regions' live status.

    A step is done (committed), next (what `rollout next` commits) or pending; each region shows
    its live verdict (ok | degraded | out-of-sync | unreachable, as `kubevc-gen status`), and the
    gate says whether `rollout next` would go on now. Exit 0 (the gate is in the output).

    \b
    -o json|yaml (schemaVersion 1; -o name prints rollout/ID):
      {"schemaVersion": 1, "kind": "Rollout", "id", "file", "phase": running|done|aborted,
       "change": {"kind": model-promote|values, "model", "version", "label", "assignments"},
       "startedAt", "finishedAt", "untouched": [REGION],
       "steps": [{"step", "wave", "waveName", "selector", "state": done|next|pending|skipped,
                  "committedAt", "soakSeconds", "regions": [{"name", "verdict", "reason"}]}],
       "gate": {"passed", "exitCode", "reason", "soakLeftSeconds"} | null}
    \b
    Example:
      kubevc-gen rollout status
      kubevc-gen rollout status -o json | jq '.steps[] | select(.state == "done") | .regions'
    """
    fleet = get_fleet(ctx)
    chosen: Rollout | None
    if rollout_id is not None:
        chosen = next((r for r in load_rollouts(fleet) if r.id == rollout_id), None)
        if chosen is None:
            known = ", ".join(r.id for r in load_rollouts(fleet)) or "none"
            fail([f"no rollout {rollout_id!r} (rollouts: {known})"], EXIT_BAD_INPUT)
    else:
        rollouts = load_rollouts(fleet)
        chosen = running_rollout(fleet) or (rollouts[-1] if rollouts else None)
    if chosen is None:
        click.echo("no rollouts yet: kubevc-gen rollout start CHANGE (README 'Staged rollouts')")
        return
    names = [] if no_live else [r for s in chosen.steps for r in s.regions]
    statuses = _live(fleet, names, kubeconfig, timeout)
    gate = None
    if chosen.phase == "running" and not no_live:
        gate = workflows.rollout_gate(chosen, statuses, _now())

    def table() -> None:
        title = f"rollout {chosen.id} ({chosen.phase}): {chosen.change.describe()}"
        grid = Table(title=title, title_justify="left")
        for col in ("step", "wave", "selector", "state", "committed", "soak", "regions"):
            grid.add_column(col, no_wrap=col != "regions")
        for index, step in enumerate(chosen.steps):
            cells = []
            for name in step.regions:
                status = statuses.get(name)
                cells.append(
                    f"{name} [{VERDICT_STYLE[status.verdict]}]{status.verdict}[/]"
                    if status is not None
                    else name
                )
            grid.add_row(
                f"{index + 1}/{len(chosen.steps)}",
                str(step.wave) + (f" {step.wave_name}" if step.wave_name else ""),
                step.selector,
                _step_state(chosen, index),
                step.committed_at.strftime("%Y-%m-%d %H:%M:%SZ") if step.committed_at else "-",
                format_seconds(step.soak_seconds),
                ", ".join(cells),
            )
        console = _console()
        console.print(grid)
        if chosen.untouched:
            console.print(f"not in any wave (unchanged): {', '.join(chosen.untouched)}", markup=False)
        if gate is not None:
            verdict = "rollout next would go on" if gate.passed else "rollout next would wait"
            console.print(f"{verdict}: {gate.reason}", markup=False)

    emit(output, _document(chosen, statuses, gate), [f"rollout/{chosen.id}"], table)
    sys.stdout.flush()
