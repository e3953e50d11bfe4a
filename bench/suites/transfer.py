"""Transfer time over a real link: client namespace <-veth (tc tbf)-> gateway + test backend.

YOLOv5, batch 1, paths (a)-(e) and (e') = (e) through the detector exported with NMS in its graph
(``yolov5-nms``), in the same run; p50/p95 of the whole request (send, server work, full response),
with the request bodies serialized beforehand (their encode cost is in the codec suite).
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench import models, netns, paper, wire
from bench.gwconfig import write_config
from bench.procs import Proc, python_cmd
from bench.results import Row, SuiteResult, Target
from bench.timing import percentile

MIB = float(1 << 20)
GRPC_PORT, HTTP_PORT, SINK_PORT = 8500, 8080, 8600
LABELS = {
    "a": "(a) TF REST JSON in, raw tensor JSON out (gateway `:predict`)",
    "b": "(b) gRPC float_val in, PredictResponse out (direct)",
    "c": "(c) gRPC tensor_content float32 in, PredictResponse out (direct)",
    "d": "(d) gRPC tensor_content uint8 in, PredictResponse out (direct)",
    "e": "(e) JPEG in, detections JSON out, NMS in gateway (`yolov5` `/infer`)",
    "n": "(e') JPEG in, detections JSON out, NMS in graph (`yolov5-nms` `/infer`)",
    "wa": "wire only: bytes of (a), TCP sink",
    "wc": "wire only: bytes of (c), TCP sink",
    "we": "wire only: bytes of (e), TCP sink",
    "wpj": "wire only: the paper's YOLOv5 JSON bytes (in + out), TCP sink",
    "wpp": "wire only: the paper's YOLOv5 protobuf bytes (in + out), TCP sink",
}


# the series name of each path in the plot ((e') has key "n": keys are one letter)
SERIES = {"n": "(e')"}
# the request body each path sends, when it is another path's
BODY_OF = {"n": "e"}


def bodies(tmp: Path) -> dict[str, Path]:
    m = models.IMAGE_MODELS["YOLOv5"]
    x_f, x_u8 = models.float_input(m), models.uint8_input(m)
    data = {
        "a": wire.rest_json_request(x_f),
        "b": wire.predict_request("yolov5", {"images": x_f}, repeated=True).SerializeToString(),
        "c": wire.predict_request("yolov5", {"images": x_f}).SerializeToString(),
        "d": wire.predict_request("yolov5", {"images": x_u8}).SerializeToString(),
        "e": models.jpeg(x_u8[0], 90),
    }
    out = {}
    for key, body in data.items():
        out[key] = tmp / f"body-{key}.bin"
        out[key].write_bytes(body)
    return out


def paper_bytes(kind: str) -> tuple[int, int] | None:
    """The paper's Table 5 YOLOv5 request/response sizes (MiB) as byte counts."""
    i, o = paper.payload_mib("YOLOv5", f"in_{kind}"), paper.payload_mib("YOLOv5", f"out_{kind}")
    if i is None or o is None:
        return None
    return round(i * MIB), round(o * MIB)


