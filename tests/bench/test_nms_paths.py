"""The NMS-in-graph path (`yolov5-nms`) beside NMS in the gateway (`yolov5`) in every suite: bodies,
result rows, per-path targets and the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import gw, models, report, wire
from bench.gwconfig import gateway_config
from bench.results import SuiteResult, load_results, write_result
from bench.suites import codec, payload, throughput, transfer
from bench.timing import Budget


def _measured(requests: int, seconds: float, gw_cpu: float, be_cpu: float) -> throughput.Measured:
    out = {
        "tool": "wrk",
        "requests": requests,
        "errors": 0,
        "seconds": seconds,
        "requests_per_s": requests / seconds,
        "p50_ms": 20.0,
        "p99_ms": 40.0,
    }
    return throughput.Measured(
        out,
        wall_s=seconds,
        gateway_cpu_s=gw_cpu,
        backend_cpu_s=be_cpu,
        loadgen_cpu_s=0.5,
        gateway_rss_peak_kib=1024,
    )


def _throughput_result() -> SuiteResult:
    res = SuiteResult("throughput", "Throughput", "quick")
    res.machine = {"cpu_model": "Test CPU", "cores": 2}
    t, t_cpu, t_fp = res.table("rps", "rps"), res.table("cpu", "cpu"), res.table("footprint", "fp")
    gw_nms, graph_nms, rest = throughput.CASES
    # 600 requests in 6 s (100 req/s: miss), 1200 in 6 s (200 req/s: pass), 12 in 8 s
    throughput.add_case_rows(res, t, t_cpu, t_fp, gw_nms, _measured(600, 6.0, 6.0, 4.8), 2)
    throughput.add_case_rows(res, t, t_cpu, t_fp, graph_nms, _measured(1200, 6.0, 3.6, 1.2), 2)
    throughput.add_case_rows(res, t, t_cpu, t_fp, rest, _measured(12, 8.0, 6.0, 0.2), 2)
    throughput.set_ratios(res, t, throughput.TF_REST)
    return res


def test_gateway_config_serves_both_detection_paths() -> None:
    from kubevc.gateway import parse_config

    cfg = parse_config(gateway_config("127.0.0.1:8500", "127.0.0.1", 8080))
    by_name = {m.name: m for m in cfg.models}
    assert by_name["yolov5"].output.postprocess == "yolo"
    assert by_name[models.YOLO_NMS].output.postprocess == "detections"
    assert by_name[models.YOLO_NMS].output.detection_outputs == list(models.YOLO_NMS_OUTPUTS)
    assert by_name[models.YOLO_NMS].input.dtype == "uint8"


def test_throughput_cases_name_their_path() -> None:
    labels = [c.label for c in throughput.CASES]
    assert len(set(labels)) == 3
    assert "NMS in gateway" in labels[0] and "`yolov5`" in labels[0]
    assert "NMS in graph" in labels[1] and f"`{models.YOLO_NMS}`" in labels[1]
    assert labels[2] == throughput.TF_REST
    assert [c.target is not None for c in throughput.CASES] == [True, True, False]
    assert throughput.CASES[1].url("http://h") == f"http://h/v1/models/{models.YOLO_NMS}/infer"
    assert throughput.CASES[2].url("http://h") == "http://h/v1/models/yolov5-f32:predict"
    assert all(len(f"gateway RSS peak: {c.label}") <= 78 for c in throughput.CASES)  # console width


def test_throughput_rows_targets_cpu_per_request_and_ratios(tmp_path: Path) -> None:
    res = _throughput_result()
    write_result(res, tmp_path)  # validates against the schema
    (doc,) = load_results(tmp_path)
    rps = [r for r in doc["rows"] if r["table"] == "rps"]
    assert [r["status"] for r in rps] == ["miss", "pass", None]
    assert [r["value"] for r in rps] == pytest.approx([100.0, 200.0, 1.5])
    assert [r["ratio"] for r in rps] == pytest.approx([100 / 1.5, 200 / 1.5, 1.0])
    assert all(r["target"]["value"] == 150.0 for r in rps[:2])
    assert "issue 5" in rps[0]["note"]
    cpu = {r["label"]: r["value"] for r in doc["rows"] if r["table"] == "cpu"}
    graph = throughput.CASES[1].label
    assert cpu[f"gateway CPU/request: {graph}"] == pytest.approx(3.0)  # 3.6 s / 1200 requests
    assert cpu[f"backend CPU/request: {graph}"] == pytest.approx(1.0)
    assert cpu[f"both CPU/request: {graph}"] == pytest.approx(4.0)
    assert rps[1]["extra"]["cpu_bound_requests_per_s"] == pytest.approx(500.0)  # 2 cores / 4 ms
    assert rps[1]["extra"]["model"] == models.YOLO_NMS


def test_throughput_with_no_requests_has_no_cpu_per_request() -> None:
    res = SuiteResult("throughput", "Throughput", "quick")
    t, t_cpu, t_fp = res.table("rps", "rps"), res.table("cpu", "cpu"), res.table("footprint", "fp")
    throughput.add_case_rows(res, t, t_cpu, t_fp, throughput.CASES[0], _measured(0, 6.0, 1.0, 1.0), 2)
    assert [r.value for r in res.rows if r.table == "cpu"] == [None, None, None]
    assert res.rows[0].target is not None and res.rows[0].target.status(res.rows[0].value) == "miss"


def test_report_lists_the_rps_target_per_path(tmp_path: Path) -> None:
    write_result(_throughput_result(), tmp_path)
    md = report.render_markdown(load_results(tmp_path))
    summary = md.split("## Targets from issues 5, 7 and 18")[1].split("\n## ")[0]
    lines = [line for line in summary.splitlines() if line.startswith("| throughput |")]
    assert len(lines) == 2
    assert "NMS in gateway" in lines[0] and "❌ miss" in lines[0]
    assert "NMS in graph" in lines[1] and "✅ pass" in lines[1]


def test_transfer_spec_sends_the_jpeg_to_both_detection_paths(tmp_path: Path) -> None:
    files = {k: tmp_path / f"body-{k}.bin" for k in "abcde"}
    spec = transfer.client_spec(files, "10.0.0.1", quick=True, first=True)
    paths = {p["key"]: p for p in spec["paths"]}
    assert paths["e"]["url"].endswith("/v1/models/yolov5/infer")
    assert paths["n"]["url"].endswith(f"/v1/models/{models.YOLO_NMS}/infer")
    assert paths["n"]["body_file"] == paths["e"]["body_file"] == str(files["e"])
    assert paths["n"]["metrics_url"].endswith("/metrics")
    assert paths["we"]["body_file"] == str(files["e"])
    assert "NMS in gateway" in transfer.LABELS["e"] and "NMS in graph" in transfer.LABELS["n"]


def test_rest_json_response_of_several_outputs_is_tf_row_format() -> None:
    outs = {"boxes": np.zeros((2, 3, 4), np.float32), "num": np.array([1.0, 2.0], np.float32)}
    doc = json.loads(wire.rest_json_response(outs))
    assert len(doc["predictions"]) == 2
    assert doc["predictions"][1] == {"boxes": [[0.0] * 4] * 3, "num": 2.0}
    single = json.loads(wire.rest_json_response(np.ones((1, 2), np.float32)))
    assert single == {"predictions": [[1.0, 1.0]]}


class _FakeLive:
    """Answers /infer with the gateway's detections of the test models (no server)."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def post(self, path: str, body: bytes, ctype: str) -> bytes:
        self.paths.append(path)
        m = models.IMAGE_MODELS["YOLOv5"]
        x = {"images": models.uint8_input(m)}
        if models.YOLO_NMS in path:
            dets = gw.model_detections(models.backend_output(models.YOLO_NMS, x))
        else:
            dets = gw.detections(models.model_output(m, x)["output0"])
        return json.dumps({"results": [{"width": 640, "height": 640, "detections": dets}]}).encode()


