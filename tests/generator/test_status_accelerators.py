"""`status` shows each region's accelerator capacity and use: the nodes' capacity/allocatable of
the device-plugin resources and the limits running pods hold (contract stand-in API)."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import run_gen
from .kubeapi_contract import Fleetside, healthy_objects, node, pod
from .test_status_api_contract import (  # noqa: F401 (fixtures)
    _head,
    _rows,
    pki,
    regions,
    status_fleet,
)

# generous: the assertions are about what is read, not how fast (shared, loaded machines)
TIMEOUT = "60s"


def status(fleet: Path, kubeconfig: Path, *args: str) -> str:
    result = run_gen("status", "--kubeconfig", str(kubeconfig), "--timeout", TIMEOUT, *args, fleet=fleet)
    return result.output


def test_status_accelerator_capacity_and_use(regions: Fleetside, status_fleet: Path) -> None:  # noqa: F811
    head = _head(status_fleet)
    seoul = healthy_objects(head, "seoul")
    seoul["nodes"] = [
        node("seoul-0", "arm64", devices={"kubevc.io/coral-tpu": (2, 2)}),
        node("seoul-1", "arm64", devices={"kubevc.io/coral-tpu": (1, 0), "kubevc.io/hailo": (1, 1)}),
        node("seoul-2", "amd64", devices={"nvidia.com/gpu": (2, 2)}),
    ]
    seoul["pods"] = [
        pod("kubevc", "serving-a", "seoul-0", {"kubevc.io/coral-tpu": "1", "memory": "1Gi"}),
        pod("kubevc", "serving-b", "seoul-2", {"nvidia.com/gpu": "1"}),
        pod("kubevc", "done", "seoul-2", {"nvidia.com/gpu": "1"}, phase="Succeeded"),
    ]
    busan = healthy_objects(head, "busan")  # no accelerators: the pods are never listed
    regions.add("seoul", seoul)
    regions.add("busan", busan)
    regions.add("jeju", healthy_objects(head, "jeju"))
    doc = json.loads(status(status_fleet, regions.kubeconfig(), "-o", "json"))
    rows = _rows(doc)
    assert rows["seoul"]["verdict"] == "ok", rows["seoul"]
    assert rows["seoul"]["accelerators"] == [
        {"resource": "kubevc.io/coral-tpu", "capacity": 3, "allocatable": 2, "used": 1,
         "nodes": ["seoul-0", "seoul-1"]},
        {"resource": "kubevc.io/hailo", "capacity": 1, "allocatable": 1, "used": 0, "nodes": ["seoul-1"]},
        {"resource": "nvidia.com/gpu", "capacity": 2, "allocatable": 2, "used": 1, "nodes": ["seoul-2"]},
    ]  # fmt: skip
    assert rows["busan"]["accelerators"] == []
    assert not [r for r in regions.servers["busan"].state.requests if r.path.startswith("/api/v1/pods")]
    seoul_pods = [
        r.path for r in regions.servers["seoul"].state.requests if r.path.startswith("/api/v1/pods")
    ]
    assert seoul_pods == ["/api/v1/pods?fieldSelector=status.phase%3DRunning"]
    table = status(status_fleet, regions.kubeconfig(), "seoul")
    assert "coral-tpu 1/2, hailo 0/1, gpu 1/2" in table