def client_spec(
    files: dict[str, Path], server: str, quick: bool, first: bool, paper_twins: bool = False
) -> dict[str, Any]:
    gw = f"http://{server}:{HTTP_PORT}"
    target = f"{server}:{GRPC_PORT}"
    small = {"min_count": 3, "max_count": 20 if quick else 200, "max_seconds": 1.5 if quick else 15.0}
    big = {"min_count": 2, "max_count": 3 if quick else 30, "max_seconds": 2.0 if quick else 30.0}
    paths: list[dict[str, Any]] = [
        {
            "key": "a",
            "kind": "http",
            "url": f"{gw}/v1/models/yolov5-f32:predict",
            "content_type": "application/json",
            "metrics_url": f"{gw}/metrics",
            **big,
        },
        {"key": "b", "kind": "grpc", "target": target, **small},
        {"key": "c", "kind": "grpc", "target": target, **small},
        {"key": "d", "kind": "grpc", "target": target, **small},
        *(
            {
                "key": key,
                "kind": "http",
                "url": f"{gw}/v1/models/{model}/infer",
                "content_type": "image/jpeg",
                "metrics_url": f"{gw}/metrics",
                **small,
            }
            for key, model in (("e", "yolov5"), ("n", models.YOLO_NMS))
        ),
    ]
    sink = f"{server}:{SINK_PORT}"
    tcp = {**small, "max_seconds": 1.0 if quick else 10.0, "warmup": False}
    paths += [
        {"key": f"w{k}", "kind": "tcp", "target": sink, "reply_like": k, **(big if k == "a" else tcp)}
        for k in "ace"
    ]
    if paper_twins:  # the paper's byte counts through the same sink: its 83.6% claim on this link
        for key, kind in (("wpj", "json"), ("wpp", "pb")):
            sizes = paper_bytes(kind)
            if sizes:
                paths.append(
                    {
                        "key": key,
                        "kind": "tcp",
                        "target": sink,
                        "request_bytes": sizes[0],
                        "reply_bytes": sizes[1],
                        **(big if kind == "json" else tcp),
                    }
                )
    if not first:  # the server side is warm after the first link: warm up the connection only
        for p in paths:
            p["warmup"] = False
            p["warm_url"] = f"{gw}/healthz"
    for p in paths:
        if "request_bytes" not in p:
            key = p["key"][-1]
            p["body_file"] = str(files[BODY_OF.get(key, key)])
    return {"ready_http": [f"{gw}/healthz"], "ready_grpc": [target], "paths": paths}


_SAMPLE = re.compile(r"^kubevc_gateway_request_duration_seconds_(sum|count)\{(.*)\}$")


