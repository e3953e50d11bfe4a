"""region add/list/show/set/remove through the real CLI on real git repos."""

from __future__ import annotations

from pathlib import Path

import yaml

from .conftest import Gen, git, snapshot


def test_add_commits_once_with_a_clear_message(gen: Gen, fleet: Path) -> None:
    before = git(fleet, "rev-parse", "HEAD").strip()
    result = gen(
        "region",
        "add",
        "daegu",
        "--api-endpoint",
        "https://10.7.0.1:6443",
        "--arch",
        "arm64",
        "--arch",
        "armhf",
        "--nfs-server",
        "nas",
        "--nfs-path",
        "/models",
        "--no-monitoring",
    )
    assert result.exit_code == 0, result.output
    assert git(fleet, "log", "-1", "--format=%s").strip() == "region add daegu (k3s, arm64, armhf)"
    assert git(fleet, "rev-list", "--count", f"{before}..HEAD").strip() == "1"
    assert git(fleet, "status", "--porcelain") == ""
    changed = set(git(fleet, "show", "--name-only", "--format=", "HEAD").split())
    assert "regions/daegu/region.yaml" in changed
    assert "clusters/daegu/flux-system/gotk-sync.yaml" in changed
    assert all("seoul" not in p and "busan" not in p for p in changed)
    # monitoring off: no infra-controllers, no monitoring app
    infra = list(yaml.safe_load_all((fleet / "clusters/daegu/infrastructure.yaml").read_text()))
    assert [d["metadata"]["name"] for d in infra if d] == ["infra-configs"]
    assert not (fleet / "apps/daegu/kubevc-monitoring-values.yaml").exists()


def test_list_and_show(gen: Gen) -> None:
    listed = gen("region", "list")
    assert listed.exit_code == 0
    assert "seoul" in listed.output and "busan" in listed.output and "kubeadm" in listed.output
    shown = gen("region", "show", "busan")
    assert shown.exit_code == 0
    assert "iqn.2026-01.kr.busan:models" in shown.output and "podCidr: 10.244.0.0/16" in shown.output


def test_set_keeps_comments_and_key_order(gen: Gen, fleet: Path) -> None:
    path = fleet / "regions/seoul/region.yaml"
    text = path.read_text().replace("monitoring: true", "monitoring: true  # operators want graphs")
    text = "# owned by the seoul team\n" + text
    path.write_text(text)
    git(fleet, "commit", "-qam", "comment")
    result = gen(
        "region", "set", "seoul", "storage.nfs.path=/export/models2", "nodes.0={host: 10.8.0.2, role: server}"
    )
    assert result.exit_code == 0, result.output
    new = path.read_text()
    assert "# owned by the seoul team" in new and "# operators want graphs" in new
    keys = [line.split(":")[0] for line in new.splitlines() if line and not line.startswith((" ", "#", "-"))]
    assert keys[:4] == ["name", "apiEndpoint", "distribution", "architectures"]
    assert "path: /export/models2" in new
    assert git(fleet, "log", "-1", "--format=%s").strip() == "region set seoul storage.nfs.path, nodes.0"
    values = yaml.safe_load((fleet / "apps/seoul/kubevc-model-store-values.yaml").read_text())
    assert "/export/models2" in values["data"]["values.yaml"]


def test_set_monitoring_off_rerenders(gen: Gen, fleet: Path) -> None:
    assert gen("region", "set", "busan", "monitoring=false").exit_code == 0
    assert not (fleet / "apps/busan/kubevc-monitoring-values.yaml").exists()
    kust = yaml.safe_load((fleet / "apps/busan/kustomization.yaml").read_text())
    assert "../base/kubevc-monitoring" not in kust["resources"]


def test_remove_removes_only_that_region(gen: Gen, fleet: Path) -> None:
    user_file = fleet / "apps/busan/extra.sops.yaml"
    user_file.write_text("kind: ConfigMap\n")
    git(fleet, "add", "-A")
    git(fleet, "commit", "-qm", "user file")
    seoul_before = {p: p.read_bytes() for p in fleet.rglob("*") if p.is_file() and "seoul" in p.as_posix()}
    result = gen("region", "remove", "busan")
    assert result.exit_code == 0, result.output
    for top in ("regions", "clusters", "apps"):
        assert not (fleet / top / "busan").exists()
    assert (fleet / "apps/base/kubevc-serving/helmrelease.yaml").exists()
    assert {p: p.read_bytes() for p in seoul_before} == seoul_before
    assert git(fleet, "status", "--porcelain") == ""
    assert git(fleet, "log", "-1", "--format=%s").strip() == "region remove busan"


