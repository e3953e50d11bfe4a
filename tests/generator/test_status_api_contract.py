"""API contract tests: ``kubevc-gen status`` and ``reconcile`` against local HTTPS region APIs.

Three regions of a real fleet repo, each with its own API server (kubeapi_contract.RegionApi):
seoul healthy, busan with a failing HelmRelease, jeju never answering. The real CLI, the real
``kubernetes`` client, a kubeconfig with the test CA.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ..kubeapi import Pki, make_pki
from .conftest import git, isolated_git, run_gen
from .kubeapi_contract import (
    HELM,
    KUSTOMIZE,
    SOURCE,
    Fleetside,
    git_repository,
    healthy_objects,
    helm_release,
    node,
)
from .test_flux_crds import _strict

JEJU = [
    "region", "add", "jeju", "--api-endpoint", "https://10.10.0.1:6443", "--arch", "arm64",
    "--nfs-server", "10.10.0.10", "--nfs-path", "/export/models",
]  # fmt: skip
SEOUL_MODELS = "models=[{name: mobilenet, basePath: /models/mobilenet}]"
FAILED_MESSAGE = (
    "Helm install failed for release kubevc/kubevc-serving with chart kubevc-serving@0.1.0: "
    "context deadline exceeded"
)
# Long enough for healthy stand-ins to answer on a loaded machine (load average 8 on 2 cores):
# healthy regions must answer within it, so it is a wall-clock budget, never under 10 s.
TIMEOUT = 10.0
# A command bounded by its --timeout ends within twice it (thread start-up, TLS, git): one
# timeout, not one per request or per region. Never a bound under 10 s (shared, noisy machines).
BOUND = 2.0


@pytest.fixture(scope="module")
def status_fleet(
    base_fleet: Path, tmp_path_factory: pytest.TempPathFactory, git_config_env: dict[str, str]
) -> Path:
    """seoul (with a model), busan and jeju, through the real CLI."""
    root = tmp_path_factory.mktemp("status") / "fleet"
    shutil.copytree(base_fleet, root, symlinks=True)
    with isolated_git(git_config_env):
        for args in (JEJU, ["region", "set", "seoul", SEOUL_MODELS]):
            result = run_gen(*args, fleet=root)
            assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _head(root: Path, rev: str = "HEAD") -> str:
    return git(root, "rev-parse", rev).strip()


def busan_objects(sha: str) -> dict[str, Any]:
    objects = healthy_objects(sha, "busan", archs=("amd64", "amd64"))
    objects["helmreleases"] = [
        helm_release("kubevc", "kubevc-serving", ready=False, reason="InstallFailed", message=FAILED_MESSAGE)
        if hr["metadata"]["name"] == "kubevc-serving"
        else hr
        for hr in objects["helmreleases"]
    ]
    for dep in objects["deployments"]:
        if dep["metadata"]["name"] == "kubevc-serving":
            dep["status"] = {"replicas": 1, "observedGeneration": 1}
    return objects


@pytest.fixture
def regions(pki: Pki, tmp_path: Path) -> Iterator[Fleetside]:
    side = Fleetside(pki, tmp_path)
    yield side
    side.close()


@pytest.fixture
def three(regions: Fleetside, status_fleet: Path) -> Fleetside:
    head = _head(status_fleet)
    regions.add("seoul", healthy_objects(head, "seoul", archs=("arm64", "arm64", "amd64")))
    regions.add("busan", busan_objects(head))
    regions.add("jeju", healthy_objects(head, "jeju"), mode="slow")
    return regions


def status(fleet: Path, kubeconfig: Path, *args: str) -> tuple[int, str, float]:
    start = time.monotonic()
    result = run_gen(
        "status", "--kubeconfig", str(kubeconfig), "--timeout", f"{TIMEOUT:g}s", *args, fleet=fleet
    )
    return result.exit_code, result.output, time.monotonic() - start


def status_json(fleet: Path, kubeconfig: Path, *args: str) -> tuple[int, dict[str, Any], float]:
    code, out, elapsed = status(fleet, kubeconfig, "-o", "json", *args)
    return code, json.loads(out), elapsed


def _rows(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["region"]: r for r in doc["regions"]}


# --------------------------------------------------------------------------- status


def test_status_api_contract_three_regions_json(three: Fleetside, status_fleet: Path) -> None:
    head = _head(status_fleet)
    code, doc, elapsed = status_json(status_fleet, three.kubeconfig())
    assert code == 3  # one region unreachable
    # the never-answering region costs one timeout, not one per request, and blocks no one
    assert elapsed < BOUND * TIMEOUT, elapsed
    rows = _rows(doc)
    assert [r["region"] for r in doc["regions"]] == ["busan", "jeju", "seoul"]
    assert {n: r["verdict"] for n, r in rows.items()} == {
        "seoul": "ok",
        "busan": "degraded",
        "jeju": "unreachable",
    }
    assert doc["schemaVersion"] == 1 and doc["fleetHead"] == head and doc["timeoutSeconds"] == TIMEOUT
    assert doc["summary"] == {
        "total": 3, "ok": 1, "degraded": 1, "outOfSync": 0, "unreachable": 1, "exitCode": 3,
    }  # fmt: skip

    seoul = rows["seoul"]
    assert seoul["context"] == "seoul" and seoul["reason"] == "" and seoul["problems"] == []
    assert seoul["api"]["reachable"] is True and seoul["api"]["version"] == "v1.32.5+k3s1"
    assert 0 < seoul["api"]["latencyMs"] < TIMEOUT * 1000
    assert seoul["nodes"] == {
        "ready": 3, "total": 3, "problems": [],
        "byArch": {"arm64": {"ready": 2, "total": 2}, "amd64": {"ready": 1, "total": 1}},
    }  # fmt: skip
    assert seoul["source"] == {
        "name": "flux-system", "revision": f"main@sha1:{head}", "ready": "True", "reason": "Succeeded",
        "message": f"stored artifact for revision 'main@sha1:{head}'", "sync": "in-sync", "behindBy": 0,
        "suspended": False,
    }  # fmt: skip
    assert [k["name"] for k in seoul["kustomizations"]] == [
        "flux-system",
        "infra-controllers",
        "infra-configs",
        "apps",
    ]
    assert all(k["ready"] == "True" and not k["suspended"] for k in seoul["kustomizations"])
    assert set(seoul["kustomizations"][0]) == {
        "kind", "namespace", "name", "ready", "reason", "message", "suspended", "lastAppliedRevision",
    }  # fmt: skip
    assert len(seoul["helmReleases"]) == 4
    assert seoul["deployments"] == [
        {"name": "kubevc-serving", "component": "serving", "ready": 1, "desired": 1},
        {"name": "kubevc-gateway", "component": "gateway", "ready": 2, "desired": 2},
    ]
    assert seoul["models"] == ["mobilenet"] and seoul["specSuspended"] is False

    busan = rows["busan"]
    failing = [h for h in busan["helmReleases"] if h["ready"] != "True"]
    assert failing == [
        {
            "kind": "HelmRelease", "namespace": "kubevc", "name": "kubevc-serving", "ready": "False",
            "reason": "InstallFailed", "message": FAILED_MESSAGE, "suspended": False,
            "lastAppliedRevision": None,
        }
    ]  # fmt: skip
    assert busan["reason"].startswith(
        "HelmRelease kubevc-serving not Ready (InstallFailed: Helm install failed"
    )
    assert "Deployment kubevc-serving: 0/1 ready" in busan["problems"]
    assert busan["source"]["sync"] == "in-sync"

    jeju = rows["jeju"]
    # The same words whether the client's own timeout or the fleet deadline cut the call off.
    assert jeju["reason"] == f"no answer within {TIMEOUT:g}s (/version)"
    assert jeju["api"] == {"reachable": False, "version": None, "latencyMs": None}
    assert jeju["nodes"] is None and jeju["source"] is None and jeju["kustomizations"] == []


def test_status_api_contract_exact_paths(three: Fleetside, status_fleet: Path) -> None:
    status_json(status_fleet, three.kubeconfig(), "seoul")
    seen = {(r.method, r.path) for r in three.servers["seoul"].state.requests}
    assert seen == {
        ("GET", "/version/"),
        ("GET", "/api/v1/nodes"),
        ("GET", SOURCE),
        ("GET", KUSTOMIZE),
        ("GET", HELM),
        (
            "GET",
            "/apis/apps/v1/namespaces/kubevc/deployments?labelSelector=app.kubernetes.io/part-of%3Dkubevc",
        ),
    }
    assert not three.servers["busan"].state.requests  # only the named region is contacted


def test_status_api_contract_table_and_exit_codes(three: Fleetside, status_fleet: Path) -> None:
    kubeconfig = three.kubeconfig()
    code, out, _ = status(status_fleet, kubeconfig)
    assert code == 3
    assert "\x1b[" not in out  # no colour when stdout is not a terminal
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 5}
    assert (
        "ok" in lines["seoul"]
        and "in sync" in lines["seoul"]
        and "serving 1/1, gateway 2/2" in lines["seoul"]
    )
    assert "degraded" in lines["busan"] and "kubevc-serving" in lines["busan"]
    assert "unreachable" in lines["jeju"] and f"no answer within {TIMEOUT:g}s" in lines["jeju"]
    assert "3/3 (amd64 1/1, arm64 2/2)" in lines["seoul"]
    assert out.rstrip().endswith("3 region(s): 1 ok, 1 degraded, 1 unreachable")
    assert status(status_fleet, kubeconfig, "seoul")[0] == 0
    assert status(status_fleet, kubeconfig, "seoul", "busan")[0] == 4


def test_status_api_contract_out_of_sync(regions: Fleetside, status_fleet: Path) -> None:
    head, previous = _head(status_fleet), _head(status_fleet, "HEAD~1")
    behind = healthy_objects(previous, "seoul")
    behind["kustomizations"]["apps"]["status"]["lastAppliedRevision"] = (
        f"main@sha1:{_head(status_fleet, 'HEAD~2')}"
    )
    regions.add("seoul", behind)
    unknown = healthy_objects(head, "busan")
    unknown["gitrepositories"] = {"flux-system": git_repository("0123456789abcdef" * 2 + "01234567")}
    regions.add("busan", unknown)
    regions.add("jeju", healthy_objects(head, "jeju"))
    code, doc, _ = status_json(status_fleet, regions.kubeconfig())
    rows = _rows(doc)
    assert code == 4
    assert {n: r["verdict"] for n, r in rows.items()} == {
        "seoul": "out-of-sync",
        "busan": "out-of-sync",
        "jeju": "ok",
    }
    assert rows["seoul"]["source"]["sync"] == "behind" and rows["seoul"]["source"]["behindBy"] == 1
    assert rows["seoul"]["reason"] == f"behind by 1 commit(s) (region at {previous[:12]}) (+1 more)"
    assert f"Kustomization apps has not applied main@sha1:{previous} yet" in rows["seoul"]["problems"]
    assert (
        rows["busan"]["source"]["sync"] == "unknown-revision" and rows["busan"]["source"]["behindBy"] is None
    )
    assert rows["busan"]["reason"].startswith("unknown revision 0123456789ab")
    assert doc["summary"]["outOfSync"] == 2 and doc["summary"]["exitCode"] == 4


def test_status_api_contract_faults_on_their_rows(regions: Fleetside, status_fleet: Path) -> None:
    head = _head(status_fleet)
    regions.add("seoul", healthy_objects(head, "seoul"), mode="unauthorized")
    regions.add("busan", healthy_objects(head, "busan"), mode="forbidden")
    regions.add("jeju", healthy_objects(head, "jeju"))
    kubeconfig = regions.kubeconfig(skip=("jeju",))  # jeju's context is missing
    names = ("seoul", "busan", "jeju", "nosuch")
    result = run_gen("status", "--kubeconfig", str(kubeconfig), "-o", "json", *names, fleet=status_fleet)
    doc = json.loads(result.output)
    rows = _rows(doc)
    assert result.exit_code == 3
    assert {n: r["verdict"] for n, r in rows.items()} == dict.fromkeys(
        ["seoul", "busan", "jeju", "nosuch"], "unreachable"
    )
    assert (
        rows["seoul"]["reason"]
        == "unauthorized (401) on /version: the API refused the credentials (expired?)"
    )
    assert rows["busan"]["reason"].startswith(
        'forbidden (403) on nodes: User "viewer" cannot access /api/v1/nodes'
    )
    assert rows["busan"]["api"]["reachable"] is True  # /version answered, the rest is forbidden
    assert rows["jeju"]["reason"] == f"kube context 'jeju' is not in kubeconfig {kubeconfig}"
    assert rows["nosuch"]["reason"] == "unknown region (no regions/nosuch/region.yaml)"
    assert rows["nosuch"]["context"] is None
    assert not regions.servers["jeju"].state.requests
    # the table shows the same rows, and nothing secret or internal leaks into either output
    table = run_gen(
        "status", "--kubeconfig", str(kubeconfig), "seoul", "busan", "jeju", "nosuch", fleet=status_fleet
    )
    for out in (result.output, table.output):
        assert "Traceback" not in out
        assert not any(s.state.token in out for s in regions.servers.values())
    assert "unknown region" in table.output and "unauthorized (401)" in table.output


def test_status_api_contract_without_flux(regions: Fleetside, status_fleet: Path) -> None:
    head = _head(status_fleet)
    objects = healthy_objects(head, "seoul")
    objects["nodes"] = [
        node("seoul-0", "arm64"),
        node("seoul-1", "arm64", ready=False, pressure="DiskPressure"),
    ]
    regions.add("seoul", objects, mode="no-flux")
    code, doc, _ = status_json(status_fleet, regions.kubeconfig(), "seoul")
    seoul = _rows(doc)["seoul"]
    assert code == 4 and seoul["verdict"] == "degraded"
    assert seoul["problems"][:3] == [
        "node seoul-1 NotReady",
        "node seoul-1 DiskPressure",
        "Flux is not installed (source.toolkit.fluxcd.io/v1 is not served: no CRDs)",
    ]
    assert seoul["nodes"]["byArch"] == {"arm64": {"ready": 1, "total": 2}}
    assert seoul["deployments"][0]["name"] == "kubevc-serving"  # the rest is still reported


def test_status_api_contract_bad_input(status_fleet: Path, tmp_path: Path) -> None:
    result = run_gen("status", "--timeout", "soon", fleet=status_fleet)
    assert result.exit_code == 2 and "is not a duration" in result.output
    result = run_gen("status", fleet=tmp_path)
    assert result.exit_code == 5 and "is not a kubevc fleet repo" in result.output
    assert "Traceback" not in result.output


def test_status_fixture_objects_match_the_flux_crds(shared_dir: Path, status_fleet: Path) -> None:
    """The contract server's objects are shaped like real Flux status (strict upstream schemas)."""
    validators = {}
    for path in sorted((shared_dir / "crds").glob("*.toolkit.fluxcd.io_*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            validators[(f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])] = (
                jsonschema.Draft7Validator(schema)
            )
    objects = busan_objects(_head(status_fleet))
    flux = [
        *objects["gitrepositories"].values(),
        *objects["kustomizations"].values(),
        *objects["helmreleases"],
    ]
    for obj in flux:
        errors = [e.message for e in validators[(obj["apiVersion"], obj["kind"])].iter_errors(obj)]
        assert errors == [], (obj["kind"], obj["metadata"]["name"], errors)


# --------------------------------------------------------------------------- reconcile

RFC3339_NANO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")


def reconcile(fleet: Path, kubeconfig: Path, *args: str) -> tuple[int, str]:
    result = run_gen("reconcile", "--kubeconfig", str(kubeconfig), *args, fleet=fleet)
    return result.exit_code, result.output


def test_reconcile_api_contract_exact_patch(three: Fleetside, status_fleet: Path) -> None:
    code, out = reconcile(status_fleet, three.kubeconfig(), "seoul")
    assert code == 0, out
    patches = three.servers["seoul"].patches()
    assert [p.path for p in patches] == [
        f"{SOURCE}/flux-system",
        f"{KUSTOMIZE}/flux-system",
        f"{KUSTOMIZE}/apps",
        f"{KUSTOMIZE}/infra-configs",
        f"{KUSTOMIZE}/infra-controllers",
    ]
    token = patches[0].body["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
    assert RFC3339_NANO.match(token), token
    for patch in patches:
        assert patch.content_type == "application/merge-patch+json"
        assert patch.body == {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}
    stored = three.servers["seoul"].state.kustomizations["apps"]
    assert stored["metadata"]["annotations"] == {"reconcile.fluxcd.io/requestedAt": token}
    assert stored["spec"]["path"] == "./apps/seoul"  # a merge patch, not a replace
    assert f"seoul: GitRepository flux-system: reconcile requested ({token})" in out
    assert not three.servers["busan"].state.requests


def test_reconcile_api_contract_wait_prints_each_ready(three: Fleetside, status_fleet: Path) -> None:
    three.servers["seoul"].state.handle_delay = 0.3
    code, out = reconcile(status_fleet, three.kubeconfig(), "seoul", "--wait", "--timeout", "10s")
    assert code == 0, out
    ready = [line for line in out.splitlines() if ": Ready" in line]
    head = _head(status_fleet)
    assert ready[0] == f"seoul: GitRepository flux-system: Ready (main@sha1:{head})"
    assert sorted(line.split(":")[1].strip() for line in ready[1:]) == [
        "Kustomization apps",
        "Kustomization flux-system",
        "Kustomization infra-configs",
        "Kustomization infra-controllers",
    ]


def test_reconcile_api_contract_wait_times_out(three: Fleetside, status_fleet: Path) -> None:
    state = three.servers["seoul"].state
    state.handle_delay = 60  # the controllers never get to it
    start = time.monotonic()
    code, out = reconcile(status_fleet, three.kubeconfig(), "seoul", "--wait", "--timeout", f"{TIMEOUT:g}s")
    assert code == 4
    assert time.monotonic() - start < BOUND * TIMEOUT  # handle_delay is 60 s
    assert (
        "seoul: Kustomization apps: not Ready before the timeout (ReconciliationSucceeded: Applied revision"
        in out
    )


def test_reconcile_api_contract_all_regions(three: Fleetside, status_fleet: Path) -> None:
    kustomizations = three.servers["busan"].state.kustomizations
    kustomizations["apps"]["spec"]["suspend"] = True
    start = time.monotonic()
    code, out = reconcile(status_fleet, three.kubeconfig(), "--all-regions", "--timeout", f"{TIMEOUT:g}s")
    assert code == 3  # jeju never answers
    assert time.monotonic() - start < BOUND * TIMEOUT
    assert f"jeju: not reconciled: no answer within {TIMEOUT:g}s" in out
    assert "busan: Kustomization apps: skipped (suspended)" in out
    assert [p.path.rsplit("/", 1)[1] for p in three.servers["busan"].patches()] == [
        "flux-system", "flux-system", "infra-configs", "infra-controllers",
    ]  # fmt: skip
    assert len(three.servers["seoul"].patches()) == 5


def test_reconcile_bad_input(status_fleet: Path, tmp_path: Path) -> None:
    assert run_gen("reconcile", fleet=status_fleet).exit_code == 5
    assert run_gen("reconcile", "seoul", "--all-regions", fleet=status_fleet).exit_code == 5


def test_status_api_contract_kubeconfig_from_environment(
    regions: Fleetside, status_fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    regions.add("seoul", healthy_objects(_head(status_fleet), "seoul"))
    monkeypatch.setenv("KUBECONFIG", str(regions.kubeconfig()))
    result = run_gen("status", "seoul", "-o", "json", fleet=status_fleet)
    assert result.exit_code == 0, result.output
    assert _rows(json.loads(result.output))["seoul"]["verdict"] == "ok"
    monkeypatch.setenv("KUBECONFIG", str(regions.directory / "missing"))
    result = run_gen("status", "seoul", "-o", "json", fleet=status_fleet)
    assert result.exit_code == 3
    missing = regions.directory / "missing"
    assert _rows(json.loads(result.output))["seoul"]["reason"] == f"kubeconfig {missing} does not exist"


def test_reconcile_api_contract_without_flux(regions: Fleetside, status_fleet: Path) -> None:
    regions.add("seoul", healthy_objects(_head(status_fleet), "seoul"), mode="no-flux")
    code, out = reconcile(status_fleet, regions.kubeconfig(), "seoul")
    assert code == 4
    assert out.strip() == (
        "seoul: not reconciled: no GitRepository flux-system/flux-system "
        "(Flux not installed or not bootstrapped)"
    )
    assert regions.servers["seoul"].patches() == []
