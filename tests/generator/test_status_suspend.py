"""``kubevc-gen suspend``/``resume``: one commit in a real git fleet repo, then a live merge-patch.

The live side is an API contract test against the local HTTPS region API (kubeapi_contract).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ..kubeapi import make_pki
from .conftest import Gen, git, snapshot
from .kubeapi_contract import KUSTOMIZE, Fleetside, healthy_objects
from .test_flux_crds import _strict

CHILDREN = ["apps", "infra-configs", "infra-controllers"]


@pytest.fixture
def side(tmp_path: Path, fleet: Path) -> Iterator[Fleetside]:
    regions = Fleetside(make_pki(tmp_path), tmp_path)
    regions.add("seoul", healthy_objects(git(fleet, "rev-parse", "HEAD").strip(), "seoul"))
    yield regions
    regions.close()


def _docs(fleet: Path, rel: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((fleet / rel).read_text()) if isinstance(d, dict)]


def _suspend_flags(fleet: Path, region: str) -> dict[str, bool | None]:
    flags: dict[str, bool | None] = {}
    for rel in ("flux-system/gotk-sync.yaml", "infrastructure.yaml", "apps.yaml"):
        for doc in _docs(fleet, f"clusters/{region}/{rel}"):
            if doc["kind"] == "Kustomization":
                flags[doc["metadata"]["name"]] = doc["spec"].get("suspend")
    return flags


def test_suspend_resume_api_contract_git_and_live(
    gen: Gen, fleet: Path, side: Fleetside, shared_dir: Path
) -> None:
    kubeconfig = str(side.kubeconfig())
    before = git(fleet, "rev-parse", "HEAD").strip()
    result = gen("suspend", "seoul", "--kubeconfig", kubeconfig)
    assert result.exit_code == 0, result.output
    # one commit, with the region spec and the rendered Kustomizations, nothing of busan
    assert git(fleet, "rev-list", "--count", f"{before}..HEAD").strip() == "1"
    assert git(fleet, "log", "-1", "--format=%s").strip() == (
        "suspend seoul: Flux Kustomizations suspended (maintenance window)"
    )
    changed = git(fleet, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(changed) == [
        "clusters/seoul/apps.yaml",
        "clusters/seoul/infrastructure.yaml",
        "regions/seoul/region.yaml",
    ]
    assert git(fleet, "status", "--porcelain").strip() == ""
    assert yaml.safe_load((fleet / "regions/seoul/region.yaml").read_text())["suspended"] is True
    assert _suspend_flags(fleet, "seoul") == {
        "flux-system": None,  # the sync stays live so `resume` reaches the region
        "infra-controllers": True,
        "infra-configs": True,
        "apps": True,
    }
    assert "suspend: true" in (fleet / "clusters/seoul/apps.yaml").read_text()
    # the rendered objects are still valid Flux Kustomizations (strict upstream schema)
    crd = yaml.safe_load((shared_dir / "crds/kustomize.toolkit.fluxcd.io_kustomizations.yaml").read_text())
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]
    validator = jsonschema.Draft7Validator(_strict(copy.deepcopy(schema)))
    for doc in _docs(fleet, "clusters/seoul/apps.yaml") + _docs(fleet, "clusters/seoul/infrastructure.yaml"):
        assert list(validator.iter_errors(doc)) == []
    # live: a merge-patch of spec.suspend on every Kustomization but the flux-system sync
    patches = side.servers["seoul"].patches()
    assert [(p.path, p.content_type, p.body) for p in patches] == [
        (f"{KUSTOMIZE}/{name}", "application/merge-patch+json", {"spec": {"suspend": True}})
        for name in ("infra-controllers", "infra-configs", "apps")
    ]
    assert "live: suspended on context seoul: infra-controllers, infra-configs, apps" in result.output
    live = side.servers["seoul"].state.kustomizations
    assert live["apps"]["spec"]["suspend"] is True and "suspend" not in live["flux-system"]["spec"]

    # status: the region has not fetched the suspend commit yet...
    head = git(fleet, "rev-parse", "HEAD").strip()
    doc = json.loads(gen("status", "seoul", "--kubeconfig", kubeconfig, "-o", "json").output)
    seoul = doc["regions"][0]
    assert seoul["verdict"] == "out-of-sync" and seoul["reason"].startswith("behind by 1 commit(s)")
    # ...once Flux has it, the suspension is marked and the verdict stays ok (maintenance, not a fault)
    state = side.servers["seoul"].state
    fresh = healthy_objects(head, "seoul")
    state.gitrepositories = fresh["gitrepositories"]
    for name, obj in state.kustomizations.items():
        obj["status"] = fresh["kustomizations"][name]["status"]
    doc = json.loads(gen("status", "seoul", "--kubeconfig", kubeconfig, "-o", "json").output)
    seoul = doc["regions"][0]
    assert seoul["verdict"] == "ok" and seoul["specSuspended"] is True, seoul
    assert sorted(k["name"] for k in seoul["kustomizations"] if k["suspended"]) == CHILDREN

    # a second suspend changes nothing in git
    again = gen("suspend", "seoul", "--no-live")
    assert again.exit_code == 0 and "nothing to change" in again.output

    side.servers["seoul"].state.requests.clear()
    result = gen("resume", "seoul", "--kubeconfig", kubeconfig)
    assert result.exit_code == 0, result.output
    assert git(fleet, "log", "-1", "--format=%s").strip() == "resume seoul: Flux Kustomizations resumed"
    assert "suspended" not in (fleet / "regions/seoul/region.yaml").read_text()
    assert set(_suspend_flags(fleet, "seoul").values()) == {None}
    # resumed: the tree is byte-identical to the one before `suspend`
    assert git(fleet, "diff", "--stat", before, "HEAD").strip() == ""
    patches = side.servers["seoul"].patches()
    assert [p.path.rsplit("/", 1)[1] for p in patches] == ["infra-controllers", "infra-configs", "apps"]
    for patch in patches:
        assert patch.content_type == "application/merge-patch+json"
        assert patch.body["spec"] == {"suspend": False}
        assert set(patch.body["metadata"]["annotations"]) == {"reconcile.fluxcd.io/requestedAt"}
    assert side.servers["seoul"].state.kustomizations["apps"]["spec"]["suspend"] is False


def test_suspend_api_contract_no_live_and_unreachable(gen: Gen, fleet: Path, side: Fleetside) -> None:
    kubeconfig = str(side.kubeconfig())
    result = gen("suspend", "seoul", "--no-live", "--kubeconfig", kubeconfig)
    assert result.exit_code == 0, result.output
    assert side.servers["seoul"].state.requests == []
    assert _suspend_flags(fleet, "seoul")["apps"] is True
    # busan has no context in this kubeconfig: git changes, the live side is reported, no traceback
    result = gen("suspend", "busan", "--kubeconfig", kubeconfig)
    assert result.exit_code == 0
    assert "live: busan not changed (kube context 'busan' is not in kubeconfig" in result.output
    assert git(fleet, "log", "-1", "--format=%s").startswith("suspend busan")
    side.servers["seoul"].state.mode = "slow"
    result = gen("resume", "seoul", "--kubeconfig", kubeconfig, "--timeout", "1s")
    assert result.exit_code == 0 and "live: seoul not changed (no answer within 1s" in result.output
    assert _suspend_flags(fleet, "seoul")["apps"] is None


def test_suspend_bad_input_changes_nothing(gen: Gen, fleet: Path, side: Fleetside) -> None:
    before = snapshot(fleet)
    for args in (
        ("suspend", "nosuch"),
        ("resume", "Bad_Name"),
        ("suspend", "seoul", "--dry-run", "--no-commit"),
    ):
        result = gen(*args, "--kubeconfig", str(side.kubeconfig()))
        assert result.exit_code == 5, (args, result.output)
        assert "Traceback" not in result.output
    dry = gen("suspend", "seoul", "--dry-run", "--kubeconfig", str(side.kubeconfig()))
    assert dry.exit_code == 0 and "+suspended: true" in dry.output.splitlines()
    assert sum(1 for line in dry.output.splitlines() if re.fullmatch(r"\+ +suspend: true", line)) == 3
    assert snapshot(fleet) == before
    assert side.servers["seoul"].state.requests == []


def test_suspend_api_contract_on_a_review_branch_leaves_the_cluster(
    gen: Gen, fleet: Path, side: Fleetside
) -> None:
    result = gen("suspend", "seoul", "--branch", "maint-seoul", "--kubeconfig", str(side.kubeconfig()))
    assert result.exit_code == 0, result.output
    assert "live: not changed (the git change is on branch maint-seoul)" in result.output
    assert git(fleet, "log", "-1", "--format=%s", "maint-seoul").startswith("suspend seoul")
    assert side.servers["seoul"].state.requests == []
