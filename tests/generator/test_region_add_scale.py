"""`region add` (and every command changing a few regions) stays flat with fleet size (issue 19
item 5): when the rest of the fleet is as the last render left it (``RenderState``), only the
changed regions and the shared files are read, rendered and checked, and the result is what a
full render gives."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kubevc.generator.render import RenderInputs, render_tree
from kubevc.generator.render import _plan as plan
from kubevc.generator.render._plan import region_folders
from kubevc.generator.repo import RENDER_STATE, Change, Fleet, RegionStamp, load_profiles, sha256_hex
from kubevc.generator.repo._render_state import RACY_NS, file_stat
from kubevc.generator.spec import FleetConfig, HubSpec, RegionSpec
from kubevc.generator.workflows import plan_full_render

from .conftest import Gen, git, run_gen

ADD = ["--api-endpoint", "https://10.7.0.1:6443", "--nfs-server", "10.7.0.10", "--nfs-path", "/m"]
REGION_FILE = "regions/{}/region.yaml"

# Runs kubevc-gen with an audit hook that logs every file opened and every folder listed.
AUDITED = """
import json, os, sys
log = []
def hook(event, args):
    path = args[0] if args else None
    if event in ("open", "os.scandir", "os.listdir") and isinstance(path, (str, bytes, os.PathLike)):
        log.append(os.path.abspath(os.fsdecode(path)))
sys.addaudithook(hook)
from kubevc.generator.cli import cli
try:
    cli.main(args=sys.argv[2:], prog_name="kubevc-gen")
finally:
    with open(sys.argv[1], "w") as fh:
        json.dump(log, fh)
"""


def _grow(fleet: Path, names: list[str]) -> None:
    """More regions like seoul (written by hand), then a full render that records them."""
    template = (fleet / REGION_FILE.format("seoul")).read_text()
    for i, name in enumerate(names):
        text = re.sub(r"(?m)^name: seoul$", f"name: {name}", template)
        text = text.replace("https://10.8.0.1:6443", f"https://10.20.0.{i + 1}:6443")
        (fleet / "regions" / name).mkdir()
        (fleet / REGION_FILE.format(name)).write_text(text)
    git(fleet, "add", "-A")
    git(fleet, "commit", "-qm", "regions by hand")
    # a region file written in the same clock tick as it is read is checked by content later;
    # these are old enough to be trusted by their stat alone
    time.sleep(3 * RACY_NS / 1e9)
    result = run_gen("render", fleet=fleet)
    assert result.exit_code == 0, result.output
    assert (fleet / ".git" / RENDER_STATE).is_file()


def _audited(fleet: Path, log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", AUDITED, str(log), "--fleet", str(fleet), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _of_region(fleet: Path, path: str, name: str) -> bool:
    root = fleet.resolve()
    folders = [root / "regions" / name, *(root / f for f in region_folders(name))]
    return any(Path(path) == f or Path(path).is_relative_to(f) for f in folders)


def _count_full_renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A list that gets "all" each time a change of a few regions renders every region."""
    full: list[str] = []
    real = plan._plan_scoped

    def spy(*args: Any, **kwargs: Any) -> Change | None:
        change = real(*args, **kwargs)
        if change is None:
            full.append("all")
        return change

    monkeypatch.setattr(plan, "_plan_scoped", spy)
    return full


def _no_drift(fleet: Path) -> None:
    """A full render of the fleet now would change nothing."""
    assert plan_full_render(Fleet(fleet)).effective(fleet) == {}


def test_region_add_reads_nothing_of_the_other_regions(fleet: Path, tmp_path: Path) -> None:
    others = ["seoul", "busan", "jeju", "ulsan", "daejeon"]
    _grow(fleet, others[2:])
    log = tmp_path / "opened.json"
    result = _audited(fleet, log, "region", "add", "daegu", *ADD)
    assert result.returncode == 0, result.stderr
    opened = json.loads(log.read_text())
    assert any(_of_region(fleet, p, "daegu") for p in opened)  # the hook sees what it reads
    for name in others:
        touched = [p for p in opened if _of_region(fleet, p, name)]
        assert touched == [], f"region add daegu read {name}'s files: {touched}"
    committed = git(fleet, "show", "--name-only", "--format=", "HEAD").split()
    assert committed and all(_of_region(fleet, str(fleet.resolve() / p), "daegu") for p in committed)
    _no_drift(fleet)
    # the next add trusts daegu too (written by the add before: checked by content, not rendered)
    result = _audited(fleet, log, "region", "add", "gwangju", *ADD)
    assert result.returncode == 0, result.stderr
    opened = json.loads(log.read_text())
    for name in others:
        assert not any(_of_region(fleet, p, name) for p in opened), name
    assert not any(_of_region(fleet, p, "daegu") and "/regions/" not in p for p in opened)
    _no_drift(fleet)


