"""The fleet lock, the write journal and crash recovery, branch hygiene (issues 19 and 16).

Crashes are real: a ``kubevc-gen`` subprocess is killed with SIGKILL either at the N-th step of
its write (``KUBEVC_GEN_FAULT_STEP``) or after a random delay; the seeds are fixed, so a failure
replays.
"""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from kubevc.generator.repo import FAULT_STEP_ENV

from .conftest import Gen, git, snapshot

SEED = 1919
ADD_ARGS = ["--api-endpoint", "https://10.7.0.1:6443", "--nfs-server", "nas", "--nfs-path", "/models"]


def kubevc_gen(fleet: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kubevc.generator.cli", "--fleet", str(fleet), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def finished(fleet: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = kubevc_gen(fleet, *args, env=env)
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out


def assert_consistent(fleet: Path, old_head: str) -> None:
    """After a crash: HEAD is the old commit or one new commit on it, and git's objects are sound."""
    head = git(fleet, "rev-parse", "HEAD").strip()
    assert head == old_head or git(fleet, "rev-parse", "HEAD~1").strip() == old_head
    git(fleet, "fsck", "--no-dangling", "--no-progress")  # check=True: fails on corruption


def assert_clean(fleet: Path) -> None:
    assert git(fleet, "status", "--porcelain", "--untracked-files=all") == ""
    assert not (fleet / ".git" / "kubevc-gen" / "txn").exists()
    assert not (fleet / ".git" / "index.lock").exists()


# --------------------------------------------------------------------------- the lock


def test_busy_fleet_names_the_holder_and_changes_nothing(gen: Gen, fleet: Path) -> None:
    lock = fleet / ".git" / "kubevc-gen" / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    before = snapshot(fleet)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("pid 4242 on buildhost (kubevc-gen render, since 2026-01-01T00:00:00Z)\n")
        held.flush()
        result = gen("region", "set", "seoul", "monitoring=false")
        assert result.exit_code == 6, result.output
        assert "locked by pid 4242 on buildhost (kubevc-gen render" in result.output
        assert len(result.output.strip().splitlines()) == 1
        started = time.monotonic()
        waited = gen("region", "set", "seoul", "monitoring=false", "--wait-lock", "0.5")
        assert waited.exit_code == 6 and "after waiting 0.5s" in waited.output
        assert time.monotonic() - started >= 0.5
    assert snapshot(fleet) == before
    assert gen("region", "set", "seoul", "monitoring=false").exit_code == 0


def test_two_concurrent_region_adds_both_land(fleet: Path, tmp_path: Path) -> None:
    """Two real processes at once, a few trials: both commits land, nothing of either is lost."""
    for trial in range(3):
        names = (f"north{trial}", f"south{trial}")
        procs = [kubevc_gen(fleet, "region", "add", n, *ADD_ARGS, "--wait-lock", "120") for n in names]
        outputs = [p.communicate(timeout=300)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        tracked = git(fleet, "ls-files").splitlines()
        for name in names:
            assert f"regions/{name}/region.yaml" in tracked
            assert any(p.startswith(f"clusters/{name}/") for p in tracked)
            assert any(p.startswith(f"apps/{name}/") for p in tracked)
        assert_clean(fleet)
        assert git(fleet, "diff", "--cached", "--name-only") == ""
    code, out = finished(fleet, "render", "--check")
    assert code == 0, out


# --------------------------------------------------------------------------- crashes


def test_kill_at_each_journal_step_leaves_old_or_new_and_recovers(fleet: Path) -> None:
    """SIGKILL at seeded steps of `region add`'s write; the next command rolls back and says so."""
    steps = [1, *random.Random(SEED).sample(range(2, 36), 4)]
    for trial, step in enumerate(sorted(set(steps))):
        old_head = git(fleet, "rev-parse", "HEAD").strip()
        name = f"crash{trial}"
        code, out = finished(fleet, "region", "add", name, *ADD_ARGS, env={FAULT_STEP_ENV: str(step)})
        assert code in (0, -signal.SIGKILL), out
        assert_consistent(fleet, old_head)
        landed = git(fleet, "rev-parse", "HEAD").strip() != old_head
        code, out = finished(fleet, "render")
        assert code == 0, out
        if code == 0 and not landed and step > 1:
            assert "recovered: rolled back an interrupted" in out or "nothing to change" in out, out
        assert len([line for line in out.splitlines() if line.startswith("recovered:")]) <= 1
        assert_clean(fleet)
        assert git(fleet, "diff", "--cached", "--name-only") == ""
        if not landed:  # the command can simply be run again
            code, out = finished(fleet, "region", "add", name, *ADD_ARGS)
            assert code == 0, out
        assert f"regions/{name}/region.yaml" in git(fleet, "ls-files")


def test_kill_after_a_random_delay(fleet: Path) -> None:
    """SIGKILL at a seeded random moment of a `render` after hand edits; then all is consistent."""
    rng = random.Random(SEED)
    for trial in range(4):
        spec = fleet / "regions/seoul/region.yaml"
        spec.write_text(
            spec.read_text().replace(
                f"monitoring: {'true' if trial % 2 == 0 else 'false'}",
                f"monitoring: {'false' if trial % 2 == 0 else 'true'}",
            )
        )
        old_head = git(fleet, "rev-parse", "HEAD").strip()
        proc = kubevc_gen(fleet, "render")
        time.sleep(rng.uniform(0.2, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert_consistent(fleet, old_head)
        code, out = finished(fleet, "render")
        assert code == 0, out
        assert_clean(fleet)
        code, out = finished(fleet, "render", "--check")
        assert code == 0, out


def test_stale_index_lock_is_removed_and_said(gen: Gen, fleet: Path) -> None:
    (fleet / ".git" / "index.lock").write_text("")
    result = gen("region", "set", "seoul", "monitoring=false")
    assert result.exit_code == 0, result.output
    assert "removed a stale .git/index.lock" in result.output
    assert git(fleet, "log", "-1", "--format=%s").startswith("region set seoul")
    assert_clean(fleet)


def test_leftovers_of_a_killed_write_are_rolled_back(gen: Gen, fleet: Path) -> None:
    """A journal left by a dead process: its files, temp files and half-staged index are undone."""
    before = snapshot(fleet)
    code, out = finished(fleet, "region", "add", "half", *ADD_ARGS, env={FAULT_STEP_ENV: "8"})
    assert code == -signal.SIGKILL, out
    assert (fleet / ".git" / "kubevc-gen" / "txn" / "journal.json").is_file()
    result = gen("region", "set", "seoul", "monitoring=false", "--dry-run")
    assert result.exit_code == 0
    recovered = [line for line in result.output.splitlines() if line.startswith("recovered:")]
    assert len(recovered) == 1 and "region add half" in recovered[0], result.output
    assert snapshot(fleet) == before


# --------------------------------------------------------------------------- render and branches


def test_render_commits_the_spec_edits_it_rendered_from(gen: Gen, fleet: Path) -> None:
    spec = fleet / "regions/seoul/region.yaml"
    spec.write_text(spec.read_text().replace("monitoring: true", "monitoring: false"))
    result = gen("render")
    assert result.exit_code == 0, result.output
    assert "regions/seoul/region.yaml" in result.output
    assert git(fleet, "status", "--porcelain") == ""
    assert "regions/seoul/region.yaml" in git(fleet, "show", "--name-only", "--format=", "HEAD").split()


def test_branch_option_returns_to_the_starting_branch(gen: Gen, fleet: Path) -> None:
    before = snapshot(fleet)
    result = gen("region", "set", "seoul", "monitoring=false", "--branch", "review-seoul")
    assert result.exit_code == 0, result.output
    assert "you stay on main" in result.output
    after = snapshot(fleet)
    assert (after.status, after.head, after.index, after.files) == (
        before.status,
        before.head,
        before.index,
        before.files,
    )
    assert "monitoring: false" in git(fleet, "show", "review-seoul:regions/seoul/region.yaml")
    # the next command commits on main, not on the review branch
    assert gen("region", "set", "busan", "monitoring=false").exit_code == 0
    assert git(fleet, "log", "-1", "--format=%s", "main").startswith("region set busan")


def test_mutating_command_refuses_another_branch(gen: Gen, fleet: Path) -> None:
    git(fleet, "switch", "-q", "-c", "experiment")
    before = snapshot(fleet)
    result = gen("region", "set", "seoul", "monitoring=false")
    assert result.exit_code == 5, result.output
    assert "not the fleet's branch 'main'" in result.output and "--allow-other-branch" in result.output
    assert snapshot(fleet) == before
    assert gen("region", "set", "seoul", "monitoring=false", "--dry-run").exit_code == 0
    allowed = gen("region", "set", "seoul", "monitoring=false", "--allow-other-branch")
    assert allowed.exit_code == 0, allowed.output
    assert git(fleet, "log", "-1", "--format=%s", "experiment").startswith("region set seoul")


def test_render_check_runs_on_a_detached_checkout(gen: Gen, fleet: Path) -> None:
    """CI checks out a commit, not a branch: `render --check` (read-only) still runs there."""
    git(fleet, "switch", "-q", "--detach", "HEAD")
    result = gen("render", "--check")
    assert result.exit_code == 0, result.output
    refused = gen("render")
    assert refused.exit_code == 5 and "detached HEAD" in refused.output