def test_a_damaged_region_can_be_removed(gen: Gen, fleet: Path) -> None:
    """Its file is not read: a region whose spec no longer parses is still removed."""
    (fleet / "regions/busan/region.yaml").write_text("name: busan\nnodes: [unclosed\n")
    git(fleet, "commit", "-qam", "damaged by hand")
    result = gen("region", "remove", "busan")
    assert result.exit_code == 0, result.output
    assert not (fleet / "regions/busan").exists()
    assert gen("render", "--check").exit_code == 0


def test_branch_option_creates_a_review_branch(gen: Gen, fleet: Path) -> None:
    main_head = git(fleet, "rev-parse", "main").strip()
    result = gen("region", "set", "seoul", "monitoring=false", "--branch", "seoul-no-monitoring")
    assert result.exit_code == 0, result.output
    assert "git -C" in result.output and "push -u origin seoul-no-monitoring" in result.output
    # the work tree stays on main, untouched; the commit is on the new branch only
    assert git(fleet, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert git(fleet, "rev-parse", "main").strip() == main_head
    assert git(fleet, "rev-parse", "seoul-no-monitoring~1").strip() == main_head
    assert git(fleet, "status", "--porcelain") == ""
    assert "monitoring: false" in git(fleet, "show", "seoul-no-monitoring:regions/seoul/region.yaml")


def test_no_commit_leaves_the_change_staged(gen: Gen, fleet: Path) -> None:
    head = git(fleet, "rev-parse", "HEAD")
    result = gen("region", "set", "seoul", "monitoring=false", "--no-commit")
    assert result.exit_code == 0, result.output
    assert git(fleet, "rev-parse", "HEAD") == head
    staged = git(fleet, "diff", "--cached", "--name-only").split()
    assert "regions/seoul/region.yaml" in staged
    assert git(fleet, "diff", "--name-only") == ""  # nothing unstaged


def test_dry_run_prints_a_diff_and_writes_nothing(gen: Gen, fleet: Path) -> None:
    before = snapshot(fleet)
    result = gen("region", "set", "seoul", "monitoring=false", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "-monitoring: true" in result.output and "+monitoring: false" in result.output
    assert "dry run" in result.output
    assert snapshot(fleet) == before


def test_set_then_unset_an_optional_key(gen: Gen, fleet: Path) -> None:
    assert gen("region", "set", "seoul", "kubeContext=edge-seoul").exit_code == 0
    assert "kubeContext: edge-seoul" in (fleet / "regions/seoul/region.yaml").read_text()
    assert gen("region", "set", "seoul", "kubeContext=").exit_code == 0
    assert "kubeContext" not in (fleet / "regions/seoul/region.yaml").read_text()
    shown = gen("region", "show", "seoul")
    assert "kubeContext: seoul" in shown.output  # back to the default
    assert git(fleet, "log", "-2", "--format=%s").split("\n")[:2] == [
        "region set seoul kubeContext",
        "region set seoul kubeContext",
    ]


def test_fleet_write_regions_is_one_operation(fleet: Path) -> None:
    """The API `node add` builds on: validate, write (comments kept), render, one commit."""
    from kubevc.generator.repo import ChangeOptions, Fleet
    from kubevc.generator.spec import NodeSpec
    from kubevc.generator.workflows import write_regions

    path = fleet / "regions/busan/region.yaml"
    path.write_text("# busan: the harbour site\n" + path.read_text())
    git(fleet, "commit", "-qam", "comment")
    handle = Fleet.find(fleet)
    spec = handle.load("busan")
    spec.nodes.append(NodeSpec(host="10.9.0.11", role="server", sshUser="pi"))  # type: ignore[call-arg]
    result = write_regions(handle, [spec], message="node add busan 10.9.0.11 (server)")
    assert result.commit is not None
    assert git(fleet, "log", "-1", "--format=%s").strip() == "node add busan 10.9.0.11 (server)"
    assert path.read_text().startswith("# busan: the harbour site\n")
    assert handle.load("busan").nodes[0].ssh_user == "pi"
    assert git(fleet, "status", "--porcelain") == ""
    dry = write_regions(
        handle, [spec.model_copy(update={"monitoring": False})], "x", ChangeOptions(dry_run=True)
    )
    assert dry.commit is None and "+monitoring: false" in dry.diff