def test_changes_of_a_few_regions_equal_a_full_render(
    gen: Gen, fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _grow(fleet, ["jeju"])
    full_reads = _count_full_renders(monkeypatch)
    for args in (
        ["region", "add", "daegu", *ADD],
        ["region", "set", "seoul", "monitoring=false"],
        ["region", "label", "jeju", "tier=canary"],
        ["node", "add", "busan", "10.9.0.21"],
        ["region", "remove", "jeju"],  # renders the rest in full, and records that render
        ["suspend", "daegu", "--no-live"],
    ):
        result = gen(*args)
        assert result.exit_code == 0, (args, result.output)
        assert full_reads == [], f"{args} read every region"
        _no_drift(fleet)
    # the first command after a hand edit of another region renders everything, as before
    busan = fleet / REGION_FILE.format("busan")
    busan.write_text(busan.read_text().replace("monitoring: true", "monitoring: false"))
    result = gen("region", "add", "gwangju", *ADD)
    assert result.exit_code == 0, result.output
    assert full_reads == ["all"]
    changed = git(fleet, "show", "--name-only", "--format=", "HEAD").split()
    assert any(p.startswith("apps/busan/") for p in changed), changed
    _no_drift(fleet)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda state: {**state, "code": "another generator"}, id="generator-upgraded"),
        pytest.param(lambda state: {**state, "regions": {}}, id="regions-unknown"),
        pytest.param(lambda state: "not a state", id="damaged"),
    ],
)
def test_without_a_matching_state_everything_is_rendered(
    gen: Gen, fleet: Path, monkeypatch: pytest.MonkeyPatch, damage: object
) -> None:
    _grow(fleet, ["jeju"])
    path = fleet / ".git" / RENDER_STATE
    path.write_text(json.dumps(damage(json.loads(path.read_text()))))  # type: ignore[operator]
    full_reads = _count_full_renders(monkeypatch)
    assert gen("region", "add", "daegu", *ADD).exit_code == 0
    assert full_reads == ["all"]
    _no_drift(fleet)


def test_the_fleet_config_is_an_input(gen: Gen, fleet: Path) -> None:
    """Every region's files depend on kubevc-fleet.yaml: edited by hand, the next add renders all."""
    _grow(fleet, ["jeju"])
    config = fleet / "kubevc-fleet.yaml"
    config.write_text(config.read_text().replace("namespace: kubevc", "namespace: kubevc-edge"))
    git(fleet, "commit", "-qam", "namespace by hand")
    assert gen("region", "add", "daegu", *ADD).exit_code == 0
    changed = git(fleet, "show", "--name-only", "--format=", "HEAD").split()
    assert any(p.startswith("apps/jeju/") for p in changed), changed
    _no_drift(fleet)


def test_a_stamp_taken_in_the_tick_of_a_write_is_checked_by_content(tmp_path: Path) -> None:
    path = tmp_path / "region.yaml"
    path.write_bytes(b"name: a\n")
    stat = file_stat(path)
    assert stat is not None
    ctime = stat[4]
    racy = RegionStamp(stat, ctime + 1, sha256_hex(b"name: b\n"))  # read right after a write
    assert racy.holds(path)[0] is False  # same stat, other content: not trusted
    good = RegionStamp(stat, ctime + 1, sha256_hex(b"name: a\n"))
    held, fresh = good.holds(path)
    assert held and fresh.seen_ns > good.seen_ns
    old = RegionStamp(stat, ctime + 10 * RACY_NS, "not even a digest")
    assert old.holds(path) == (True, old)  # old enough: the stat alone tells
    os.utime(path, ns=(stat[3], stat[3]))  # any change of the file moves its ctime
    assert old.holds(path)[0] is False


def test_region_folders_hold_every_file_of_a_region() -> None:
    """What a scoped render leaves alone of the other regions is exactly their part of the tree."""
    gpu = {"arch": "amd64", "memoryMiB": 31945, "accelerators": [{"kind": "nvidia", "count": 1}]}
    spec = RegionSpec.model_validate(
        {
            "name": "seoul",
            "apiEndpoint": "https://10.8.0.1:6443",
            "storage": {"nfs": {"server": "10.8.0.10", "path": "/export/models"}},
            "git": {"url": "https://git.example.com/ops/fleet.git"},
            "nodes": [{"host": "10.8.0.11", "inventory": gpu}],
            "values": {"kube-prometheus-stack": {"prometheus": {"prometheusSpec": {"retention": "3d"}}}},
        }
    )
    cfg = FleetConfig()
    profiles = load_profiles()
    for hub in (None, HubSpec(api_endpoint="https://10.6.0.1:6443")):
        shared = render_tree(RenderInputs(config=cfg, regions=(), profiles=profiles, charts={}, hub=hub))
        files = render_tree(RenderInputs(config=cfg, regions=(spec,), profiles=profiles, charts={}, hub=hub))
        own = sorted(set(files) - set(shared))
        assert any(p.startswith("infrastructure/accelerators/") for p in own) and own
        outside = [p for p in own if not any(p.startswith(f + "/") for f in region_folders("seoul"))]
        assert outside == []