def stage_means(delta: dict[str, float]) -> dict[str, float]:
    """Mean seconds per request of each gateway stage, from /metrics deltas."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for name, value in delta.items():
        m = _SAMPLE.match(name)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        stage = labels.get("stage", "?")
        (sums if m.group(1) == "sum" else counts)[stage] = (sums if m.group(1) == "sum" else counts).get(
            stage, 0.0
        ) + value
    return {s: sums[s] / counts[s] for s in sums if counts.get(s)}


def run(mode: str) -> SuiteResult:
    quick = mode == "quick"
    res = SuiteResult("transfer", "Transfer time over a rate-limited veth link (YOLOv5, batch 1)", mode)
    reason = netns.unavailable_reason()
    if reason:
        res.skip("transfer over network namespaces", reason)
        return res
    shapes = [netns.UNSHAPED, netns.GBIT, netns.MBIT100]
    measured: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="kvb-transfer-") as tmpdir, netns.Link() as link:
        tmp = Path(tmpdir)
        files = bodies(tmp)
        cfg = write_config(tmp / "gateway.yaml", f"{link.server_ip}:{GRPC_PORT}", link.server_ip, HTTP_PORT)
        prefix = link.exec_prefix(link.server_ns)
        with (
            Proc(
                python_cmd("bench.serve_backend", "--host", link.server_ip, "--port", str(GRPC_PORT)),
                tmp / "backend.log",
                prefix,
            ) as backend,
            Proc(
                python_cmd("kubevc.gateway.cli", "--config", str(cfg)), tmp / "gateway.log", prefix
            ) as gateway,
            Proc(
                python_cmd("bench.serve_sink", "--host", link.server_ip, "--port", str(SINK_PORT)),
                tmp / "sink.log",
                prefix,
            ) as sink,
        ):
            backend.wait_line("READY", 60)
            sink.wait_line("READY", 60)
            for i, shape in enumerate(shapes):
                spec_path = tmp / f"spec-{i}.json"
                spec_path.write_text(
                    json.dumps(
                        client_spec(
                            files, link.server_ip, quick, first=i == 0, paper_twins=shape is netns.GBIT
                        )
                    )
                )
                link.shape(shape)
                proc = subprocess.run(
                    [*link.exec_prefix(link.client_ns), *python_cmd("bench.linkclient", str(spec_path))],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    cwd=Path(__file__).resolve().parents[2],
                )
                if proc.returncode != 0:
                    raise RuntimeError(
                        f"client failed on {shape.name}: {proc.stderr[-2000:]}\ngateway log: {gateway.tail()}"
                    )
                measured[shape.name] = json.loads(proc.stdout.strip().splitlines()[-1])
                measured[shape.name]["_qdisc"] = {"text": link.qdisc()}
    head = res.table(
        "headline",
        "YOLOv5 headline ratios (same run)",
        description="Percent less time per request than (a) on the same link, p50.",
    )
    for shape in shapes:
        data = measured[shape.name]
        t = res.table(
            f"link-{shape.rate or 'veth'}",
            f"{shape.name}: request time p50, ms",
            ratio_label="× (a) p50, same link",
            description=f"qdisc: `{data['_qdisc']['text'] or 'none'}`",
        )
        base = None
        for key, label in LABELS.items():
            if key not in data:
                continue
            d = data[key]
            if "error" in d or not d.get("times"):
                res.skip(f"{shape.name} {label}", d.get("error", "no samples"))
                continue
            times = d["times"]
            p50, p95 = percentile(times, 50) * 1e3, percentile(times, 95) * 1e3
            base = p50 if key == "a" else base
            if key.startswith("w"):
                base = p50 if key == "wa" else base
            if key.startswith("wp"):
                base = p50 if key == "wpj" else base
            wire_ms = None
            if shape.bits_per_second:
                wire_ms = (d["request_bytes"] + d["response_bytes"]) * 8 / shape.bits_per_second * 1e3
            extra: dict[str, Any] = {
                "p50_ms": p50,
                "p95_ms": p95,
                "n": len(times),
                "request_bytes": d["request_bytes"],
                "response_bytes": d["response_bytes"],
                "serialization_ms_at_rate": wire_ms,
                "plot": {"group": shape.name, "series": SERIES.get(key, key.join("()")), "high": p95},
            }
            if "metrics_delta" in d:
                extra["gateway_stage_mean_ms"] = {
                    k: v * 1e3 for k, v in stage_means(d["metrics_delta"]).items()
                }
            note = (
                f"p95 {p95:.1f} ms · n={len(times)} · in {d['request_bytes'] / MIB:.3g} MiB, "
                f"out {d['response_bytes'] / MIB:.3g} MiB"
            )
            res.add(Row(t, label, p50, "ms", ratio=p50 / base if base else None, note=note, extra=extra))

    # headline: ratios on the 1 Gbit/s link, wire time of (e), gateway-added latency
    def p50_of(shape: netns.Shape, key: str) -> float | None:
        d = measured.get(shape.name, {}).get(key, {})
        return percentile(d["times"], 50) * 1e3 if d.get("times") else None

    def add_less_time(
        label: str, new: float | None, base: float | None, paper_pct: float | None = None, note: str = ""
    ) -> None:
        """A "% less time" row for two p50s of this run; left out when either was not measured."""
        if new and base:
            res.add(Row(head, label, 100 * (1 - new / base), "%", paper=paper_pct, note=note))

    a1, c1, e1 = p50_of(netns.GBIT, "a"), p50_of(netns.GBIT, "c"), p50_of(netns.GBIT, "e")
    n1 = p50_of(netns.GBIT, "n")
    add_less_time(
        "1 Gbit/s: (c) protobuf vs (a) JSON, % less time",
        c1,
        a1,
        paper.headline("yolov5_transfer_time_reduction_percent"),
    )
    add_less_time(
        "1 Gbit/s: (e) JPEG -> detections vs (a) JSON, % less time (end to end)",
        e1,
        a1,
        paper.headline("end_to_end_gain_percent_approx"),
    )
    add_less_time("1 Gbit/s: (e) JPEG -> detections vs (c) protobuf, % less time", e1, c1)
    add_less_time(
        "1 Gbit/s: (e') JPEG -> detections, NMS in graph, vs (a) JSON, % less time (end to end)",
        n1,
        a1,
        paper.headline("end_to_end_gain_percent_approx"),
    )
    for shape in (netns.UNSHAPED, netns.GBIT, netns.MBIT100):
        e_, n_ = p50_of(shape, "e"), p50_of(shape, "n")
        if e_ and n_:
            add_less_time(
                f"{shape.name}: (e') NMS in graph vs (e) NMS in gateway, % less time",
                n_,
                e_,
                note=f"p50 {n_:.1f} ms vs {e_:.1f} ms; same bytes on the link, the difference is "
                "server-side (the backend's raw YOLO tensor + gateway NMS vs its four detection outputs)",
            )
    we1 = p50_of(netns.GBIT, "we")
    if we1 is not None:
        d = measured[netns.GBIT.name]["we"]
        ideal = (d["request_bytes"] + d["response_bytes"]) * 8 / 1e9 * 1e3
        res.add(
            Row(
                head,
                "(e) wire time at 1 Gbit/s (its bytes through the TCP sink, p50 round trip)",
                we1,
                "ms",
                target=Target("<=", 2.0, "wire time at 1 Gbit/s <= 2 ms"),
                note=f"bytes × 8 / rate = {ideal:.2f} ms",
            )
        )
    wa1, wc1 = p50_of(netns.GBIT, "wa"), p50_of(netns.GBIT, "wc")
    add_less_time(
        "1 Gbit/s wire only: bytes of (c) vs bytes of (a), % less time",
        wc1,
        wa1,
        paper.headline("yolov5_transfer_time_reduction_percent"),
    )
    wpj, wpp = p50_of(netns.GBIT, "wpj"), p50_of(netns.GBIT, "wpp")
    if wpj and wpp:
        add_less_time(
            "1 Gbit/s wire only, the paper's byte counts: protobuf vs JSON, % less time",
            wpp,
            wpj,
            paper.headline("yolov5_transfer_time_reduction_percent"),
            note=f"{wpj:.0f} ms vs {wpp:.0f} ms",
        )
    for key in ("a", "e", "n"):
        d = measured.get(netns.UNSHAPED.name, {}).get(key, {})
        stages = stage_means(d.get("metrics_delta", {}))
        if "total" in stages and "backend" in stages:
            added = (stages["total"] - stages["backend"]) * 1e3
            mib = d["request_bytes"] / MIB
            res.add(
                Row(
                    head,
                    f"gateway-added latency {SERIES.get(key, key.join('()'))}, ms per MiB of request body",
                    added / mib,
                    "ms/MiB",
                    note=f"{added:.1f} ms per request (total − backend stage, gateway /metrics), "
                    f"{mib:.3g} MiB body",
                    extra={"stages_ms": {k: v * 1e3 for k, v in stages.items()}},
                )
            )
    res.notes.append(
        "(b)-(d) talk gRPC straight to the test PredictionService (the paper's gRPC path); (a), (e) and "
        "(e') go through the gateway, which calls the same backend with tensor_content over the server "
        "namespace's own address. (e) asks `yolov5` for the raw (1, 25200, 85) tensor and runs YOLO "
        "decode + NMS in the gateway; (e') asks `yolov5-nms` (the same detector exported with NMS in "
        "its graph) for its four detection outputs; client-side bytes are the same."
    )
    res.notes.append(
        "(a)'s answer is the gateway's TF-compatible `:predict` JSON, written with orjson (shortest float32 "
        "repr), about half the size of stdlib-style JSON of the same tensor (see the payload suite): TF "
        "Serving's own REST answer would be larger and slower than (a) here."
    )
    res.notes.append(
        "The backend is the gateway's test server (numpy models of the real shapes), so inference time "
        "is small and the same for every path; the bare-veth table shows the compute-only baseline."
    )
    return res
