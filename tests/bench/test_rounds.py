"""The shared load runner (``bench.rounds``) of the throughput, triton and kserve suites: rounds
interleave the servers, each run reads CPU before and after, and a real load run against a small
HTTP server gives the load generator's counts. No timings are asserted."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import rounds
from bench.rounds import Contender, Measured, interleaved, load_run


def _fake_run(calls: list[tuple[str, int]]) -> Any:
    def run(c: Contender, connections: int, seconds: float, script: Path, **kw: Any) -> Measured:
        calls.append((c.name, connections))
        out = {"requests": 10 * len(calls), "requests_per_s": 1.0, "p50_ms": 1.0, "errors": 0}
        return Measured(out, 1.0, 0.1, 0.0, 0.0, 0)

    return run


def test_rounds_interleave_the_contenders_at_each_connection_count(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(rounds, "load_run", _fake_run(calls))
    a = Contender("gateway", "http://a", tmp_path / "a", "image/jpeg", lambda: 0.0)
    b = Contender("kserve", "http://b", tmp_path / "b", "application/json", lambda: 0.0)
    runs = interleaved([a, b], (1, 4), 2, 1.0, tmp_path / "post.lua", use_wrk=False)
    one_round = [("gateway", 1), ("kserve", 1), ("gateway", 4), ("kserve", 4)]
    assert calls == one_round * 2
    assert set(runs) == set(one_round)
    assert [m.out["requests"] for m in runs["kserve", 4]] == [40, 80]  # in round order


class _Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        thread.join()


def test_a_load_run_counts_requests_and_reads_cpu_before_and_after(server: str, tmp_path: Path) -> None:
    body = tmp_path / "body.bin"
    body.write_bytes(b"x" * 100)
    cpu = iter([1.0, 3.5])  # the server's CPU seconds before and after the run
    backend = iter([10.0, 10.25])
    contender = Contender(
        "s", server, body, "application/octet-stream", lambda: next(cpu), lambda: next(backend)
    )
    measured = load_run(contender, 2, 0.5, tmp_path / "post.lua", use_wrk=False, warmup_s=0.1)
    assert measured.out["requests"] > 0 and measured.out["errors"] == 0
    assert (measured.gateway_cpu_s, measured.backend_cpu_s) == (2.5, 0.25)
    assert measured.loadgen_cpu_s > 0  # the load generator ran as a child process
    assert measured.per_request_ms(measured.gateway_cpu_s) == 2500.0 / measured.out["requests"]