def test_payload_rows_for_nms_in_graph() -> None:
    res = SuiteResult("payload", "Payload", "quick")
    t_out, t_head = res.table("output", "out"), res.table("headline", "head")
    m = models.IMAGE_MODELS["YOLOv5"]
    live: Any = _FakeLive()
    sizes: dict[str, dict[str, float]] = {
        "YOLOv5": {"a": 23e6, "c": 4.9e6, "d": 1.2e6, "e": 116e3, "out_json": 44e6, "out_pb": 8568052.0}
    }
    payload._graph_nms_rows(res, live, m, b"\xff\xd8\xff", sizes, 44_000_000, t_out)
    assert live.paths == [f"/v1/models/{models.YOLO_NMS}/infer"]
    rows = {r.label: r for r in res.rows}
    assert all(payload.GRAPH_NMS in label for label in rows)
    pb = next(r for label, r in rows.items() if "PredictResponse" in label)
    assert 2000 < pb.extra["bytes"] < 4000  # 100 x (4 + 1 + 1) floats + 1, tensor_content
    target_row = next(r for r in rows.values() if r.target is not None)
    assert target_row.target is not None and target_row.target.status(target_row.value) == "pass"
    assert {"out_pb_graph_nms", "out_json_graph_nms", "out_post_graph_nms"} <= set(sizes["YOLOv5"])
    sizes["YOLOv5"]["out_post"] = 307.0
    payload._headline(res, sizes, t_head)
    head = [r.label for r in res.rows if r.table == t_head]
    assert sum(payload.GATEWAY_NMS in label for label in head) == 3  # (c), (a), paper's protobuf
    assert sum(payload.GRAPH_NMS in label for label in head) == 2
    hop = next(r for r in res.rows if r.label.startswith("backend -> gateway answer"))
    assert hop.value is not None and hop.value > 99.9


def test_codec_rows_for_both_detection_paths() -> None:
    res = SuiteResult("codec", "Codec", "quick")
    t = res.table("media", "media")
    yolo = models.IMAGE_MODELS["YOLOv5"]
    raw = models.model_output(yolo, {"images": models.uint8_input(yolo)})["output0"]
    codec._detection_path_rows(res, t, yolo, raw, Budget(1, 1, 0.0))
    assert not res.skipped
    labels = [r.label for r in res.rows]
    assert len(labels) == 3
    assert "NMS in gateway" in labels[1] and "NMS in graph" in labels[2]
    assert res.rows[1].extra["response_bytes"] > 8_000_000 > 4000 > res.rows[2].extra["response_bytes"]
    assert all(r.value is not None and r.value > 0 for r in res.rows)


def test_both_detection_paths_find_the_same_objects() -> None:
    yolo = models.IMAGE_MODELS["YOLOv5"]
    x = {"images": models.uint8_input(yolo)}
    outputs = models.backend_output(models.YOLO_NMS, x)
    data = wire.predict_response(models.YOLO_NMS, outputs).SerializeToString()
    graph = gw.model_detections(gw.read_response(data, set(models.YOLO_NMS_OUTPUTS)))
    ours = gw.detections(models.model_output(yolo, x)["output0"])
    assert sorted(d["class"] for d in graph) == sorted(d["class"] for d in ours)
    assert len(graph) == 3
