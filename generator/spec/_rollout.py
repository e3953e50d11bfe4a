"""Staged rollouts: the plan in ``kubevc-fleet.yaml`` and the state of one rollout in git.

The plan (``rollout:`` in the fleet config) is ordered waves, each a label selector (kubectl
syntax, matched against region labels and the computed ``kubevc.io/`` ones) with an optional step
size (``maxRegions``: a number of regions per step, or a percentage of the wave's regions) and a
soak time; the health gate is always "every region of the previous step is ``ok`` in live status".

A rollout (``rollouts/<id>.yaml``, written by ``kubevc-gen rollout``) records the change, the waves
resolved to steps of region names when it started, when each step was committed, the state each
region had before the change (for ``rollout abort``) and its phase (running, done, aborted).
Pure models and functions: reading and writing the files is :mod:`kubevc.generator.repo`'s job.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from ..errors import SpecError
from ._names import check_name
from ._selector import parse_selector

ROLLOUTS_DIR = "rollouts"
RolloutPhase = Literal["running", "done", "aborted"]
ChangeKind = Literal["model-promote", "values"]


class _Model(BaseModel):
    # the YAML spelling is camelCase, as in region.yaml (this module sits below spec._region)
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, validate_assignment=True
    )

    def to_yaml_data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(by_alias=True, mode="json", exclude_none=True)
        return data


_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$")
_PERCENT = re.compile(r"^([1-9][0-9]?|100)%$")


def parse_duration(text: str) -> float:
    """``10s``, ``500ms``, ``2m``, ``1h`` or plain seconds, in seconds (0 allowed: no soak)."""
    match = _DURATION.match(str(text))
    if not match:
        raise SpecError(f"{text!r} is not a duration such as 30s, 10m or 1h")
    return float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]


def format_seconds(seconds: float) -> str:
    """``seconds`` for people: ``1h2m``, ``9m30s``, ``45s``."""
    whole = max(0, math.ceil(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


class RolloutWave(_Model):
    """One wave of the plan: the regions ``selector`` matches (and no earlier wave took)."""

    selector: str
    name: str | None = None
    # regions per step within the wave: a number, or "P%" of the wave's regions (rounded up); none: one step
    max_regions: Annotated[int, Field(ge=1)] | str | None = None
    soak: str | None = None  # this wave's soak time (default: the plan's)

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        parse_selector(value)
        return value

    @field_validator("max_regions")
    @classmethod
    def _max_regions(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, str) and not _PERCENT.match(value):
            raise ValueError(f"maxRegions {value!r}: a number of regions or a percentage such as 25%")
        return value

    @field_validator("soak")
    @classmethod
    def _soak(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    def step_size(self, regions: int) -> int:
        """How many of the wave's ``regions`` one step takes."""
        if self.max_regions is None:
            return max(1, regions)
        if isinstance(self.max_regions, int):
            return self.max_regions
        return max(1, math.ceil(regions * int(self.max_regions[:-1]) / 100))


class RolloutPlan(_Model):
    """``rollout:`` in ``kubevc-fleet.yaml``: the waves in order, and the default soak time."""

    waves: Annotated[list[RolloutWave], Field(min_length=1)]
    soak: str = "10m"

    @field_validator("soak")
    @classmethod
    def _soak(cls, value: str) -> str:
        parse_duration(value)
        return value


class RolloutChange(_Model):
    """What a rollout changes: a model label promoted to a version, or values overrides."""

    kind: ChangeKind
    model: str | None = None
    version: Annotated[int, Field(ge=1)] | None = None
    label: Literal["stable", "canary"] | None = None
    assignments: list[str] = Field(default_factory=list)  # values.<chart>.<path>=<yaml>

    def describe(self) -> str:
        if self.kind == "model-promote":
            return f"model promote {self.model}: {self.label} -> {self.version}"
        return "values " + " ".join(self.assignments)


class RolloutStep(_Model):
    wave: Annotated[int, Field(ge=1)]
    selector: str
    regions: Annotated[list[str], Field(min_length=1)]
    soak_seconds: Annotated[float, Field(ge=0)]
    wave_name: str | None = None
    committed_at: datetime | None = None  # when this step's change was committed (None: not yet)

    @property
    def done(self) -> bool:
        return self.committed_at is not None


