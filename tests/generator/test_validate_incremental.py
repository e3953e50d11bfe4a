"""Incremental validate: a region's results come from the cache only when nothing they depend on
changed, findings are cached as well as successes, and a broken cache entry is a miss.

Regions walked are counted by wrapping ``_Validator.walk`` (no wall-clock timing)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubevc.generator.repo import Fleet
from kubevc.generator.validate import Report, validate_fleet
from kubevc.generator.validate import _cache as cache_mod
from kubevc.generator.validate import _validator as validate_mod

from .conftest import Gen

BAD_CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n  namespace: kubevc\ndta: {}\n"


@pytest.fixture
def walked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The regions validate walks (checks again), in order."""
    names: list[str] = []
    real = validate_mod._Validator.walk

    def counting(self: validate_mod._Validator, name: str) -> cache_mod.RegionResult:
        names.append(name)
        return real(self, name)

    monkeypatch.setattr(validate_mod._Validator, "walk", counting)
    yield names


def _add_bad_configmap(fleet: Path, region: str) -> None:
    (fleet / f"apps/{region}/broken.yaml").write_text(BAD_CONFIGMAP)
    kust = fleet / f"apps/{region}/kustomization.yaml"
    kust.write_text(kust.read_text() + "  - broken.yaml\n")


def _run(fleet: Path, **kwargs: object) -> Report:
    return validate_fleet(Fleet.find(fleet), checkov=False, **kwargs)  # type: ignore[arg-type]


def _summary(report: Report) -> tuple[list[str], dict[tuple[str, str], int], list[str]]:
    return [str(f) for f in report.findings], dict(report.checked), list(report.notes)


def _entries(fleet: Path) -> Path:
    return fleet / ".git" / cache_mod.VALIDATE_CACHE


def test_a_cache_hit_gives_the_cold_runs_findings(fleet: Path, walked: list[str]) -> None:
    _add_bad_configmap(fleet, "seoul")
    cold = _run(fleet)
    assert walked == ["busan", "seoul"]
    assert any(f.region == "seoul" and f.check == "schema" for f in cold.findings)  # a failing region
    assert sorted(p.name for p in _entries(fleet).iterdir()) == ["busan.plain.json", "seoul.plain.json"]
    walked.clear()
    warm = _run(fleet)
    assert walked == []  # both from the cache, the failing one included
    assert warm.cached == ["busan", "seoul"]
    assert _summary(warm) == _summary(cold)
    uncached = _run(fleet, use_cache=False)  # --no-cache
    assert walked == ["busan", "seoul"] and uncached.cached == []
    assert _summary(uncached) == _summary(cold)


def test_a_one_byte_change_revalidates_only_that_region(fleet: Path, walked: list[str]) -> None:
    cold = _run(fleet)
    walked.clear()
    values = fleet / "apps/busan/kubevc-serving-values.yaml"
    values.write_bytes(values.read_bytes() + b"#")
    again = _run(fleet)
    assert walked == ["busan"]
    assert _summary(again) == _summary(cold)
    walked.clear()
    _add_bad_configmap(fleet, "busan")  # the new finding is found, not hidden by the old entry
    found = _run(fleet)
    assert walked == ["busan"]
    assert [f.region for f in found.findings if f.check == "schema"] == ["busan"]
    walked.clear()
    chart = fleet / "charts/kubevc-serving/values.yaml"  # a shared file: every region again
    chart.write_bytes(chart.read_bytes() + b"\n")
    _run(fleet)
    assert walked == ["busan", "seoul"]


