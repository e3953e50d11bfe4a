"""Bad input: a clear error, a non-zero exit code, and the repo exactly as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Gen, git, run_gen, snapshot

ADD = ["region", "add"]
OK_STORAGE = ["--nfs-server", "nas", "--nfs-path", "/models"]
EP = ["--api-endpoint", "https://10.7.0.1:6443"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param([*ADD, "../x", *EP, *OK_STORAGE], "DNS-1123", id="name-escapes-repo"),
        pytest.param([*ADD, "a/b", *EP, *OK_STORAGE], "DNS-1123", id="name-with-slash"),
        pytest.param([*ADD, "Daegu", *EP, *OK_STORAGE], "DNS-1123", id="name-uppercase"),
        pytest.param([*ADD, "seoul", *EP, *OK_STORAGE], "already exists", id="duplicate-region"),
        pytest.param(
            [*ADD, "daegu", "--api-endpoint", "10.7.0.1:6443", *OK_STORAGE],
            "https:// URL",
            id="endpoint-not-url",
        ),
        pytest.param(
            [*ADD, "daegu", "--api-endpoint", "https://:6443", *OK_STORAGE],
            "https:// URL",
            id="endpoint-no-host",
        ),
        pytest.param(
            [*ADD, "daegu", *EP, *OK_STORAGE, "--pod-cidr", "10.42.0.0/40"],
            "not a valid CIDR",
            id="invalid-cidr",
        ),
        pytest.param(
            [*ADD, "daegu", *EP, *OK_STORAGE, "--pod-cidr", "10.0.0.0/8"], "overlap", id="overlapping-cidrs"
        ),
        pytest.param([*ADD, "daegu", *EP], "needs model storage", id="no-storage"),
        pytest.param(
            [*ADD, "daegu", *EP, *OK_STORAGE, "--iscsi-lun", "1"], "choose one storage", id="two-storages"
        ),
        pytest.param(
            [*ADD, "daegu", *EP, *OK_STORAGE, "--git-url", "not a url"], "git url", id="bad-git-url"
        ),
        pytest.param(
            [*ADD, "daegu", *EP, *OK_STORAGE, "--branch", "bad..name"],
            "not a valid git branch",
            id="bad-branch",
        ),
        pytest.param(
            [*ADD, "daegu", *EP, *OK_STORAGE, "--branch", "main"], "already exists", id="existing-branch"
        ),
        pytest.param(
            ["region", "set", "seoul", "monitorng=false"],
            "unknown key 'monitorng' (did you mean 'monitoring'?",
            id="set-typo",
        ),
        pytest.param(
            ["region", "set", "seoul", "storage.nfs.sever=x"],
            "unknown key 'storage.nfs.sever'",
            id="set-nested-typo",
        ),
        pytest.param(["region", "set", "seoul", "monitoring=maybe"], "monitoring", id="set-wrong-type"),
        pytest.param(["region", "set", "seoul", "podCidr=10.43.0.0/16"], "overlap", id="set-overlap"),
        pytest.param(["region", "set", "seoul", "apiEndpoint=ftp://x"], "https:// URL", id="set-endpoint"),
        pytest.param(["region", "set", "seoul", "name=other"], "name cannot be changed", id="set-name"),
        pytest.param(["region", "set", "seoul", "novalue"], "KEY=VALUE", id="set-no-equals"),
        pytest.param(["region", "set", "nowhere", "monitoring=false"], "not found", id="set-unknown-region"),
        pytest.param(["region", "remove", "nowhere"], "not found", id="remove-unknown-region"),
        pytest.param(["region", "remove", "../regions"], "DNS-1123", id="remove-escape"),
        pytest.param(["region", "show", "../../etc"], "DNS-1123", id="show-escape"),
        pytest.param(
            ["render", "--dry-run", "--no-commit"], "cannot be combined", id="dry-run-and-no-commit"
        ),
    ],
)
def test_bad_input_changes_nothing(gen: Gen, fleet: Path, args: list[str], needle: str) -> None:
    before = snapshot(fleet)
    result = gen(*args)
    assert result.exit_code != 0
    assert needle in result.output, result.output
    assert "Traceback" not in result.output
    assert snapshot(fleet) == before


def test_typo_in_region_yaml_names_file_line_and_key(gen: Gen, fleet: Path) -> None:
    path = fleet / "regions/seoul/region.yaml"
    path.write_text(path.read_text().replace("monitoring: true", "monitoring: true\nmonitorng: false"))
    git(fleet, "commit", "-qam", "typo by hand")
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("monitorng"))
    for args in (
        ["render"],
        ["region", "list"],
        ["region", "add", "daegu", *EP, *OK_STORAGE],
        ["region", "set", "seoul", "monitoring=false"],
    ):
        before = snapshot(fleet)
        result = gen(*args)
        assert result.exit_code != 0, args
        assert f"regions/seoul/region.yaml:{line}: monitorng: unknown key" in result.output, result.output
        assert snapshot(fleet) == before


def test_wrong_type_in_region_yaml(gen: Gen, fleet: Path) -> None:
    path = fleet / "regions/busan/region.yaml"
    path.write_text(path.read_text().replace("lun: 0", "lun: zero"))
    before = snapshot(fleet)
    result = gen("render")
    assert result.exit_code != 0
    assert "regions/busan/region.yaml:" in result.output and "storage.iscsi.lun" in result.output
    assert snapshot(fleet) == before


def test_invalid_yaml_syntax(gen: Gen, fleet: Path) -> None:
    path = fleet / "regions/busan/region.yaml"
    path.write_text(path.read_text() + "nodes: [unclosed\n")
    before = snapshot(fleet)
    result = gen("render")
    assert (
        result.exit_code != 0
        and "regions/busan/region.yaml:" in result.output
        and "invalid YAML" in result.output
    )
    assert snapshot(fleet) == before


def test_outside_a_fleet_repo(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "keep.txt").write_text("x")
    for args in (["render"], ["region", "list"], ["validate", "--no-checkov"], [*ADD, "x", *EP, *OK_STORAGE]):
        result = run_gen(*args, fleet=tmp_path / "plain")
        assert result.exit_code != 0
        assert "not a kubevc fleet repo" in result.output
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["keep.txt"]


def test_failure_during_write_rolls_everything_back(
    gen: Gen, fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write failing half-way (disk full, killed...) leaves work tree, index and history as before."""
    from kubevc.generator.repo import _apply as gitops  # where apply_change writes

    before = snapshot(fleet)
    real = gitops.atomic_write
    calls = {"n": 0}

    def flaky(path: Path, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(gitops, "atomic_write", flaky)
    with pytest.raises(OSError):
        gen("region", "add", "daegu", *EP, *OK_STORAGE)
    assert calls["n"] >= 5
    assert snapshot(fleet) == before


def test_failing_commit_rolls_back_branch_and_files(gen: Gen, fleet: Path) -> None:
    """A pre-existing hook does not run (--no-verify), so break the commit another way: a locked ref."""
    before = snapshot(fleet)
    lock = fleet / ".git" / "refs" / "heads" / "review.lock"
    lock.write_text("")
    try:
        result = gen("region", "set", "seoul", "monitoring=false", "--branch", "review")
        assert result.exit_code != 0
    finally:
        lock.unlink()
    assert snapshot(fleet) == before