class RegionBefore(_Model):
    """A region's state before the rollout changed it: what ``rollout abort`` puts back."""

    model: dict[str, Any] | None = None  # model-promote: the model's entry in region.yaml
    values: dict[str, Any] = Field(default_factory=dict)  # values: key -> value before (null: unset)


class Rollout(_Model):
    """``rollouts/<id>.yaml``: one rollout's change, steps, phase and what to restore."""

    api_version: Literal["kubevc.io/v1"] = "kubevc.io/v1"
    kind: Literal["Rollout"] = "Rollout"
    id: str
    phase: RolloutPhase = "running"
    change: RolloutChange
    started_at: datetime
    finished_at: datetime | None = None
    steps: Annotated[list[RolloutStep], Field(min_length=1)]
    before: dict[str, RegionBefore] = Field(default_factory=dict)
    # regions no wave matched (or the change does not apply to): never touched by this rollout
    untouched: list[str] = Field(default_factory=list)

    @property
    def file(self) -> str:
        return f"{ROLLOUTS_DIR}/{self.id}.yaml"

    @property
    def done_steps(self) -> list[RolloutStep]:
        return [s for s in self.steps if s.done]

    @property
    def next_step(self) -> RolloutStep | None:
        return next((s for s in self.steps if not s.done), None)

    def step_number(self, step: RolloutStep) -> str:
        return f"{self.steps.index(step) + 1}/{len(self.steps)}"


def parse_change(words: Sequence[str], label: str = "stable") -> RolloutChange:
    """``rollout start`` arguments: ``model NAME VERSION`` or ``values.CHART.KEY=VALUE...``."""
    usage = "a rollout changes `model NAME VERSION` or `values.CHART.KEY=VALUE ...`"
    if not words:
        raise SpecError(f"rollout start: name the change ({usage})")
    if words[0] == "model":
        if len(words) != 3:
            raise SpecError(f"rollout start: `model` takes NAME VERSION ({usage})")
        check_name(words[1], "model name")
        if not words[2].isdigit() or int(words[2]) < 1:
            raise SpecError(f"rollout start: version {words[2]!r}: versions are positive integers")
        return RolloutChange(kind="model-promote", model=words[1], version=int(words[2]), label=label)  # type: ignore[arg-type]
    if all(w.startswith("values.") and "=" in w for w in words):
        return RolloutChange(kind="values", assignments=list(words))
    odd = next((w for w in words if not (w.startswith("values.") and "=" in w)), words[0])
    raise SpecError(f"rollout start: unknown change {odd!r} ({usage})")


def resolve_steps(
    plan: RolloutPlan, regions: Mapping[str, Mapping[str, str]], all_regions: Sequence[str]
) -> list[RolloutStep]:
    """The plan's waves as steps of region names; ``regions``: name -> labels of those the change
    applies to (``all_regions``: every region, for the message). A wave matching none is an error."""
    taken: set[str] = set()
    steps: list[RolloutStep] = []
    default_soak = parse_duration(plan.soak)
    for number, wave in enumerate(plan.waves, start=1):
        selector = parse_selector(wave.selector)
        matched = [n for n in sorted(regions) if n not in taken and selector.matches(regions[n])]
        if not matched:
            why = "matches no region" if regions else "has no region to change"
            raise SpecError(
                f"rollout plan wave {number} ({wave.selector!r}) {why} the change applies to "
                f"(regions: {', '.join(sorted(regions)) or 'none'} of {', '.join(all_regions) or 'none'}); "
                "fix `rollout.waves` in kubevc-fleet.yaml or the region labels"
            )
        taken.update(matched)
        size = wave.step_size(len(matched))
        soak = default_soak if wave.soak is None else parse_duration(wave.soak)
        for start in range(0, len(matched), size):
            steps.append(
                RolloutStep(
                    wave=number,
                    wave_name=wave.name,
                    selector=wave.selector,
                    regions=matched[start : start + size],
                    soak_seconds=soak,
                )
            )
    return steps