def test_a_broken_cache_entry_is_a_miss(fleet: Path, walked: list[str]) -> None:
    _add_bad_configmap(fleet, "seoul")
    cold = _run(fleet)
    walked.clear()
    seoul = _entries(fleet) / "seoul.plain.json"
    busan = _entries(fleet) / "busan.plain.json"
    data = seoul.read_bytes()
    seoul.write_bytes(data[: len(data) // 2])  # truncated (a killed writer without the rename)
    envelope = json.loads(busan.read_text())  # whole JSON, but no longer what was written
    envelope["result"]["findings"] = []
    envelope["result"]["checked"]["schema"] = 0
    busan.write_text(json.dumps(envelope))
    (_entries(fleet) / ".seoul.plain.json.123.tmp").write_text("{")  # a killed write's leftover
    again = _run(fleet)
    assert sorted(walked) == ["busan", "seoul"]
    assert _summary(again) == _summary(cold)
    assert not any(p.name.endswith(".tmp") for p in _entries(fleet).iterdir())  # pruned
    # a seoul entry holding busan's key (a copy) is not seoul's result either
    walked.clear()
    seoul.write_bytes(busan.read_bytes())
    _run(fleet)
    assert walked == ["seoul"]


def test_the_key_covers_tools_mode_and_references(fleet: Path, tmp_path: Path) -> None:
    owners = ["busan", "seoul", "hub"]
    tree = cache_mod.digest_tree(fleet, owners)
    keys = cache_mod.region_keys(tree, ["busan", "seoul"], "tools-a")
    assert keys != cache_mod.region_keys(tree, ["busan", "seoul"], "tools-b")
    assert keys["busan"] != keys["seoul"]
    # a hand-made reference from seoul's folder into busan's: busan's files join seoul's key
    (fleet / "apps/seoul/extra").mkdir()
    (fleet / "apps/seoul/extra/kustomization.yaml").write_text("resources:\n  - ../../busan/more\n")
    linked = cache_mod.digest_tree(fleet, owners)
    assert linked.references == {"seoul": {"busan"}}
    before = cache_mod.region_keys(linked, ["seoul"], "t")["seoul"]
    (fleet / "apps/busan/more.yaml").write_text("a: 1\n")
    assert cache_mod.region_keys(cache_mod.digest_tree(fleet, owners), ["seoul"], "t")["seoul"] != before
    assert cache_mod.owner_of("infrastructure/agents/seoul/x.yaml", frozenset(owners)) == "seoul"
    assert cache_mod.owner_of("apps/base/kubevc-serving/helmrelease.yaml", frozenset(owners)) is None
    assert cache_mod.owner_of("hub/hub.yaml", frozenset(owners)) == "hub"


def test_validate_no_cache_flag(gen: Gen, fleet: Path, walked: list[str]) -> None:
    assert gen("validate", "--no-checkov").exit_code == 0
    assert walked == ["busan", "seoul"]
    walked.clear()
    assert gen("validate", "--no-checkov").exit_code == 0
    assert walked == []
    result = gen("validate", "--no-checkov", "--no-cache")
    assert result.exit_code == 0, result.output
    assert walked == ["busan", "seoul"]
    walked.clear()
    os.environ["KUBEVC_VALIDATE_CACHE"] = "0"
    try:
        assert gen("validate", "--no-checkov").exit_code == 0
    finally:
        del os.environ["KUBEVC_VALIDATE_CACHE"]
    assert walked == ["busan", "seoul"]


def test_checkov_workers_find_what_the_checkov_command_finds(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The long-lived workers (one fresh scan per region) against the checkov command over a batch:
    the same findings, counts and summary; and a checkov result is cached like the rest."""
    exe = os.environ.get("KUBEVC_CHECKOV")
    if not exe or not Path(exe).is_file():
        pytest.skip("KUBEVC_CHECKOV does not name checkov (make tools)")
    (fleet / "apps/seoul/privileged.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: kubevc\nspec:\n  containers:\n"
        "    - name: c\n      image: busybox:1.36\n      securityContext:\n        privileged: true\n"
    )
    kust = fleet / "apps/seoul/kustomization.yaml"
    kust.write_text(kust.read_text() + "  - privileged.yaml\n")
    with_workers = validate_fleet(Fleet.find(fleet), use_cache=True)
    assert any(f.region == "seoul" and f.check == "checkov" for f in with_workers.findings)
    monkeypatch.setattr(validate_mod.CheckovWorkers, "start", classmethod(lambda cls, exe, n=2: None))
    command = validate_fleet(Fleet.find(fleet), use_cache=False)
    assert sorted(map(str, with_workers.findings)) == sorted(map(str, command.findings))
    assert with_workers.checked == command.checked
    assert [n for n in with_workers.notes if n.startswith("checkov:")] == [
        n for n in command.notes if n.startswith("checkov:")
    ]
    monkeypatch.undo()
    warm = validate_fleet(Fleet.find(fleet))
    assert warm.cached == ["busan", "seoul"]
    assert _summary(warm) == _summary(with_workers)
