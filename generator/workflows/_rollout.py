"""Staged rollouts (``kubevc-gen rollout start|next|abort``): one change, region step by step.

``start`` applies the change to the first step's regions only (the others keep their state: a
model's version labels and a region's ``values`` are per region already) and writes
``rollouts/<id>.yaml`` in the same commit. ``next`` applies it to the next step once the previous
step passed the gate (:func:`rollout_gate`); after the last step it marks the rollout done.
``abort`` puts back what the done steps changed, one commit. Every commit goes through
:func:`kubevc.generator.repo.apply_change` (journal, lock, ``--dry-run``).

Soak semantics: a step's soak time counts from its commit (``committedAt`` in the state file, set
from the injected clock). ``next`` passes when every region of the previous step is ``ok`` in live
status *now* and the soak time since that commit is over; status is not recorded between calls,
so nothing but git holds the rollout's state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import SpecError
from ..live import EXIT_CODES, RegionStatus, worst_exit_code
from ..models import check_published, find_model, model_in, promoted, replace_model, revalidate
from ..render import plan_with_regions
from ..repo import (
    Change,
    ChangeOptions,
    ChangeResult,
    Fleet,
    apply_assignments,
    apply_change,
    check_value_overrides,
    dump_roundtrip,
    load_rollouts,
    load_roundtrip,
    merge_into,
    parse_region,
    region_path,
    rollout_to_yaml,
    running_rollout,
)
from ..spec import (
    RegionBefore,
    RegionSpec,
    Rollout,
    RolloutChange,
    RolloutStep,
    format_seconds,
    parse_change,
    region_labels,
    resolve_key,
    resolve_steps,
)

Clock = Callable[[], datetime]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Gate:
    """Whether ``rollout next`` may go on: exit code 0 (yes), 4 (not ok yet or soaking), 3 (unreachable)."""

    passed: bool
    exit_code: int
    reason: str
    soak_left: float


# --------------------------------------------------------------------------- the change per region


@dataclass
class _Applied:
    spec: RegionSpec
    text: str | None  # the exact new region.yaml text (values: edited round-trip), None: re-serialise
    before: RegionBefore
    what: str


def _value_at(data: Any, path: Sequence[str | int]) -> Any:
    for part in path:
        in_map = isinstance(data, dict) and isinstance(part, str) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if not (in_map or in_list):
            return None
        data = data[part]
    return data


def _apply(fleet: Fleet, spec: RegionSpec, change: RolloutChange) -> _Applied:
    """``change`` applied to region ``spec`` (nothing written), with what it was before."""
    if change.kind == "model-promote":
        assert change.model is not None and change.version is not None and change.label is not None
        model = model_in(spec, change.model)
        new_model, what = promoted(model, change.version, change.label, spec.name)
        return _Applied(
            revalidate(replace_model(spec, new_model)),
            None,
            # the keys the region file sets, no defaults: `abort` puts back exactly these
            RegionBefore(model=model.model_dump(by_alias=True, mode="json", exclude_unset=True)),
            f"{spec.name}: {what}",
        )
    path = region_path(fleet.root, spec.name)
    rel = path.relative_to(fleet.root).as_posix()
    data = spec.to_yaml_data()
    before = {
        a.split("=", 1)[0]: _value_at(data, resolve_key(a.split("=", 1)[0])) for a in change.assignments
    }
    text = apply_assignments(path.read_text(encoding="utf-8"), change.assignments, rel)
    new, _ = parse_region(text, rel)
    problems = check_value_overrides(new)
    if problems:
        raise SpecError(problems)
    return _Applied(new, text, RegionBefore(values=before), f"{spec.name}: {', '.join(before)}")


def _set_path(data: dict[str, Any], path: Sequence[str | int], value: Any) -> None:
    """Set (``value`` not None) or remove the key at ``path``, dropping maps left empty."""
    parents: list[tuple[Any, str | int]] = []
    node: Any = data
    for part in path[:-1]:
        if isinstance(node, dict) and isinstance(part, str):
            node = node.setdefault(part, {}) if value is not None else node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
        if node is None:
            return  # nothing to remove
        parents.append((node, part))
    last = path[-1]
    if value is not None:
        node[last] = value
        return
    if isinstance(node, dict):
        node.pop(last, None)
    # drop the maps the removal left empty, innermost first (values.<chart>: {} means nothing)
    chain: list[Any] = [data, *[p for p, _ in parents]]
    for depth in range(len(path) - 1, 0, -1):
        holder, child = chain[depth - 1], chain[depth]
        if isinstance(child, dict) and not child and isinstance(holder, dict):
            holder.pop(path[depth - 1], None)


def _restore(fleet: Fleet, spec: RegionSpec, change: RolloutChange, before: RegionBefore) -> _Applied | None:
    """``spec`` with what the rollout changed put back (None: nothing left to put back).

    The region file is edited as a round-trip document (comments, key order and the keys the
    operator left unset stay as they were), so an abort right after a step gives back the bytes.
    """
    path = region_path(fleet.root, spec.name)
    rel = path.relative_to(fleet.root).as_posix()
    doc = load_roundtrip(path.read_text(encoding="utf-8"), rel)
    if change.kind == "model-promote":
        entries = doc.get("models") or []
        entry = next((m for m in entries if isinstance(m, dict) and m.get("name") == change.model), None)
        if before.model is None or entry is None:
            return None
        merge_into(entry, before.model)
        what = f"{spec.name}: model {change.model}"
    else:
        for key, old in before.values.items():
            _set_path(doc, resolve_key(key), old)
        what = f"{spec.name}: {', '.join(before.values)}"
    text = dump_roundtrip(doc)
    restored, _ = parse_region(text, rel)
    return _Applied(restored, text, before, what)


# --------------------------------------------------------------------------- start / next / abort


def _eligible(fleet: Fleet, change: RolloutChange) -> list[RegionSpec]:
    specs = fleet.load_all()
    if change.kind == "model-promote":
        assert change.model is not None
        specs = [s for s in specs if find_model(s, change.model) is not None]
        if not specs:
            raise SpecError(
                f"model {change.model!r} is not registered in any region "
                f"(kubevc-gen model add {change.model} ...)"
            )
    return specs


def _new_id(fleet: Fleet, change: RolloutChange, now: datetime) -> str:
    what = f"model-{change.model}-{change.version}" if change.kind == "model-promote" else "values"
    base = f"{now:%Y%m%d-%H%M%S}-{what}"
    taken = {r.id for r in load_rollouts(fleet)}
    number = 1
    rollout_id = base
    while rollout_id in taken:
        number += 1
        rollout_id = f"{base}-{number}"
    return rollout_id


def _step_title(rollout: Rollout, step: RolloutStep) -> str:
    wave = step.wave_name or step.selector
    return f"step {rollout.step_number(step)} (wave {step.wave} {wave}): {', '.join(step.regions)}"


def _commit_step(
    fleet: Fleet, rollout: Rollout, step: RolloutStep, now: datetime, verb: str, options: ChangeOptions
) -> ChangeResult:
    specs = {s.name: s for s in fleet.load_all()}
    missing = [r for r in step.regions if r not in specs]
    if missing:
        raise SpecError(
            f"rollout {rollout.id}: region {missing[0]} of {_step_title(rollout, step)} no longer exists; "
            "`kubevc-gen rollout abort`"
        )
    applied = [_apply(fleet, specs[r], rollout.change) for r in step.regions]
    for item in applied:
        rollout.before.setdefault(item.spec.name, item.before)
    step.committed_at = now
    message = f"rollout {verb} {rollout.id}: {rollout.change.describe()}: {_step_title(rollout, step)}"
    texts = {a.spec.name: a.text for a in applied if a.text is not None}
    state = rollout_to_yaml(rollout)
    change = plan_with_regions(
        fleet, [a.spec for a in applied], message, texts, pending={rollout.file: state}
    )
    change.files[rollout.file] = state
    return apply_change(fleet, change, options)


def start_rollout(
    fleet: Fleet,
    words: Sequence[str],
    *,
    label: str,
    now: Clock,
    store: str | None,
    via_host: str | None,
    skip_store_check: bool,
    options: ChangeOptions,
    progress: Progress,
) -> tuple[Rollout, ChangeResult]:
    """``rollout start``: the change in the first step's regions and the state file, one commit."""
    change = parse_change(words, label)
    running = running_rollout(fleet)
    if running is not None:
        raise SpecError(
            f"rollout {running.id} is running ({running.change.describe()}); "
            "finish it with `kubevc-gen rollout next` or stop it with `kubevc-gen rollout abort` first"
        )
    plan = fleet.config.rollout
    if plan is None:
        raise SpecError(
            "kubevc-fleet.yaml has no rollout plan: add `rollout: {soak: 10m, waves: [{selector: "
            "tier=canary}, {selector: tier=edge, maxRegions: 25%}]}` (README 'Staged rollouts')"
        )
    eligible = _eligible(fleet, change)
    steps = resolve_steps(plan, {s.name: region_labels(s) for s in eligible}, fleet.region_names())
    in_steps = {r for s in steps for r in s.regions}
    for spec in eligible:  # the change must apply everywhere before the first region gets it
        if spec.name in in_steps:
            _apply(fleet, spec, change)
    if change.kind == "model-promote":
        assert change.model is not None and change.version is not None
        if skip_store_check:
            progress("not checking the store (--skip-store-check)")
        else:
            chosen = [s for s in eligible if s.name in in_steps]
            check_published(chosen, change.model, change.version, store, via_host, progress)
    started = now()
    rollout = Rollout(
        id=_new_id(fleet, change, started),
        change=change,
        started_at=started,
        steps=steps,
        untouched=sorted(set(fleet.region_names()) - in_steps),
    )
    return rollout, _commit_step(fleet, rollout, steps[0], started, "start", options)


