"""``helm test`` Pods of kubevc-gateway and kubevc-serving (templates/tests/): what they ask, that
nothing selects them by mistake, that the NetworkPolicies let them in, and that their check (the
Python one-off the gateway image runs) passes on a 2xx answer and fails on anything else."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.charts.hardening import is_helm_test
from tests.charts.rendering import (
    CHART_NAMES,
    CHARTS_DIR,
    CiCase,
    Manifest,
    load_values,
    manifests,
    render,
    render_case,
)

RUNTIMES_CASE = CiCase("kubevc-serving", CHARTS_DIR / "kubevc-serving/ci/runtimes-values.yaml")
GATEWAY_DEFAULT = CiCase("kubevc-gateway", CHARTS_DIR / "kubevc-gateway/ci/default-values.yaml")


def helm_test_pods(rendered: dict[str, str]) -> dict[str, Manifest]:
    return {
        o["metadata"]["name"]: o
        for o in manifests(rendered)
        if o["kind"] == "Pod" and (o["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"
    }


def _args(pod: Manifest) -> list[str]:
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["python3", "-c"]
    args: list[str] = container["args"]
    return args


def _selected_by(obj: Manifest, pod: Manifest) -> bool:
    selector = obj["spec"].get("selector") or obj["spec"].get("podSelector") or {}
    wanted = selector.get("matchLabels", selector)
    labels = pod["metadata"]["labels"]
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def _hook_policies(rendered: dict[str, str]) -> dict[str, Manifest]:
    return {
        o["metadata"]["name"]: o
        for o in manifests(rendered)
        if o["kind"] == "NetworkPolicy" and is_helm_test(o)
    }


def _release_objects(rendered: dict[str, str]) -> list[Manifest]:
    return [o for o in manifests(rendered) if not is_helm_test(o)]


def _check_policies(rendered: dict[str, str], name: str, ports: set[int]) -> None:
    """The test Pods' own policy (no ingress; egress DNS and the server ports of the chart's pods)
    and the one admitting them to the chart's pods on their http port."""
    pods = list(helm_test_pods(rendered).values())
    workloads = [o for o in _release_objects(rendered) if o["kind"] == "Deployment"]
    policies = _hook_policies(rendered)
    assert sorted(policies) == [f"{name}-test", f"{name}-test-ingress"]
    own = policies[f"{name}-test"]
    assert all(_selected_by(own, pod) for pod in pods)
    assert own["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in own["spec"]
    dns, to_servers = own["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert {p["port"] for p in to_servers["ports"]} == ports
    admit = policies[f"{name}-test-ingress"]
    for workload in workloads:
        assert _selected_by(
            admit, {"metadata": {"labels": workload["spec"]["template"]["metadata"]["labels"]}}
        )
    (rule,) = admit["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert all(any(_selected_by({"spec": peer}, pod) for peer in rule["from"]) for pod in pods)
    for obj in _release_objects(rendered):  # no Service, PDB or policy of the release selects them
        if obj["kind"] in ("Service", "PodDisruptionBudget", "NetworkPolicy", "Deployment"):
            assert not any(_selected_by(obj, pod) for pod in pods), obj["metadata"]["name"]


def test_gateway_test_pod_asks_readyz_and_nothing_selects_it() -> None:
    rendered = render_case(GATEWAY_DEFAULT)
    (pod,) = helm_test_pods(rendered).values()
    annotations = pod["metadata"]["annotations"]
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert pod["spec"]["restartPolicy"] == "Never"
    args = _args(pod)
    assert args[1:] == ["5", "http://seoul-kubevc-gateway.kubevc.svc:8080/readyz"]
    (deployment,) = [o for o in manifests(rendered) if o["kind"] == "Deployment"]
    assert (
        pod["spec"]["containers"][0]["image"]
        == deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    _check_policies(rendered, "seoul-kubevc-gateway", {8080})


def test_gateway_test_pod_is_let_in_when_clients_are_restricted() -> None:
    values = load_values(GATEWAY_DEFAULT.values_file)
    peers = [{"podSelector": {"matchLabels": {"app": "client"}}}]
    values["networkPolicy"] = {**values.get("networkPolicy", {}), "clientPeers": peers}
    _check_policies(render("kubevc-gateway", values), "seoul-kubevc-gateway", {8080})


def test_serving_test_pod_per_deployment_asks_its_runtimes_health() -> None:
    rendered = render_case(RUNTIMES_CASE)
    pods = helm_test_pods(rendered)
    prefix = "http://seoul-kubevc-serving-"
    assert {name: _args(pod)[2:] for name, pod in pods.items()} == {
        "seoul-kubevc-serving-classifiers-test": [
            f"{prefix}classifiers.kubevc.svc:8501/v1/models/resnet/metadata",
            f"{prefix}classifiers.kubevc.svc:8501/v1/models/mobilenet/metadata",
        ],
        "seoul-kubevc-serving-add-one-test": [
            f"{prefix}add-one.kubevc.svc:8000/v2/health/ready",
            f"{prefix}add-one.kubevc.svc:8000/v2/models/add-one/ready",
        ],
        "seoul-kubevc-serving-tiny-test": [
            f"{prefix}tiny.kubevc.svc:8080/v2/health/ready",
            f"{prefix}tiny.kubevc.svc:8080/v2/models/tiny/ready",
        ],
    }
    image = yaml.safe_load((CHARTS_DIR / "kubevc-serving/values.yaml").read_text())["tests"]["image"]
    assert all(
        p["spec"]["containers"][0]["image"] == f"{image['repository']}:{image['tag']}" for p in pods.values()
    )
    _check_policies(rendered, "seoul-kubevc-serving", {8501, 8000, 8080})


@pytest.mark.parametrize("chart", ["kubevc-gateway", "kubevc-serving"])
def test_tests_can_be_turned_off(chart: str) -> None:
    case = GATEWAY_DEFAULT if chart == "kubevc-gateway" else RUNTIMES_CASE
    values = {**case.values(), "tests": {"enabled": False}}
    rendered = render(chart, values)
    assert helm_test_pods(rendered) == {}
    assert "helm-test" not in yaml.safe_dump([o for o in manifests(rendered) if o["kind"] == "NetworkPolicy"])


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/readyz" else 503)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def health_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("chart", ["kubevc-gateway", "kubevc-serving"])
def test_the_check_passes_on_2xx_and_fails_otherwise(chart: str, health_url: str) -> None:
    case = GATEWAY_DEFAULT if chart == "kubevc-gateway" else RUNTIMES_CASE
    pod = next(iter(helm_test_pods(render_case(case)).values()))
    script = _args(pod)[0]
    ok = subprocess.run(
        [sys.executable, "-c", script, "1", f"{health_url}/readyz"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0 and "ok " in ok.stdout, ok.stderr
    bad = subprocess.run(
        [sys.executable, "-c", script, "2", f"{health_url}/readyz", f"{health_url}/not-ready"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1 and "FAILED" in bad.stderr and "attempt 2/2" in bad.stdout


@pytest.mark.parametrize("chart", CHART_NAMES)
def test_artifact_hub_annotations_name_the_charts_images(chart: str) -> None:
    meta = yaml.safe_load((CHARTS_DIR / chart / "Chart.yaml").read_text())
    annotations = meta["annotations"]
    assert annotations["artifacthub.io/license"] == "Apache-2.0"
    assert yaml.safe_load(annotations["artifacthub.io/links"])
    listed = {i["image"] for i in yaml.safe_load(annotations.get("artifacthub.io/images", "[]"))}

    def images(node: Any) -> set[str]:
        if isinstance(node, dict):
            found = {f"{node['repository']}:{node['tag']}"} if {"repository", "tag"} <= set(node) else set()
            return found | {i for v in node.values() for i in images(v)}
        if isinstance(node, list):
            return {i for v in node for i in images(v)}
        return set()

    assert listed == images(yaml.safe_load((CHARTS_DIR / chart / "values.yaml").read_text()))
