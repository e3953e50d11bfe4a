"""kubevc-serving: the TF Serving model config, flags, probes, storage and network rules."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts import textproto
from tests.charts.hardening import is_helm_test
from tests.charts.rendering import CHARTS_DIR, CiCase, Manifest, ci_cases, manifests, render, render_case

# The single-Deployment ci cases; those with per-model `deployments` are in test_serving_deployments.py.
SERVING_CASES = [
    case for case in ci_cases() if case.chart == "kubevc-serving" and not case.values().get("deployments")
]
ALL_TOGGLES = CiCase("kubevc-serving", CHARTS_DIR / "kubevc-serving/ci/all-toggles-values.yaml")
CHART_DEFAULTS: dict[str, Any] = yaml.safe_load((CHARTS_DIR / "kubevc-serving/values.yaml").read_text())


def by_kind(objects: list[Manifest], kind: str) -> Manifest:
    """The one release object of ``kind`` (helm test hooks left out: see test_helm_tests.py)."""
    matches = [obj for obj in objects if obj["kind"] == kind and not is_helm_test(obj)]
    assert len(matches) == 1, f"expected one {kind}, got {len(matches)}"
    return matches[0]


def effective(case: CiCase) -> dict[str, Any]:
    # Top-level keys of the ci values replace the defaults' lists (Helm merges maps only).
    return CHART_DEFAULTS | case.values()


def config_map(case: CiCase) -> dict[str, str]:
    data: dict[str, str] = by_kind(manifests(render_case(case)), "ConfigMap")["data"]
    return data


def server_container(case: CiCase) -> Manifest:
    deployment = by_kind(manifests(render_case(case)), "Deployment")
    container: Manifest = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.mark.parametrize("case", SERVING_CASES, ids=lambda case: case.id)
def test_model_config_lists_every_model_with_policy_and_labels(case: CiCase) -> None:
    values = effective(case)
    config = textproto.parse(config_map(case)["models.config"])
    entries = {entry["name"][0]: entry for entry in config["model_config_list"][0]["config"]}
    assert list(entries) == [model["name"] for model in values["models"]]
    for model in values["models"]:
        entry = entries[model["name"]]
        default_path = f"{values['modelStore']['mountPath']}/{model['name']}"
        assert entry["base_path"] == [model.get("basePath") or default_path]
        assert entry["model_platform"] == ["tensorflow"]
        policy = entry["model_version_policy"][0]
        kind = model.get("versionPolicy", "latest")
        assert list(policy) == [kind]
        if kind == "specific":
            assert policy["specific"][0]["versions"] == model["versions"]
        elif kind == "latest":
            assert policy["latest"][0]["num_versions"] == [model.get("numVersions", 1)]
        labels = {label["key"][0]: label["value"][0] for label in entry.get("version_labels", [])}
        assert labels == model.get("versionLabels", {})


def test_canary_labels_are_in_the_all_toggles_case() -> None:
    # Keeps the label assertions above from passing on cases without labels only.
    config = textproto.parse(config_map(ALL_TOGGLES)["models.config"])
    labelled = [entry for entry in config["model_config_list"][0]["config"] if "version_labels" in entry]
    assert labelled and {"stable", "canary"} <= {label["key"][0] for label in labelled[0]["version_labels"]}


def test_model_config_parses_as_the_official_model_server_config(tf_python: Path) -> None:
    # The real ModelServerConfig message from tensorflow-serving-api (its own venv, see Makefile).
    script = (
        "import sys, json\n"
        "from google.protobuf import text_format, json_format\n"
        "from tensorflow_serving.config import model_server_config_pb2 as m\n"
        "msg = text_format.Parse(sys.stdin.read(), m.ModelServerConfig())\n"
        "print(json.dumps(json_format.MessageToDict(msg)))\n"
    )
    proc = subprocess.run(
        [str(tf_python), "-c", script],
        input=config_map(ALL_TOGGLES)["models.config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    configs = json.loads(proc.stdout)["modelConfigList"]["config"]
    assert [c["name"] for c in configs] == ["yolov5", "resnet50", "bert-base"]
    assert configs[0]["modelVersionPolicy"] == {"specific": {"versions": ["1", "2"]}}
    assert configs[0]["versionLabels"] == {"stable": "1", "canary": "2"}
    assert configs[1]["modelVersionPolicy"] == {"latest": {"numVersions": 2}}
    assert configs[2]["modelVersionPolicy"] == {"all": {}}


@pytest.mark.parametrize("case", SERVING_CASES, ids=lambda case: case.id)
def test_server_flags_come_from_values(case: CiCase) -> None:
    values = effective(case)
    container = server_container(case)
    assert container["command"] == ["tensorflow_model_server"]
    args = container["args"]
    for flag in (
        "--port=8500",
        "--rest_api_port=8501",
        "--model_config_file=/etc/kubevc-serving/models.config",
        f"--model_config_file_poll_wait_seconds={values['modelConfigPollSeconds']}",
        f"--file_system_poll_wait_seconds={values['fileSystemPollSeconds']}",
        "--monitoring_config_file=/etc/kubevc-serving/monitoring.config",
    ):
        assert flag in args
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts["/etc/kubevc-serving"]["readOnly"] is True


@pytest.mark.parametrize("case", SERVING_CASES, ids=lambda case: case.id)
def test_monitoring_config_enables_the_prometheus_endpoint(case: CiCase) -> None:
    monitoring = textproto.parse(config_map(case)["monitoring.config"])
    assert monitoring == {
        "prometheus_config": [{"enable": [True], "path": ["/monitoring/prometheus/metrics"]}]
    }


@pytest.mark.parametrize("case", SERVING_CASES, ids=lambda case: case.id)
def test_readiness_waits_for_the_first_model(case: CiCase) -> None:
    values = effective(case)
    probe = server_container(case)["readinessProbe"]
    if values.get("probes", {}).get("readiness", {}).get("type") == "grpc":
        assert probe["grpc"] == {"port": 8500}
    else:
        assert probe["httpGet"] == {
            "path": f"/v1/models/{values['models'][0]['name']}/metadata",
            "port": "http",
        }


@pytest.mark.parametrize("case", SERVING_CASES, ids=lambda case: case.id)
def test_models_are_mounted_read_only_from_the_claim(case: CiCase) -> None:
    values = effective(case)
    pod = by_kind(manifests(render_case(case)), "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if "persistentVolumeClaim" in v)
    assert volume["persistentVolumeClaim"] == {
        "claimName": values["modelStore"]["claimName"],
        "readOnly": True,
    }
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
    assert mount == {"name": volume["name"], "mountPath": values["modelStore"]["mountPath"], "readOnly": True}


@pytest.mark.parametrize("case", SERVING_CASES, ids=lambda case: case.id)
def test_pods_are_pinned_to_the_listed_architectures(case: CiCase) -> None:
    pod = by_kind(manifests(render_case(case)), "Deployment")["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [
        {
            "matchExpressions": [
                {"key": "kubernetes.io/arch", "operator": "In", "values": effective(case)["architectures"]}
            ]
        }
    ]


def test_network_policy_admits_only_gateway_and_prometheus() -> None:
    policy = by_kind(manifests(render_case(ALL_TOGGLES)), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    gateway_rule, prometheus_rule = policy["ingress"]
    assert gateway_rule["from"] == [
        {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "kubevc-gateway"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kubevc"}},
        }
    ]
    assert prometheus_rule["from"][0]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "prometheus"}
    }
    assert prometheus_rule["ports"] == [{"port": "http", "protocol": "TCP"}]


def test_all_toggles_render_every_optional_object() -> None:
    objects = manifests(render_case(ALL_TOGGLES))
    kinds = sorted(obj["kind"] for obj in objects if not is_helm_test(obj))
    expected = ["ConfigMap", "Deployment", "Service", "ServiceMonitor", "HorizontalPodAutoscaler"]
    assert kinds == sorted([*expected, "PodDisruptionBudget", "NetworkPolicy"])
    # and the helm test hooks: the test Pod, its own NetworkPolicy and the one admitting it
    assert sorted(obj["kind"] for obj in objects if is_helm_test(obj)) == [
        "NetworkPolicy",
        "NetworkPolicy",
        "Pod",
    ]
    deployment = by_kind(manifests(render_case(ALL_TOGGLES)), "Deployment")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"


def test_model_config_changes_do_not_restart_pods() -> None:
    # TF Serving polls the model config file; only monitoring changes need new pods.
    def pod_annotations(models: list[dict[str, Any]]) -> dict[str, str]:
        deployment = by_kind(manifests(render("kubevc-serving", {"models": models})), "Deployment")
        annotations: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
        return annotations

    assert pod_annotations([{"name": "a"}]) == pod_annotations([{"name": "a"}, {"name": "b"}])


def test_armhf_is_the_arm_node_label() -> None:
    # Debian (and kubevc-gen's region spec) say armhf; the kubelet labels such nodes "arm".
    deployment = by_kind(
        manifests(render("kubevc-serving", {"architectures": ["armhf", "arm", "arm64"]})), "Deployment"
    )
    affinity = deployment["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    terms = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == ["arm", "arm64"]