def rollout_gate(rollout: Rollout, statuses: Mapping[str, RegionStatus], now: datetime) -> Gate:
    """Whether the last done step's regions are all ``ok`` and its soak time is over."""
    done = rollout.done_steps
    if not done:
        return Gate(True, 0, "no step done yet", 0.0)
    step = done[-1]
    assert step.committed_at is not None
    soak_left = max(0.0, step.soak_seconds - (now - step.committed_at).total_seconds())
    soak = f"soak {format_seconds(soak_left)} left" if soak_left else "soak time over"
    bad: list[str] = []
    codes: list[int] = []
    for region in step.regions:
        status = statuses.get(region)
        verdict = status.verdict if status is not None else "unreachable"
        if verdict != "ok":
            reason = status.reason if status is not None else "not read"
            bad.append(f"{region} {verdict}" + (f" ({reason})" if reason else ""))
            codes.append(EXIT_CODES[verdict])
    where = f"step {rollout.step_number(step)} ({', '.join(step.regions)})"
    if bad:
        return Gate(
            False, worst_exit_code(codes), f"{where} not healthy: {'; '.join(bad)}; {soak}", soak_left
        )
    if soak_left > 0:
        reason = (
            f"{where} ok, soaking: {format_seconds(soak_left)} left of "
            f"{format_seconds(step.soak_seconds)} since its commit"
        )
        return Gate(False, EXIT_CODES["degraded"], reason, soak_left)
    return Gate(True, 0, f"{where} ok for {format_seconds(step.soak_seconds)} ({soak})", 0.0)


