"""``kubevc-gateway --config FILE`` as a real process: serves, logs JSON, drains on SIGTERM;
and the demo runs end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from kubevc.gateway.testing import TestBackend, free_port

from .conftest import gateway_config

pytestmark = pytest.mark.slow


def test_check_refuses_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "gateway.yaml"
    bad.write_text("server: {port: 8080, colour: blue}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "kubevc.gateway.cli", "--config", str(bad), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "server.colour: unknown key" in proc.stderr


def test_serves_logs_json_and_drains_on_sigterm(
    tmp_path: Path, backend: TestBackend, vocab_file: Path
) -> None:
    doc = gateway_config(backend.address, vocab_file)
    doc["server"] = {"host": "127.0.0.1", "port": 8, "logLevel": "info", "drainSeconds": 5}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(doc))
    port = free_port()
    env = {**os.environ, "KUBEVC_GATEWAY_PORT": str(port)}  # the env override wins over the file
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubevc.gateway.cli", "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.1)
        r = httpx.post(
            url + "/v1/models/bert/infer", content=b"the edge", headers={"content-type": "text/plain"}
        )
        assert r.status_code == 200, r.text
        proc.send_signal(signal.SIGTERM)
        # a clean drain exits 0 (uvicorn alone would re-raise the signal it captured and die by it)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [
        json.loads(line) for line in (proc.stderr.read() if proc.stderr else "").splitlines() if line.strip()
    ]
    requests = [x for x in lines if x.get("message") == "request"]
    assert any(x["path"] == "/v1/models/bert/infer" and x["status"] == 200 for x in requests)
    assert all({"time", "level", "logger", "message"} <= set(x) for x in lines)
    messages = [x["message"] for x in lines]
    assert any("Shutting down" in m for m in messages) and any(
        "Finished server process" in m for m in messages
    )


def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path, vocab_file: Path) -> None:
    import threading

    from kubevc.gateway.testing import run_test_backend

    with run_test_backend() as slow:
        slow.delay_seconds = 1.5
        doc = gateway_config(slow.address, vocab_file)
        port = free_port()
        doc["server"] = {"host": "127.0.0.1", "port": port, "logLevel": "warning", "drainSeconds": 10}
        path = tmp_path / "gateway.yaml"
        path.write_text(yaml.safe_dump(doc))
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubevc.gateway.cli", "--config", str(path)],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, "gateway did not start"
                time.sleep(0.1)
            answers: list[httpx.Response] = []
            t = threading.Thread(
                target=lambda: answers.append(
                    httpx.post(
                        url + "/v1/models/bert/infer",
                        content=b"the edge",
                        headers={"content-type": "text/plain"},
                        timeout=30,
                    )
                )
            )
            t.start()
            while slow.calls["Predict", "bert"] == 0:  # the request is in flight at the backend
                assert time.monotonic() < deadline + 30
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            t.join(30)
            assert answers and answers[0].status_code == 200, answers
            assert proc.wait(30) == 0
            with pytest.raises(httpx.TransportError):  # no longer accepting
                httpx.get(url + "/healthz", timeout=2)
        finally:
            if proc.poll() is None:
                proc.kill()


def test_demo_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kubevc.gateway.demo"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"detections"' in proc.stdout and '"classes"' in proc.stdout and "fewer bytes" in proc.stdout


def test_version_names_the_installed_package() -> None:
    from importlib import metadata

    proc = subprocess.run(
        [sys.executable, "-m", "kubevc.gateway.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"kubevc-gateway {metadata.version('kubevc')}\n"


# A sitecustomize that makes `import litestar` fail as it does when the 'gateway' extra is missing.
_NO_LITESTAR = """
import sys
from importlib.abc import MetaPathFinder


class _NoLitestar(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "litestar" or name.startswith("litestar."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoLitestar())
"""


@pytest.mark.parametrize("args", [[], ["--config", "gateway.yaml"], ["--config", "gateway.yaml", "--check"]])
def test_without_the_gateway_extra_one_line_names_it(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "sitecustomize.py").write_text(_NO_LITESTAR)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "kubevc.gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        "kubevc-gateway needs the 'gateway' extra: pip install 'kubevc[gateway]' (missing: litestar)\n"
    )
    assert proc.stdout == ""
    # --version still answers: it needs nothing but the package metadata
    version = subprocess.run(
        [sys.executable, "-m", "kubevc.gateway.cli", "--version"], capture_output=True, text=True, env=env
    )
    assert version.returncode == 0 and version.stdout.startswith("kubevc-gateway "), version.stderr
