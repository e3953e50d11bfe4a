"""`kubevc-gen node prepare` records each node's inventory in region.yaml (one commit); `--dry-run`
prints it and changes nothing. The fast tests stand in for pyinfra (the facts are tested in
test_inventory_facts.py / test_inventory_chroot.py); one test runs the real fact in the Debian root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import yaml

from kubevc.generator.cli import _node
from kubevc.nodeprep import testing
from kubevc.nodeprep.plans.inventory import parse_inventory
from kubevc.nodeprep.prepare import PrepareOptions
from kubevc.nodeprep.runner import RunReport, Target

from .test_cli_node import _isolated_git, fleet, git, run, tree  # noqa: F401 (fixtures)
from .test_inventory_chroot import install_device
from .test_inventory_facts import DEVICES, recorded_fact_output

FreshRoot = Callable[[Path | None], Path]


def fake_prepare(device: str) -> Callable[..., RunReport]:
    def prepare(targets: Iterable[Target], options: PrepareOptions, **kwargs: object) -> RunReport:
        for target in targets:
            assert options.on_inventory is not None
            options.on_inventory(target.name, parse_inventory(recorded_fact_output(DEVICES / device)))
        return RunReport(dry_run=bool(kwargs.get("dry_run")))

    return prepare


def region_nodes(root: Path, region: str) -> list[dict[str, object]]:
    data = yaml.safe_load((root / f"regions/{region}/region.yaml").read_text())
    nodes: list[dict[str, object]] = data["nodes"]
    return nodes


def add_node(root: Path, region: str, host: str, tmp_path: Path) -> None:
    key = tmp_path / "id_test"
    key.write_text("not a real key\n")
    assert run("node", "add", region, host, "--ssh-key", str(key), fleet=root).exit_code == 0


def test_prepare_records_inventory_in_one_commit(
    fleet: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    add_node(fleet, "seoul", "10.8.0.21", tmp_path)
    head = git(fleet, "rev-parse", "HEAD").strip()
    monkeypatch.setattr(_node, "prepare_nodes", fake_prepare("rpi4-coral-usb"))
    result = run("node", "prepare", "seoul", fleet=fleet)
    assert result.exit_code == 0, result.output
    assert git(fleet, "rev-list", "--count", f"{head}..HEAD").strip() == "1"
    assert "node prepare seoul: inventory of 10.8.0.21" in git(fleet, "log", "-1", "--format=%s")
    (node,) = region_nodes(fleet, "seoul")
    assert node["inventory"] == {
        "arch": "arm64",
        "cpuModel": "Raspberry Pi 4 Model B Rev 1.4",
        "cpus": 4,
        "memoryMiB": 3791,
        "accelerators": [
            {"kind": "coral", "count": 1, "model": "Coral USB Accelerator", "devices": ["18d1:9302"]}
        ],
    }
    again = run("node", "prepare", "seoul", fleet=fleet)
    assert again.exit_code == 0 and "nothing to change" in again.output
    assert git(fleet, "rev-list", "--count", f"{head}..HEAD").strip() == "1"


def test_prepare_dry_run_prints_inventory_changes_nothing(
    fleet: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    add_node(fleet, "busan", "10.9.0.21", tmp_path)
    before = (tree(fleet), git(fleet, "rev-parse", "HEAD"))
    monkeypatch.setattr(_node, "prepare_nodes", fake_prepare("rtx3060-workstation"))
    result = run("node", "prepare", "busan", "--dry-run", fleet=fleet)
    assert result.exit_code == 0, result.output
    assert "inventory of 10.9.0.21:" in result.output
    assert "model: GeForce RTX 3060 Lite Hash Rate" in result.output
    assert "dry run:" in result.output
    assert (tree(fleet), git(fleet, "rev-parse", "HEAD")) == before


@pytest.mark.chroot
@pytest.mark.slow
def test_prepare_dry_run_reads_the_real_fact(fleet: Path, fresh_root: FreshRoot) -> None:  # noqa: F811
    root = fresh_root(None)
    install_device(root, DEVICES / "m2-coral-server")
    assert run("node", "add", "seoul", f"@chroot{root}", fleet=fleet).exit_code == 0
    before = (tree(fleet), git(fleet, "rev-parse", "HEAD"), testing.tree_digest(root))
    result = run("node", "prepare", "seoul", "--dry-run", fleet=fleet)
    assert result.exit_code == 0, result.output
    assert "- /dev/apex_0" in result.output and "kind: coral" in result.output
    assert (tree(fleet), git(fleet, "rev-parse", "HEAD"), testing.tree_digest(root)) == before
