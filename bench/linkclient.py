"""``python -m bench.linkclient SPEC.json``: the benchmark client, run inside the client namespace
(or on loopback). Sends pre-serialized bodies so that only transfer + server work is timed, reads
each full response, and prints one JSON document with the per-request seconds of every path.

HTTP paths use one keep-alive httpx connection; gRPC paths send the serialized PredictRequest
bytes through a generic unary call (no client-side serialization in the timed region).
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import httpx

PREDICT = "/tensorflow.serving.PredictionService/Predict"


def _wait_ready(spec: dict[str, Any]) -> None:
    deadline = time.monotonic() + float(spec.get("ready_timeout", 30))
    for url in spec.get("ready_http", []):
        while True:
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready")
            time.sleep(0.1)
    for target in spec.get("ready_grpc", []):
        channel = grpc.insecure_channel(target)
        grpc.channel_ready_future(channel).result(timeout=max(1.0, deadline - time.monotonic()))
        channel.close()


def scrape(http: httpx.Client, url: str) -> dict[str, float]:
    """Prometheus text -> {sample name with labels: value} (only the gateway's duration sums/counts)."""
    values: dict[str, float] = {}
    for line in http.get(url).text.splitlines():
        if line.startswith("kubevc_gateway_request_duration_seconds_") and (
            "_sum{" in line or "_count{" in line
        ):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def run_path(path: dict[str, Any], http: httpx.Client, channels: dict[str, grpc.Channel]) -> dict[str, Any]:
    if "request_bytes" in path:  # wire-only twin with given byte counts (content is irrelevant to a sink)
        body = bytes(int(path["request_bytes"]))
    else:
        body = Path(path["body_file"]).read_bytes()
    min_count, max_count = int(path.get("min_count", 2)), int(path.get("max_count", 20))
    max_seconds = float(path.get("max_seconds", 5.0))
    if path["kind"] == "tcp":
        host, _, port = path["target"].rpartition(":")
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reply_len = int(path["reply_bytes"])
        head = struct.pack("<QQ", len(body), reply_len)
        buf = bytearray(1 << 20)

        def once() -> int:
            sock.sendall(head)
            sock.sendall(body)
            left = reply_len
            while left:
                n = sock.recv_into(buf, min(left, len(buf)))
                if not n:
                    raise ConnectionError("sink closed the connection")
                left -= n
            return reply_len
    elif path["kind"] == "http":
        headers = {"content-type": path["content_type"]}

        def once() -> int:
            r = http.post(path["url"], content=body, headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"{path['url']}: HTTP {r.status_code}: {r.text[:300]}")
            return len(r.content)
    else:
        target = path["target"]
        if target not in channels:
            opts = [
                ("grpc.max_send_message_length", 256 << 20),
                ("grpc.max_receive_message_length", 256 << 20),
            ]
            channels[target] = grpc.insecure_channel(target, options=opts)
        call = channels[target].unary_unary(PREDICT, request_serializer=None, response_deserializer=None)

        def once() -> int:
            reply: bytes = call(body, timeout=120)
            return len(reply)

    if path.get("warmup", True):
        resp_bytes = once()  # warm-up: connection, first-call costs
    elif path["kind"] == "http":
        http.get(path.get("warm_url", path["url"]))  # just the connection
    elif path["kind"] == "grpc":
        grpc.channel_ready_future(channels[path["target"]]).result(timeout=30)
    before = scrape(http, path["metrics_url"]) if path.get("metrics_url") else {}
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_count:
        t0 = time.perf_counter()
        resp_bytes = once()
        times.append(time.perf_counter() - t0)
        if len(times) >= min_count and time.perf_counter() - start > max_seconds:
            break
    result: dict[str, Any] = {"times": times, "request_bytes": len(body), "response_bytes": resp_bytes}
    if path.get("metrics_url"):
        after = scrape(http, path["metrics_url"])
        result["metrics_delta"] = {k: v - before.get(k, 0.0) for k, v in after.items()}
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(args[0]).read_text())
    _wait_ready(spec)
    out: dict[str, Any] = {}
    channels: dict[str, grpc.Channel] = {}
    with httpx.Client(timeout=httpx.Timeout(180.0)) as http:
        for path in spec["paths"]:
            like = path.get("reply_like")
            if like:  # wire-only twin of a measured path: same request body, same reply size
                path = {**path, "reply_bytes": out.get(like, {}).get("response_bytes", 0)}
            try:
                out[path["key"]] = run_path(path, http, channels)
            except Exception as exc:
                out[path["key"]] = {"error": f"{type(exc).__name__}: {exc}"}
    for ch in channels.values():
        ch.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
