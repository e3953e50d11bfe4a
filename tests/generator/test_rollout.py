"""Staged rollouts (``kubevc-gen rollout``), computed region labels and ``model list -l``.

The health gate is contract-tested against the local HTTPS region API the status tests use
(kubeapi_contract): healthy, out-of-sync, degraded and unreachable regions. The clock of the
rollout commands is replaced (``cli._rollout.clock``): no test sleeps through a soak time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubevc.generator.cli import _rollout as rollout_cli
from kubevc.generator.errors import SpecError
from kubevc.generator.spec import (
    RolloutPlan,
    RolloutWave,
    parse_change,
    parse_duration,
    resolve_steps,
)

from ..kubeapi import make_pki
from .conftest import Gen, git, snapshot
from .kubeapi_contract import Fleetside, healthy_objects

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PLAN = """
rollout:
  soak: 10m
  waves:
    - selector: tier=canary
      name: canary
    - selector: tier=edge
"""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(rollout_cli, "clock", fake)
    return fake


def _commit_all(fleet: Path, message: str) -> None:
    git(fleet, "add", "-A")
    git(fleet, "commit", "-q", "-m", message)


@pytest.fixture
def planned(gen: Gen, fleet: Path) -> Path:
    """seoul (tier=canary) and busan (tier=edge) serve resnet50 at stable 1; the plan is canary, edge."""
    models = (
        "models=[{name: resnet50, basePath: /models/resnet50, profile: classification, "
        "versionPolicy: specific, versions: [1], versionLabels: {stable: 1}}]"
    )
    for args in (
        ("region", "label", "seoul", "tier=canary"),
        ("region", "label", "busan", "tier=edge"),
        ("region", "set", "seoul", models),
        ("region", "set", "busan", models),
    ):
        result = gen(*args)
        assert result.exit_code == 0, result.output
    config = fleet / "kubevc-fleet.yaml"
    config.write_text(config.read_text() + PLAN)
    _commit_all(fleet, "rollout plan")
    return fleet


@pytest.fixture
def side(tmp_path: Path, planned: Path) -> Iterator[Fleetside]:
    regions = Fleetside(make_pki(tmp_path), tmp_path)
    head = git(planned, "rev-parse", "HEAD").strip()
    regions.add("seoul", healthy_objects(head, "seoul"))
    regions.add("busan", healthy_objects(head, "busan", ("amd64",)))
    yield regions
    regions.close()


def _at_head(side: Fleetside, fleet: Path, region: str) -> None:
    """The region's Flux has fetched and applied the fleet's HEAD, and everything is Ready."""
    head = git(fleet, "rev-parse", "HEAD").strip()
    archs = ("amd64",) if region == "busan" else ("arm64",)
    side.servers[region].state.load(healthy_objects(head, region, archs))


def _stable(fleet: Path, region: str) -> int:
    spec = yaml.safe_load((fleet / f"regions/{region}/region.yaml").read_text())
    labels: dict[str, int] = spec["models"][0]["versionLabels"]
    return labels["stable"]


def _state(fleet: Path) -> dict[str, Any]:
    files = sorted((fleet / "rollouts").glob("*.yaml"))
    assert len(files) == 1
    doc: dict[str, Any] = yaml.safe_load(files[0].read_text())
    return doc


def _changed(fleet: Path) -> list[str]:
    return sorted(git(fleet, "show", "--name-only", "--format=", "HEAD").split())


# --------------------------------------------------------------------------- the plan (pure)


def test_waves_resolve_to_steps_with_step_sizes() -> None:
    regions = {f"r{i}": {"tier": "edge"} for i in range(1, 8)} | {"c": {"tier": "canary"}}
    plan = RolloutPlan(
        waves=[RolloutWave(selector="tier=canary"), RolloutWave(selector="tier=edge", max_regions="25%")],
        soak="90s",
    )
    steps = resolve_steps(plan, regions, sorted(regions))
    assert [s.regions for s in steps] == [["c"], ["r1", "r2"], ["r3", "r4"], ["r5", "r6"], ["r7"]]
    assert {s.soak_seconds for s in steps} == {90.0}
    by_number = RolloutPlan(waves=[RolloutWave(selector="tier", max_regions=3, soak="0s")])
    assert [len(s.regions) for s in resolve_steps(by_number, regions, sorted(regions))] == [3, 3, 2]
    # a region is in the first wave that matches it only; a wave left with none is an error
    overlap = RolloutPlan(waves=[RolloutWave(selector="tier"), RolloutWave(selector="tier=edge")])
    with pytest.raises(SpecError, match=r"wave 2 .* matches no region"):
        resolve_steps(overlap, regions, sorted(regions))


@pytest.mark.parametrize(
    ("words", "why"),
    [
        ([], "name the change"),
        (["chart", "kubevc-serving", "0.2.0"], "unknown change 'chart'"),
        (["model", "resnet50"], "takes NAME VERSION"),
        (["model", "resnet50", "x"], "positive integers"),
        (["values.kubevc-serving.replicas=2", "monitoring=false"], "unknown change 'monitoring=false'"),
    ],
)
def test_bad_changes(words: list[str], why: str) -> None:
    with pytest.raises(SpecError, match=why):
        parse_change(words)


def test_plan_validation() -> None:
    assert parse_duration("10m") == 600 and parse_duration("0") == 0
    with pytest.raises(ValueError, match="maxRegions"):
        RolloutWave(selector="tier=edge", max_regions="half")
    with pytest.raises(ValueError, match="syntax"):
        RolloutWave(selector="tier in (a")
    with pytest.raises(ValueError, match="duration"):
        RolloutPlan(waves=[RolloutWave(selector="a")], soak="soon")


# --------------------------------------------------------------------------- start / next / abort


def test_two_wave_model_rollout_goes_canary_first_and_waits_for_health(
    gen: Gen, planned: Path, side: Fleetside, clock: Clock
) -> None:
    fleet = planned
    # a generous deadline: a loaded test machine must not turn a healthy region unreachable
    live = ("--kubeconfig", str(side.kubeconfig()), "--timeout", "60s")
    start = gen("rollout", "start", "model", "resnet50", "2", "--skip-store-check")
    assert start.exit_code == 0, start.output
    assert "step 1/2: wave 1 (canary), soak 10m: seoul" in start.output
    assert "step 2/2: wave 2 (tier=edge), soak 10m: busan" in start.output
    # only the canary region's spec and tree changed, with the state file, in one commit
    changed = _changed(fleet)
    assert "regions/seoul/region.yaml" in changed and "regions/busan/region.yaml" not in changed
    assert not [p for p in changed if p.startswith(("apps/busan/", "clusters/busan/"))]
    assert any(p.startswith("apps/seoul/") for p in changed)
    assert (_stable(fleet, "seoul"), _stable(fleet, "busan")) == (2, 1)
    state = _state(fleet)
    assert state["phase"] == "running" and state["change"] == {
        "kind": "model-promote",
        "model": "resnet50",
        "version": 2,
        "label": "stable",
        "assignments": [],
    }
    assert [s["regions"] for s in state["steps"]] == [["seoul"], ["busan"]]
    assert state["steps"][0]["committedAt"].startswith("2026-12-01T09:00:00")
    assert "committedAt" not in state["steps"][1]
    assert git(fleet, "status", "--porcelain").strip() == ""

    def refused(code: int, *needles: str) -> None:
        before = snapshot(fleet)
        result = gen("rollout", "next", *live)
        assert result.exit_code == code, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: rollout next: step 1/2 (seoul)"), lines
        for needle in needles:
            assert needle in lines[0], lines[0]
        assert snapshot(fleet) == before

    # seoul has not fetched the step's commit yet: out of sync (4), busan is not looked at
    refused(4, "seoul out-of-sync (behind by 1 commit(s)", "soak 10m left")
    _at_head(side, fleet, "seoul")
    side.servers["seoul"].state.deployments[0]["status"].pop("readyReplicas")
    clock.advance(minutes=3)
    refused(4, "seoul degraded (Deployment kubevc-serving: 0/1 ready)", "soak 7m left")
    refused_unreachable = side.kubeconfig(skip=("seoul",))
    before = snapshot(fleet)
    result = gen("rollout", "next", "--kubeconfig", str(refused_unreachable))
    assert result.exit_code == 3 and "seoul unreachable" in result.output, result.output
    assert snapshot(fleet) == before
    side.kubeconfig()
    _at_head(side, fleet, "seoul")
    clock.advance(minutes=2)
    refused(4, "ok, soaking: 5m left of 10m since its commit")
    # the status command shows the same, and changes nothing
    doc = json.loads(gen("rollout", "status", *live, "-o", "json").output)
    assert doc["kind"] == "Rollout" and doc["phase"] == "running"
    assert [(s["state"], [r["verdict"] for r in s["regions"]]) for s in doc["steps"]] == [
        ("done", ["ok"]),
        ("next", ["out-of-sync"]),
    ]
    assert doc["gate"]["passed"] is False and doc["gate"]["soakLeftSeconds"] == 300
    table = gen("rollout", "status", *live)
    assert table.exit_code == 0 and "rollout next would wait" in table.output

    clock.advance(minutes=5)
    advanced = gen("rollout", "next", *live)
    assert advanced.exit_code == 0, advanced.output
    assert "regions/busan/region.yaml" in _changed(fleet) and "regions/seoul/region.yaml" not in _changed(
        fleet
    )
    assert (_stable(fleet, "seoul"), _stable(fleet, "busan")) == (2, 2)
    assert (
        git(fleet, "log", "-1", "--format=%s")
        .strip()
        .startswith("rollout next " + _state(fleet)["id"] + ": model promote resnet50: stable -> 2: step 2/2")
    )
    # the last step is gated too before the rollout is done
    refused_last = gen("rollout", "next", *live)
    assert refused_last.exit_code == 4 and "busan out-of-sync" in refused_last.output
    _at_head(side, fleet, "busan")
    clock.advance(minutes=10)
    done = gen("rollout", "next", *live)
    assert done.exit_code == 0, done.output
    assert _changed(fleet) == [f"rollouts/{_state(fleet)['id']}.yaml"]
    assert _state(fleet)["phase"] == "done"
    nothing = gen("rollout", "next", *live)
    assert nothing.exit_code == 5 and "no rollout is running" in nothing.output
    # a new rollout may start now
    again = gen("rollout", "start", "model", "resnet50", "1", "--skip-store-check", "--dry-run")
    assert again.exit_code == 0, again.output


def test_abort_restores_the_fleet_as_before(gen: Gen, planned: Path, side: Fleetside, clock: Clock) -> None:
    fleet = planned
    before = git(fleet, "rev-parse", "HEAD").strip()
    assert gen("rollout", "start", "model", "resnet50", "2", "--skip-store-check").exit_code == 0
    _at_head(side, fleet, "seoul")
    clock.advance(minutes=10)
    advanced = gen("rollout", "next", "--kubeconfig", str(side.kubeconfig()), "--timeout", "60s")
    assert advanced.exit_code == 0, advanced.output
    dry = gen("rollout", "abort", "--dry-run")
    assert dry.exit_code == 0 and "dry run" in dry.output and "-      stable: 2" in dry.output, dry.output
    assert _state(fleet)["phase"] == "running"
    abort = gen("rollout", "abort")
    assert abort.exit_code == 0, abort.output
    assert git(fleet, "log", "-1", "--format=%s").strip().endswith("undone in seoul, busan")
    # the tree is the one before the rollout, but for the rollout's own record
    state = _state(fleet)
    assert state["phase"] == "aborted" and state["finishedAt"]
    assert git(fleet, "diff", "--name-only", before, "HEAD").split() == [f"rollouts/{state['id']}.yaml"]
    assert gen("rollout", "abort").exit_code == 5


def test_values_rollout_and_abort(gen: Gen, planned: Path, clock: Clock) -> None:
    fleet = planned
    before = git(fleet, "rev-parse", "HEAD").strip()
    result = gen("rollout", "start", "values.kubevc-serving.resources.limits.cpu=2")
    assert result.exit_code == 0, result.output
    seoul = yaml.safe_load((fleet / "regions/seoul/region.yaml").read_text())
    assert seoul["values"] == {"kubevc-serving": {"resources": {"limits": {"cpu": 2}}}}
    assert "values" not in yaml.safe_load((fleet / "regions/busan/region.yaml").read_text())
    assert _state(fleet)["before"] == {
        "seoul": {"values": {"values.kubevc-serving.resources.limits.cpu": None}}
    }
    assert gen("rollout", "abort").exit_code == 0
    assert git(fleet, "diff", "--name-only", before, "HEAD").split() == [
        f"rollouts/{_state(fleet)['id']}.yaml"
    ]


def test_dry_run_start_prints_the_commit_and_changes_nothing(gen: Gen, planned: Path, clock: Clock) -> None:
    before = snapshot(planned)
    result = gen("rollout", "start", "model", "resnet50", "2", "--skip-store-check", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "+++ b/rollouts/20261201-090000-model-resnet50-2.yaml" in result.output
    assert "regions/seoul/region.yaml" in result.output and "regions/busan/region.yaml" not in result.output
    assert "dry run:" in result.output
    assert snapshot(planned) == before


def test_bad_rollout_input_changes_nothing(gen: Gen, planned: Path, clock: Clock) -> None:
    fleet = planned

    def refused(args: list[str], needle: str) -> None:
        before = snapshot(fleet)
        result = gen(*args)
        assert result.exit_code == 5, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], lines
        assert snapshot(fleet) == before

    refused(["rollout", "start", "chart", "kubevc-serving", "0.2.0"], "unknown change 'chart'")
    refused(["rollout", "start", "model", "bert", "2", "--skip-store-check"], "'bert' is not registered")
    refused(["rollout", "start", "model", "resnet50", "1", "--skip-store-check"], "already stable")
    refused(["rollout", "start", "values.kubevc-serving.resources.limits.cpux=2"], "cpux")
    refused(["rollout", "next"], "no rollout is running")
    refused(["rollout", "abort"], "no rollout is running")
    # a wave matching nothing
    config = fleet / "kubevc-fleet.yaml"
    good = config.read_text()
    config.write_text(good.replace("tier=edge", "tier=nowhere"))
    _commit_all(fleet, "a wave matching nothing")
    refused(
        ["rollout", "start", "model", "resnet50", "2", "--skip-store-check"],
        "wave 2 ('tier=nowhere') matches no region",
    )
    config.write_text(good.split("rollout:")[0])
    _commit_all(fleet, "no plan")
    refused(["rollout", "start", "model", "resnet50", "2", "--skip-store-check"], "has no rollout plan")
    config.write_text(good)
    _commit_all(fleet, "the plan again")
    # a second rollout while one runs
    assert gen("rollout", "start", "model", "resnet50", "2", "--skip-store-check").exit_code == 0
    refused(["rollout", "start", "values.kubevc-serving.resources.limits.cpu=2"], "is running")


def test_rollout_status_without_rollouts(gen: Gen) -> None:
    result = gen("rollout", "status")
    assert result.exit_code == 0 and "no rollouts yet" in result.output


# --------------------------------------------------------------------------- computed labels, model list -l


def test_computed_region_labels(gen: Gen, fleet: Path) -> None:
    doc = json.loads(gen("region", "list", "-o", "json").output)
    seoul = next(item for item in doc["items"] if item["name"] == "seoul")
    assert seoul["labels"] == {
        "kubevc.io/arch": "arm64",
        "kubevc.io/arch-arm64": "true",
        "kubevc.io/distribution": "k3s",
        "kubevc.io/region": "seoul",
        "kubevc.io/storage": "nfs",
    }
    assert "kubevc.io/arch=arm64" in " ".join(gen("region", "list").output.split())
    picked = gen("region", "list", "-l", "kubevc.io/distribution=kubeadm", "-o", "name")
    assert picked.stdout.splitlines() == ["region/busan"]
    # selectors of every command match them
    add = gen("model", "add", "bert", "-l", "kubevc.io/arch-arm64", "--profile", "text")
    assert add.exit_code == 0, add.output
    assert gen("model", "list", "-o", "name").stdout.splitlines() == ["model/seoul/bert"]
    # a multi-architecture region
    assert gen("region", "set", "busan", "architectures=[amd64, arm64]").exit_code == 0
    both = gen("region", "list", "-l", "kubevc.io/arch-arm64", "-o", "name").stdout.splitlines()
    assert both == ["region/busan", "region/seoul"]
    multi = gen("region", "list", "-l", "kubevc.io/arch=multi", "-o", "name").stdout.splitlines()
    assert multi == ["region/busan"]


@pytest.mark.parametrize("change", ["kubevc.io/arch=amd64", "kubevc.io/region-"])
def test_user_labels_cannot_use_the_kubevc_prefix(gen: Gen, fleet: Path, change: str) -> None:
    before = snapshot(fleet)
    result = gen("region", "label", "seoul", change)
    assert result.exit_code == 5
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "the kubevc.io/ prefix is kubevc's own" in lines[0], lines
    assert snapshot(fleet) == before
    # nor by hand in region.yaml
    path = fleet / "regions/seoul/region.yaml"
    path.write_text(path.read_text() + "labels:\n  kubevc.io/tier: canary\n")
    listed = gen("region", "list")
    assert listed.exit_code == 5 and "kubevc.io/ prefix" in listed.output


def test_model_list_selector(gen: Gen) -> None:
    assert gen("region", "label", "seoul", "tier=canary").exit_code == 0
    assert gen("model", "add", "bert", "--all-regions", "--profile", "text").exit_code == 0
    listed = gen("model", "list", "-l", "tier=canary", "-o", "name")
    assert listed.exit_code == 0 and listed.stdout.splitlines() == ["model/seoul/bert"]
    none = gen("model", "list", "-l", "tier=nowhere")
    assert none.exit_code == 5 and "matches no region" in none.output
    both = gen("model", "list", "-l", "tier=canary", "--region", "busan")
    assert both.exit_code == 5 and "not both" in both.output
