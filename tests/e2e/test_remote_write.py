"""Regions ship, the hub stores: real Prometheus agents remote-write to a real hub Prometheus.

Everything runs on 127.0.0.1 with free ports and temporary storage, started and stopped by the test:

* a node exporter (Debian ``prometheus-node-exporter``);
* a process exposing the gateway's metrics (the gateway's own ``kubevc.gateway._metrics.Metrics``
  served by ``prometheus_client``);
* a hub Prometheus (``--web.enable-remote-write-receiver``) behind basic auth (``--web.config.file``);
* two agent-mode Prometheus (``--enable-feature=agent``), one per region, whose ``external_labels``,
  ``queue_config`` and credential handling come from the values ``kubevc-gen`` renders for them.

The hub's query API must then return the scraped samples labelled with the right region.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubevc.gateway.testing import free_port

pytestmark = pytest.mark.slow

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
REGIONS = ("seoul", "busan")
WAIT_S = 40.0
USER = "region-writer"

GATEWAY_METRICS_SERVER = """
import sys, time
from prometheus_client import start_http_server
from kubevc.gateway._metrics import Metrics

m = Metrics()
m.requests.labels(model="yolov5", route="infer", code="200").inc(42)
m.requests.labels(model="yolov5", route="infer", code="503").inc(1)
m.duration.labels(model="yolov5", stage="total").observe(0.12)
m.model_available.labels(model="yolov5").set(1)
m.backend_up.labels(backend="tfserving").set(1)
start_http_server(int(sys.argv[1]), addr="127.0.0.1", registry=m.registry)
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


def wait_for(
    what: str, check: Callable[[], Any], procs: list[subprocess.Popen[bytes]], timeout: float = WAIT_S
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(f"{proc.args!r} exited with {proc.returncode} while waiting for {what}")
        try:
            last = check()
            if last:
                return last
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last answer: {last!r})")


def exposes(url: str, metric: bytes) -> Callable[[], bool]:
    return lambda: metric in http_get(url)[1]