def require_running(fleet: Fleet) -> Rollout:
    """The running rollout, or a :class:`SpecError` saying there is none."""
    rollout = running_rollout(fleet)
    if rollout is None:
        raise SpecError("no rollout is running (start one with `kubevc-gen rollout start CHANGE`)")
    return rollout


def advance_rollout(fleet: Fleet, rollout: Rollout, now: Clock, options: ChangeOptions) -> ChangeResult:
    """``rollout next`` once :func:`rollout_gate` passed: the next step, or the rollout done."""
    step = rollout.next_step
    if step is not None:
        return _commit_step(fleet, rollout, step, now(), "next", options)
    rollout.phase = "done"
    rollout.finished_at = now()
    regions = sorted({r for s in rollout.steps for r in s.regions})
    message = (
        f"rollout done {rollout.id}: {rollout.change.describe()} in {len(rollout.steps)} step(s): "
        + ", ".join(regions)
    )
    return apply_change(fleet, Change(message, {rollout.file: rollout_to_yaml(rollout)}), options)


def abort_rollout(fleet: Fleet, now: Clock, options: ChangeOptions) -> tuple[Rollout, ChangeResult]:
    """``rollout abort``: what the done steps changed put back, the rollout marked aborted, one commit."""
    rollout = require_running(fleet)
    specs = {s.name: s for s in fleet.load_all()}
    restored: list[_Applied] = []
    for step in rollout.done_steps:
        for region in step.regions:
            before = rollout.before.get(region)
            if region not in specs or before is None:
                continue
            back = _restore(fleet, specs[region], rollout.change, before)
            if back is not None:
                restored.append(back)
    rollout.phase = "aborted"
    rollout.finished_at = now()
    where = ", ".join(a.spec.name for a in restored) or "no region"
    message = f"rollout abort {rollout.id}: {rollout.change.describe()} undone in {where}"
    state = rollout_to_yaml(rollout)
    texts = {a.spec.name: a.text for a in restored if a.text is not None}
    change = plan_with_regions(
        fleet, [a.spec for a in restored], message, texts, pending={rollout.file: state}
    )
    change.files[rollout.file] = state
    return rollout, apply_change(fleet, change, options)
