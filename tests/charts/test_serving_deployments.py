"""kubevc-serving with per-model `deployments`: one Deployment/Service/HPA/PDB per serving group,
each with its runtime's server, ports, probes and placement."""

from __future__ import annotations

from typing import Any

import helm_python
import pytest
import yaml

from tests.charts import textproto
from tests.charts.hardening import is_helm_test
from tests.charts.rendering import CHARTS_DIR, CiCase, Manifest, manifests, render, render_case

RUNTIMES_CASE = CiCase("kubevc-serving", CHARTS_DIR / "kubevc-serving/ci/runtimes-values.yaml")
PREFIX = "seoul-kubevc-serving-"


def objects(kind: str, values: dict[str, Any] | None = None) -> dict[str, Manifest]:
    rendered = render_case(RUNTIMES_CASE) if values is None else render("kubevc-serving", values)
    # release objects only: helm test hooks are checked in test_helm_tests.py
    return {
        o["metadata"]["name"]: o for o in manifests(rendered) if o["kind"] == kind and not is_helm_test(o)
    }


def container(deployment: Manifest) -> Manifest:
    found: Manifest = deployment["spec"]["template"]["spec"]["containers"][0]
    return found


def test_one_set_of_objects_per_serving_group() -> None:
    groups = [PREFIX + n for n in ("classifiers", "add-one", "tiny")]
    assert list(objects("Deployment")) == groups
    assert list(objects("Service")) == groups
    assert list(objects("NetworkPolicy")) == groups
    assert list(objects("ServiceMonitor")) == groups
    assert list(objects("HorizontalPodAutoscaler")) == [PREFIX + "classifiers"]
    assert list(objects("PodDisruptionBudget")) == [PREFIX + "classifiers", PREFIX + "tiny"]
    # only TF Serving reads a model config file: one ConfigMap, with that group's models only
    (config,) = objects("ConfigMap").values()
    parsed = textproto.parse(config["data"]["models.config"])
    assert [e["name"][0] for e in parsed["model_config_list"][0]["config"]] == ["resnet", "mobilenet"]


def test_each_group_selects_only_its_own_pods() -> None:
    for name, deployment in objects("Deployment").items():
        group = name.removeprefix(PREFIX)
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector["kubevc.io/serving-group"] == group
        assert objects("Service")[name]["spec"]["selector"] == selector
        assert deployment["spec"]["template"]["metadata"]["labels"].items() >= selector.items()


def test_runtimes_get_their_server_ports_and_probes() -> None:
    deployments = objects("Deployment")
    tf = container(deployments[PREFIX + "classifiers"])
    assert tf["command"] == ["tensorflow_model_server"]
    assert tf["readinessProbe"]["httpGet"]["path"] == "/v1/models/resnet/metadata"
    triton = container(deployments[PREFIX + "add-one"])
    assert triton["command"] == ["tritonserver"]
    assert "--model-repository=/models" in triton["args"]
    assert "--model-control-mode=explicit" in triton["args"]
    assert "--load-model=add-one" in triton["args"]
    assert triton["image"].startswith("nvcr.io/nvidia/tritonserver:")
    assert {p["name"]: p["containerPort"] for p in triton["ports"]} == {
        "grpc": 8001,
        "http": 8000,
        "metrics": 8002,
    }
    assert triton["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    ml = container(deployments[PREFIX + "tiny"])
    assert ml["command"] == ["mlserver", "start", "/mnt/models"]
    env = {e["name"]: e["value"] for e in ml["env"]}
    assert (env["MLSERVER_GRPC_PORT"], env["MLSERVER_HTTP_PORT"]) == ("8081", "8080")
    # only its own model folder is visible to MLServer, read-only, from the same claim
    mounts = [m for m in ml["volumeMounts"] if m["name"] == "models"]
    assert mounts == [
        {"name": "models", "mountPath": "/mnt/models/tiny", "subPath": "tiny", "readOnly": True}
    ]
    service_ports = {p["name"]: p["port"] for p in objects("Service")[PREFIX + "tiny"]["spec"]["ports"]}
    assert service_ports == {"grpc": 8081, "http": 8080, "metrics": 8082}


def test_placement_keys_land_on_their_deployment_only() -> None:
    deployments = objects("Deployment")
    gpu = deployments[PREFIX + "add-one"]["spec"]["template"]["spec"]
    assert gpu["nodeSelector"] == {"kubevc.io/accelerator": "nvidia"}
    assert gpu["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    resources = container(deployments[PREFIX + "add-one"])["resources"]
    # merged over the chart's resources: the GPU limit is added, CPU and memory stay
    assert resources["limits"] == {"cpu": "2", "memory": "2Gi", "nvidia.com/gpu": 1}
    assert resources["requests"] == {"cpu": "250m", "memory": "512Mi"}
    other = deployments[PREFIX + "tiny"]["spec"]["template"]["spec"]
    assert "nodeSelector" not in other and "tolerations" not in other
    assert "replicas" not in deployments[PREFIX + "classifiers"]["spec"]  # the HPA owns it
    assert deployments[PREFIX + "add-one"]["spec"]["replicas"] == 1


def test_prometheus_may_reach_the_metrics_port_of_v2_servers() -> None:
    policy = objects("NetworkPolicy")[PREFIX + "add-one"]
    assert policy["spec"]["ingress"][1]["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    monitor = objects("ServiceMonitor")[PREFIX + "add-one"]
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def _values(**deployment: Any) -> dict[str, Any]:
    base = yaml.safe_load(RUNTIMES_CASE.values_file.read_text())
    base["deployments"] = [deployment]
    return base


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (_values(name="x", runtime="triton", models=["nope"]), '"nope" is not in models'),
        (_values(name="x", runtime="triton", models=["resnet"]), "no entry of deployments serves it"),
    ],
)
def test_bad_deployment_lists_fail_naming_the_problem(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmError, match=message):
        render("kubevc-serving", values)


def test_a_model_in_two_deployments_fails() -> None:
    values = yaml.safe_load(RUNTIMES_CASE.values_file.read_text())
    values["deployments"][1]["models"] = ["add-one", "resnet"]
    with pytest.raises(helm_python.HelmError, match='"resnet" is already served by deployment "classifiers"'):
        render("kubevc-serving", values)


def test_the_schema_refuses_an_unknown_runtime() -> None:
    values = yaml.safe_load(RUNTIMES_CASE.values_file.read_text())
    values["deployments"][0]["runtime"] = "torchserve"
    with pytest.raises(helm_python.HelmValuesError):
        render("kubevc-serving", values)