def http_get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    # last started first: the agents stop while the hub can still take their final flush
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def start(procs: list[subprocess.Popen[bytes]], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(list(args), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    procs.append(proc)
    return proc


def rendered_region_values(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """What kubevc-gen renders for each region once a hub is set (the real CLI on a fresh fleet)."""
    from click.testing import CliRunner

    from kubevc.generator.cli import cli

    fleet = tmp_path / "fleet"
    env = {
        "GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@localhost",
        "GIT_COMMITTER_NAME": "e2e", "GIT_COMMITTER_EMAIL": "e2e@localhost",
    }  # fmt: skip
    runner = CliRunner(env=env)
    steps = [
        ["init", str(fleet)],
        ["--fleet", str(fleet), "region", "add", "seoul", "--api-endpoint", "https://10.8.0.1:6443",
         "--nfs-server", "10.8.0.10", "--nfs-path", "/m"],
        ["--fleet", str(fleet), "region", "add", "busan", "--api-endpoint", "https://10.9.0.1:6443",
         "--nfs-server", "10.9.0.10", "--nfs-path", "/m"],
        ["--fleet", str(fleet), "hub", "set", "--api-endpoint", "https://10.7.0.1:6443"],
    ]  # fmt: skip
    for args in steps:
        result = runner.invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    values = {}
    for region in REGIONS:
        docs = yaml.safe_load_all(
            (fleet / f"infrastructure/agents/{region}/kube-prometheus-stack.yaml").read_text()
        )
        (release,) = [d for d in docs if d and d["kind"] == "HelmRelease"]
        values[region] = release["spec"]["values"]
    return values


def agent_config(
    values: dict[str, Any], hub_port: int, password_file: Path, targets: dict[str, str]
) -> dict[str, Any]:
    """The Prometheus config prometheus-operator builds from the rendered values (test-local hub URL)."""
    spec = values["prometheus"]["prometheusSpec"]
    (rw,) = spec["remoteWrite"]
    queue = rw["queueConfig"]
    return {
        "global": {"scrape_interval": "1s", "external_labels": spec["externalLabels"]},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
        ],
        "remote_write": [
            {
                "name": rw["name"],
                # the rendered URL is the hub's https Ingress; here the hub listens on loopback
                "url": f"http://127.0.0.1:{hub_port}/api/v1/write",
                "basic_auth": {"username": USER, "password_file": str(password_file)},
                "queue_config": {
                    "max_samples_per_send": queue["maxSamplesPerSend"],
                    "batch_send_deadline": "1s",  # the rendered 10s, shortened to keep the test fast
                    "max_backoff": queue["maxBackoff"],
                },
            }
        ],
    }


def test_agents_remote_write_to_the_hub_with_their_region_label(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    import bcrypt

    for binary in (PROMETHEUS, NODE_EXPORTER):
        assert Path(binary).is_file(), (
            f"{binary} missing: install Debian prometheus and prometheus-node-exporter"
        )
    values = rendered_region_values(tmp_path)
    for region in REGIONS:
        assert values[region]["prometheus"]["agentMode"] is True
        assert values[region]["prometheus"]["prometheusSpec"]["externalLabels"] == {"region": region}

    # credentials: a random password in a 0600 file (never printed), its bcrypt hash on the hub
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    password = base64.urlsafe_b64encode(os.urandom(18)).decode()
    password_file = secrets_dir / "password"
    password_file.write_text(password)
    password_file.chmod(0o600)
    web_config = tmp_path / "hub-web.yml"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=6)).decode()
    web_config.write_text(yaml.safe_dump({"basic_auth_users": {USER: hashed}}))

    node_port, gw_port, hub_port = free_port(), free_port(), free_port()
    node_args = [
        "--collector.disable-defaults",
        "--collector.cpu",
        "--collector.meminfo",
        "--collector.uname",
    ]
    node_args.append(f"--web.listen-address=127.0.0.1:{node_port}")
    start(processes, tmp_path / "node-exporter.log", NODE_EXPORTER, *node_args)
    gw_script = tmp_path / "gateway_metrics.py"
    gw_script.write_text(GATEWAY_METRICS_SERVER)
    start(processes, tmp_path / "gateway.log", sys.executable, str(gw_script), str(gw_port))
    hub_cfg = tmp_path / "hub.yml"
    hub_cfg.write_text(yaml.safe_dump({"global": {"scrape_interval": "15s"}, "scrape_configs": []}))
    start(processes, tmp_path / "hub.log", PROMETHEUS, f"--config.file={hub_cfg}",
          f"--storage.tsdb.path={tmp_path / 'hub-data'}", f"--web.listen-address=127.0.0.1:{hub_port}",
          f"--web.config.file={web_config}", "--web.enable-remote-write-receiver")  # fmt: skip
    hub = f"http://127.0.0.1:{hub_port}"
    auth = (USER, password)
    wait_for("the hub to be ready", lambda: http_get(f"{hub}/-/ready", auth)[0] == 200, processes)
    for port, metric in (
        (node_port, b"node_cpu_seconds_total"),
        (gw_port, b"kubevc_gateway_model_available"),
    ):
        url = f"http://127.0.0.1:{port}/metrics"
        wait_for(url, exposes(url, metric), processes)

    targets = {"node-exporter": f"127.0.0.1:{node_port}", "kubevc-gateway": f"127.0.0.1:{gw_port}"}
    for region in REGIONS:
        cfg = tmp_path / f"agent-{region}.yml"
        cfg.write_text(yaml.safe_dump(agent_config(values[region], hub_port, password_file, targets)))
        check = subprocess.run([PROMTOOL, "check", "config", "--agent", str(cfg)],
                               capture_output=True, text=True, timeout=30)  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
        start(processes, tmp_path / f"agent-{region}.log", PROMETHEUS, "--enable-feature=agent",
              f"--config.file={cfg}", f"--storage.agent.path={tmp_path / f'agent-{region}'}",
              f"--web.listen-address=127.0.0.1:{free_port()}")  # fmt: skip

    def query(promql: str) -> list[dict[str, Any]]:
        status, body = http_get(f"{hub}/api/v1/query?" + urllib.parse.urlencode({"query": promql}), auth)
        assert status == 200, body[:500]
        result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
        return result

    def regions_with(promql: str) -> set[str]:
        return {r["metric"].get("region", "") for r in query(promql)}

    wanted = set(REGIONS)

    def regions_check(promql: str) -> Callable[[], bool]:
        return lambda: regions_with(promql) == wanted

    for promql in (
        'up{job="node-exporter"} == 1',
        'up{job="kubevc-gateway"} == 1',
        'node_cpu_seconds_total{mode="idle"}',
        'kubevc_gateway_model_available{model="yolov5"} == 1',
        'kubevc_gateway_requests_total{code="200"} == 42',
    ):
        wait_for(f"{promql} from {sorted(wanted)} on the hub", regions_check(promql), processes)
    # every sample that reached the hub names its region; nothing arrived unlabelled
    assert query('count({__name__=~".+", region=""})') == []
    by_region = {r["metric"]["region"]: float(r["value"][1]) for r in query("count by (region) (up)")}
    assert by_region == {"seoul": 2.0, "busan": 2.0}
    # the receiver refuses writers without the credentials
    status, _ = http_get(f"{hub}/api/v1/query?query=up")
    assert status == 401
    for log in tmp_path.glob("*.log"):
        assert password not in log.read_text(errors="replace"), f"{log.name} leaks the password"
