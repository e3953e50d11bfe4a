"""Accelerator-aware placement (issue 20 item 4): the pure placement function, the serving values
it fills, the device plugins a region's inventory asks for, `model add --accelerator/--min-memory`
and the ``placement`` finding."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubevc.generator.render import chart_region_values, model_placement, serving_placement
from kubevc.generator.render._accelerators import region_accelerator_files
from kubevc.generator.repo import load_profiles
from kubevc.generator.spec import FleetConfig, ModelSpec, RegionSpec, accelerator_problems
from kubevc.generator.validate._placement import check_placement
from kubevc.generator.validate._report import Report
from tests.charts.rendering import manifests, render

from .conftest import Gen, git
from .test_flux_crds import _errors, _flux_objects, crd_validators  # noqa: F401 (fixture)

CORAL_PI = {
    "arch": "arm64",
    "cpuModel": "Raspberry Pi 4 Model B Rev 1.4",
    "memoryMiB": 3791,
    "accelerators": [
        {"kind": "coral", "count": 1, "model": "Coral USB Accelerator", "devices": ["18d1:9302"]}
    ],
}
GPU_BOX = {
    "arch": "amd64",
    "memoryMiB": 31945,
    "accelerators": [{"kind": "nvidia", "count": 1, "model": "GeForce RTX 3060", "devices": ["01:00.0"]}],
}
JETSON = {"arch": "arm64", "memoryMiB": 7619, "accelerators": [{"kind": "jetson", "count": 1}]}
HAILO_PI = {"arch": "arm64", "memoryMiB": 8051, "accelerators": [{"kind": "hailo", "count": 1}]}
PLAIN = {"arch": "arm64", "memoryMiB": 948, "accelerators": []}


def region(*inventories: dict[str, Any] | None, models: list[dict[str, Any]] | None = None) -> RegionSpec:
    nodes = []
    for index, inventory in enumerate(inventories):
        node: dict[str, Any] = {"host": f"10.8.0.{11 + index}"}
        if inventory is not None:
            node["inventory"] = inventory
        nodes.append(node)
    return RegionSpec.model_validate(
        {
            "name": "seoul",
            "apiEndpoint": "https://10.8.0.1:6443",
            "storage": {"nfs": {"server": "10.8.0.10", "path": "/export/models"}},
            "git": {"url": "https://git.example.com/ops/fleet.git"},
            "nodes": nodes,
            "models": models or [],
        }
    )


def model(**extra: Any) -> ModelSpec:
    return ModelSpec(name=extra.pop("name", "ssd"), base_path="/models/ssd", **extra)


# --- placement ------------------------------------------------------------------------------------


def test_cpu_model_without_floor_runs_anywhere() -> None:
    assert model_placement(model(), region(CORAL_PI)) == {}
    assert model_placement(model(accelerator="cpu"), region(CORAL_PI)) == {}


def test_coral_and_hailo_placement() -> None:
    assert model_placement(model(accelerator="coral"), region(CORAL_PI)) == {
        "resources": {"limits": {"kubevc.io/coral-tpu": 1}},
        "nodeSelector": {"kubevc.io/accelerator": "coral"},
        "tolerations": [
            {"key": "kubevc.io/accelerator", "operator": "Equal", "value": "coral", "effect": "NoSchedule"}
        ],
    }
    hailo = model_placement(model(accelerator="hailo", min_memory="2Gi"), region(HAILO_PI))
    assert hailo["resources"] == {
        "limits": {"kubevc.io/hailo": 1, "memory": "2Gi"},
        "requests": {"memory": "2Gi"},
    }
    assert hailo["nodeSelector"] == {"kubevc.io/accelerator": "hailo"}


def test_nvidia_placement_follows_the_gpu_nodes() -> None:
    gpu = model(accelerator="nvidia")
    assert model_placement(gpu, region(GPU_BOX))["nodeSelector"] == {"kubevc.io/accelerator": "nvidia"}
    assert model_placement(gpu, region(JETSON))["nodeSelector"] == {"kubevc.io/accelerator": "jetson"}
    mixed = model_placement(gpu, region(GPU_BOX, JETSON))
    assert "nodeSelector" not in mixed  # the nvidia.com/gpu limit alone finds either kind
    assert mixed["resources"] == {"limits": {"nvidia.com/gpu": 1}}
    assert mixed["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_serving_placement_folds_the_models() -> None:
    spec = region(
        CORAL_PI,
        GPU_BOX,
        models=[
            {"name": "a", "basePath": "/models/a", "accelerator": "coral", "minMemory": "1Gi"},
            {"name": "b", "basePath": "/models/b", "minMemory": "1536Mi"},
            {"name": "c", "basePath": "/models/c"},
        ],
    )
    assert serving_placement(spec) == {
        "resources": {
            "limits": {"kubevc.io/coral-tpu": 1, "memory": "1536Mi"},
            "requests": {"memory": "1536Mi"},
        },
        "nodeSelector": {"kubevc.io/accelerator": "coral"},
        "tolerations": [
            {"key": "kubevc.io/accelerator", "operator": "Equal", "value": "coral", "effect": "NoSchedule"}
        ],
    }
    two = region(
        CORAL_PI,
        HAILO_PI,
        models=[
            {"name": "a", "basePath": "/models/a", "accelerator": "coral"},
            {"name": "b", "basePath": "/models/b", "accelerator": "hailo"},
        ],
    )
    assert "nodeSelector" not in serving_placement(two)  # they disagree: no label is both
    assert serving_placement(region(PLAIN, models=[{"name": "a", "basePath": "/models/a"}])) == {}


# --- the placement finding ------------------------------------------------------------------------


def test_placement_problems_name_model_region_and_what_is_missing() -> None:
    spec = region(
        PLAIN,
        CORAL_PI,
        None,
        models=[
            {"name": "gpu-model", "basePath": "/models/a", "accelerator": "nvidia"},
            {"name": "big", "basePath": "/models/b", "minMemory": "16Gi"},
            {"name": "tpu", "basePath": "/models/c", "accelerator": "coral", "minMemory": "2Gi"},
            {"name": "any", "basePath": "/models/d"},
        ],
    )
    problems = accelerator_problems(spec)
    assert problems == [
        "model gpu-model needs a node with accelerator nvidia; no node of region seoul offers that "
        "(nodes offer 10.8.0.11: cpu 948Mi, 10.8.0.12: coral 3791Mi)",
        "model big needs a node with 16Gi of memory; no node of region seoul offers that "
        "(nodes offer 10.8.0.11: cpu 948Mi, 10.8.0.12: coral 3791Mi)",
    ]
    report = Report(regions=["seoul"])
    check_placement(spec, report)
    assert [(f.check, f.obj) for f in report.findings] == [("placement", "models")] * 2
    jetson = region(JETSON, models=[{"name": "g", "basePath": "/models/g", "accelerator": "nvidia"}])
    assert accelerator_problems(jetson) == []
    unprepared = region(None, models=[{"name": "t", "basePath": "/models/t", "accelerator": "hailo"}])
    (line,) = accelerator_problems(unprepared)
    assert "no node has a recorded inventory" in line and "\n" not in line


# --- device plugins -------------------------------------------------------------------------------


def test_device_plugins_only_where_the_inventory_has_them() -> None:
    assert region_accelerator_files(region(PLAIN, None)) == {}
    coral = region_accelerator_files(region(CORAL_PI))
    folder = "infrastructure/accelerators/seoul"
    assert sorted(coral) == [
        f"{folder}/generic-device-plugin.yaml",
        f"{folder}/kustomization.yaml",
        f"{folder}/namespace.yaml",
        f"{folder}/network-policy.yaml",
    ]
    daemonset = yaml.safe_load(coral[f"{folder}/generic-device-plugin.yaml"])
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["--domain", "kubevc.io"]
    device = json.loads(container["args"][3])
    assert device["name"] == "coral-tpu"
    assert {"path": "/dev/apex_*"} in device["groups"][0]["paths"]
    assert {"usb": [{"vendor": "18d1", "product": "9302"}]} in device["groups"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["limits"] == {"cpu": "100m", "memory": "64Mi"}
    gpu = region_accelerator_files(region(GPU_BOX, JETSON))
    assert f"{folder}/generic-device-plugin.yaml" not in gpu
    repo, release = yaml.safe_load_all(gpu[f"{folder}/nvidia-device-plugin.yaml"])
    assert repo["spec"]["url"] == "https://nvidia.github.io/k8s-device-plugin"
    assert release["spec"]["chart"]["spec"]["version"]  # pinned
    terms = release["spec"]["values"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["jetson", "nvidia"]


def _set_inventory(fleet: Path, name: str, inventories: list[dict[str, Any]]) -> None:
    path = fleet / f"regions/{name}/region.yaml"
    data = yaml.safe_load(path.read_text())
    data["nodes"] = [
        {"host": f"10.8.0.{11 + i}", "inventory": inventory} for i, inventory in enumerate(inventories)
    ]
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_render_model_add_and_flux_objects(gen: Gen, fleet: Path, crd_validators: Any) -> None:  # noqa: F811
    _set_inventory(fleet, "seoul", [CORAL_PI, GPU_BOX])
    added = gen("model", "add", "ssd", "--region", "seoul", "--accelerator", "coral", "--min-memory", "1Gi")
    assert added.exit_code == 0, added.output
    spec = yaml.safe_load((fleet / "regions/seoul/region.yaml").read_text())
    (ssd,) = [m for m in spec["models"] if m["name"] == "ssd"]
    assert (ssd["accelerator"], ssd["minMemory"]) == ("coral", "1Gi")
    values_doc = yaml.safe_load((fleet / "apps/seoul/kubevc-serving-values.yaml").read_text())
    values = yaml.safe_load(values_doc["data"]["values.yaml"])
    (deployment,) = [d for d in values["deployments"] if d["models"] == ["ssd"]]  # its own Deployment
    assert deployment["nodeSelector"] == {"kubevc.io/accelerator": "coral"}
    assert deployment["resources"]["limits"]["kubevc.io/coral-tpu"] == 1
    assert deployment["tolerations"][0]["value"] == "coral"
    infra = list(yaml.safe_load_all((fleet / "clusters/seoul/infrastructure.yaml").read_text()))
    paths = {doc["metadata"]["name"]: doc["spec"]["path"] for doc in infra}
    assert paths["infra-accelerators"] == "./infrastructure/accelerators/seoul"
    assert not (fleet / "infrastructure/accelerators/busan").exists()
    for rel, obj in _flux_objects(fleet):
        assert _errors(crd_validators, obj) == [], f"{rel}: {obj['kind']}/{obj['metadata']['name']}"
    if shutil.which("kubectl"):
        built = subprocess.run(
            ["kubectl", "kustomize", str(fleet / "infrastructure/accelerators/seoul")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert built.returncode == 0, built.stderr


def test_model_add_bad_accelerator_input_changes_nothing(gen: Gen, fleet: Path) -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=fleet, capture_output=True, text=True).stdout
    bad = gen("model", "add", "ssd", "--region", "seoul", "--min-memory", "4GB")
    assert bad.exit_code == 5 and bad.output.count("\n") == 1, bad.output
    assert "--min-memory '4GB' is not a memory quantity" in bad.output
    zero = gen("model", "add", "ssd", "--region", "seoul", "--min-memory", "0Gi")
    assert zero.exit_code == 5
    choice = gen("model", "add", "ssd", "--region", "seoul", "--accelerator", "tpu")
    assert choice.exit_code == 2  # click's choice: usage error
    after = subprocess.run(["git", "rev-parse", "HEAD"], cwd=fleet, capture_output=True, text=True).stdout
    assert after == head
    assert (
        subprocess.run(["git", "status", "--porcelain"], cwd=fleet, capture_output=True, text=True).stdout
        == ""
    )


def test_generic_device_plugin_passes_checkov(tmp_path: Path) -> None:
    checkov = os.environ.get("KUBEVC_CHECKOV") or shutil.which("checkov")
    if not checkov or not Path(checkov).exists():
        pytest.skip("checkov is not installed (make tools; KUBEVC_CHECKOV)")
    files = region_accelerator_files(region(CORAL_PI, HAILO_PI, GPU_BOX))
    for rel, data in files.items():
        if not rel.endswith("kustomization.yaml"):
            (tmp_path / Path(rel).name).write_bytes(data)
    skips = yaml.safe_load((Path(__file__).parents[1] / "charts/checkov-skips.yaml").read_text())
    proc = subprocess.run(
        [checkov, "-d", str(tmp_path), "--framework", "kubernetes", "-o", "json", "--quiet", "--compact",
         "--skip-download", "--skip-check", ",".join(sorted(skips))],
        capture_output=True,
        text=True,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
        timeout=300,
        check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{c['check_id']} {c['resource']}"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert failed == []
    skipped = {c["check_id"] for r in reports for c in r.get("results", {}).get("skipped_checks", [])}
    assert skipped <= {"CKV_K8S_23", "CKV_K8S_40", *skips}


def test_each_serving_deployment_is_placed_by_its_own_models() -> None:
    """Per-model Deployments (issue 20 item 1) carry their own models' placement, and the serving
    chart (strict schema) renders it into that Deployment only."""
    spec = region(
        CORAL_PI,
        PLAIN,
        models=[
            {"name": "ssd", "basePath": "/models/ssd", "profile": "detection", "accelerator": "coral"},
            {"name": "resnet", "basePath": "/models/resnet", "minMemory": "512Mi"},
        ],
    )
    values = chart_region_values(spec, "kubevc-serving", FleetConfig(), load_profiles())
    by_name = {d["name"]: d for d in values["deployments"]}
    assert by_name["ssd"]["resources"] == {"limits": {"kubevc.io/coral-tpu": 1}}
    assert by_name["ssd"]["nodeSelector"] == {"kubevc.io/accelerator": "coral"}
    assert by_name["resnet"]["nodeSelector"] == {}
    assert by_name["resnet"]["resources"] == {"limits": {"memory": "512Mi"}, "requests": {"memory": "512Mi"}}
    deployments = {
        o["metadata"]["name"]: o
        for o in manifests(render("kubevc-serving", values))
        if o["kind"] == "Deployment"
    }
    ssd = next(d for n, d in deployments.items() if n.endswith("-ssd"))
    resnet = next(d for n, d in deployments.items() if n.endswith("-resnet"))
    assert ssd["spec"]["template"]["spec"]["nodeSelector"]["kubevc.io/accelerator"] == "coral"
    assert ssd["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["kubevc.io/coral-tpu"] == 1
    assert "kubevc.io/accelerator" not in resnet["spec"]["template"]["spec"].get("nodeSelector", {})
    assert (
        "kubevc.io/coral-tpu"
        not in resnet["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    )


def test_render_with_a_selector_writes_the_regions_accelerator_folder(gen: Gen, fleet: Path) -> None:
    """``render -l``: a region whose inventory gained a Coral (edited by hand) gets its device
    plugin folder, like a full render would write it; other regions are left alone."""
    assert gen("region", "label", "seoul", "tier=canary").exit_code == 0
    _set_inventory(fleet, "seoul", [CORAL_PI])
    _set_inventory(fleet, "busan", [CORAL_PI])
    git(fleet, "commit", "-qam", "Corals by hand")
    result = gen("render", "-l", "tier=canary")
    assert result.exit_code == 0, result.output
    assert (fleet / "infrastructure/accelerators/seoul/generic-device-plugin.yaml").is_file()
    assert not (fleet / "infrastructure/accelerators/busan").exists()  # not selected: waits
    assert gen("render").exit_code == 0
    assert (fleet / "infrastructure/accelerators/busan/generic-device-plugin.yaml").is_file()
