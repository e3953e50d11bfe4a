"""Table 5: bytes on the wire per path, for the four models' real shapes, with the paper beside."""

from __future__ import annotations

import contextlib
import json

import httpx
import numpy as np

from bench import models, paper, wire
from bench.gwconfig import gateway_config
from bench.results import Row, SuiteResult, Target

MIB = float(1 << 20)
PATHS_IN = {
    "a": "(a) TF REST JSON `instances` (stdlib json)",
    "b": "(b) gRPC PredictRequest, repeated float_val",
    "c": "(c) gRPC PredictRequest, tensor_content float32",
    "d": "(d) gRPC PredictRequest, tensor_content uint8",
    "e": "(e) JPEG q90 of the photo, decoded at the gateway",
}


def input_bodies(model: models.ImageModel, photo: str | None = None) -> dict[str, bytes]:
    """Serialized request bodies for paths a-e (one real photo)."""
    x_u8 = models.uint8_input(model, photo)
    x_f = models.float_input(model, photo)
    name = model.input_name
    return {
        "a": wire.rest_json_request(x_f),
        "b": wire.predict_request(model.backend_name, {name: x_f}, repeated=True).SerializeToString(),
        "c": wire.predict_request(model.backend_name, {name: x_f}).SerializeToString(),
        "d": wire.predict_request(model.backend_name, {name: x_u8}).SerializeToString(),
        "e": models.jpeg(x_u8[0], 90),
    }


class LiveGateway:
    """The real gateway app (uvicorn, loopback) in front of the gateway's test backend, in-process:
    response bodies are exactly what the gateway sends."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.url = ""

    def __enter__(self) -> LiveGateway:
        from kubevc.gateway import parse_config, serve
        from kubevc.gateway.testing import run_test_backend

        backend = self._stack.enter_context(run_test_backend())
        cfg = parse_config(gateway_config(backend.address, "127.0.0.1", 8080))
        self.url = self._stack.enter_context(serve(cfg)).url
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def post(self, path: str, body: bytes, ctype: str) -> bytes:
        r = httpx.post(self.url + path, content=body, headers={"content-type": ctype}, timeout=120)
        r.raise_for_status()
        return r.content


# How each YOLOv5 detections path is named in row labels
GATEWAY_NMS = "NMS in gateway (`yolov5`)"
GRAPH_NMS = f"NMS in graph (`{models.YOLO_NMS}`)"


def postprocessed(
    live: LiveGateway, model: models.ImageModel, jpeg: bytes, gateway_model: str | None = None
) -> tuple[bytes, str]:
    """The gateway's JSON answer to the JPEG (detections or top-5)."""
    body = live.post(f"/v1/models/{gateway_model or model.backend_name}/infer", jpeg, "image/jpeg")
    doc = json.loads(body)
    if model.kind == "detector":
        return body, f"{len(doc['results'][0]['detections'])} detections"
    return body, "top-5, index labels"


def run(mode: str) -> SuiteResult:
    res = SuiteResult("payload", "Payload size per request (paper Table 5)", mode)
    t_in = res.table(
        "input",
        "Request body, MiB",
        ratio_label="× (a) JSON, same run",
        description="Body bytes of one request with batch 1. Paper: its JSON column beside (a), "
        "its protobuf column beside (b) and (c).",
    )
    t_out = res.table(
        "output",
        "Response body, MiB",
        ratio_label="× raw JSON, same run",
        description="Outputs of the gateway's test models (real shapes, input-dependent values).",
    )
    t_head = res.table(
        "headline",
        "YOLOv5 headline ratios",
        paper_label="paper",
        description="Reductions in percent of bytes (request + response), measured in this run.",
    )
    sizes: dict[str, dict[str, float]] = {}
    with LiveGateway() as live:
        _image_rows(res, live, sizes, t_in, t_out)
    _bert_rows(res, t_in)
    _headline(res, sizes, t_head)
    res.notes.append(
        "JSON bodies are `json.dumps(array.tolist())` of float32 arrays: each value printed as the "
        "shortest repr of the float64 it widens to (about 18-20 characters)."
    )
    res.notes.append(
        "Image inputs are scikit-image's sample photos (astronaut for YOLOv5, coffee for InceptionV3, "
        "chelsea for MobileNetV1) resized bicubic to the model size. Gateway answers come from the real "
        "gateway app over loopback in front of its test backend (numpy models of the real shapes)."
    )
    return res


def _image_rows(
    res: SuiteResult, live: LiveGateway, sizes: dict[str, dict[str, float]], t_in: str, t_out: str
) -> None:
    for model in models.IMAGE_MODELS.values():
        bodies = input_bodies(model)
        base = len(bodies["a"])
        raw = float(np.prod(model.input_shape) * 4)
        for key, label in PATHS_IN.items():
            n = len(bodies[key])
            pap = {
                "a": paper.payload_mib(model.name, "in_json"),
                "b": paper.payload_mib(model.name, "in_pb"),
                "c": paper.payload_mib(model.name, "in_pb"),
            }.get(key)
            res.add(
                Row(
                    t_in,
                    f"{model.name} {label}",
                    n / MIB,
                    "MiB",
                    paper=pap,
                    ratio=n / base,
                    extra={
                        "bytes": n,
                        "percent_of_float32": 100.0 * n / raw,
                        "plot": {"group": model.name, "series": label.split(" ")[0]},
                    },
                )
            )
        sizes[model.name] = {k: float(len(v)) for k, v in bodies.items()}
        # outputs
        out = models.model_output(model, {model.input_name: models.float_input(model)})[model.output_name]
        raw_json = wire.rest_json_response(out)
        pb = wire.predict_response(model.backend_name, {model.output_name: out}).SerializeToString()
        res.add(
            Row(
                t_out,
                f"{model.name} raw tensor as TF REST JSON `predictions`",
                len(raw_json) / MIB,
                "MiB",
                paper=paper.payload_mib(model.name, "out_json"),
                ratio=1.0,
                extra={"bytes": len(raw_json)},
            )
        )
        res.add(
            Row(
                t_out,
                f"{model.name} raw tensor as PredictResponse tensor_content",
                len(pb) / MIB,
                "MiB",
                paper=paper.payload_mib(model.name, "out_pb"),
                ratio=len(pb) / len(raw_json),
                extra={"bytes": len(pb)},
            )
        )
        sizes[model.name]["out_json"] = float(len(raw_json))
        sizes[model.name]["out_pb"] = float(len(pb))
        if model.kind == "detector":
            gw_raw = live.post("/v1/models/yolov5-f32:predict", bodies["a"], "application/json")
            res.add(
                Row(
                    t_out,
                    f"{model.name} raw tensor as the gateway's `:predict` JSON (orjson, float32)",
                    len(gw_raw) / MIB,
                    "MiB",
                    ratio=len(gw_raw) / len(raw_json),
                    extra={"bytes": len(gw_raw)},
                )
            )
        path = f" {GATEWAY_NMS}:" if model.kind == "detector" else ""
        try:
            body, what = postprocessed(live, model, bodies["e"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            res.skip(f"{model.name}{path} post-processed output", f"gateway request failed: {exc}")
        else:
            target = Target("<=", 1024, "detections <= 1 KB") if model.kind == "detector" else None
            res.add(
                Row(
                    t_out,
                    f"{model.name}{path} gateway JSON ({what})",
                    len(body) / MIB,
                    "MiB",
                    ratio=len(body) / len(raw_json),
                    extra={"bytes": len(body)},
                )
            )
            if target:
                res.add(
                    Row(
                        t_out,
                        f"{model.name}{path} gateway detections JSON, bytes",
                        float(len(body)),
                        "B",
                        target=target,
                        note="issue 7 target",
                    )
                )
            sizes[model.name]["out_post"] = float(len(body))
        if model.kind == "detector":
            _graph_nms_rows(res, live, model, bodies["e"], sizes, len(raw_json), t_out)
            spread = {p: len(input_bodies(model, p)["e"]) for p in models.PHOTOS}
            res.add(
                Row(
                    t_in,
                    f"{model.name} (e) JPEG as % of float32 tensor",
                    100.0 * len(bodies["e"]) / raw,
                    "%",
                    target=Target("<=", 3.0, "JPEG <= 3% of float32"),
                    extra={
                        "jpeg_bytes_by_photo": spread,
                        "percent_by_photo": {p: 100.0 * b / raw for p, b in spread.items()},
                    },
                    note=f"photo `{model.photo}`; all three samples: "
                    + ", ".join(f"{p} {b / 1024:.0f} KiB" for p, b in spread.items()),
                )
            )


def _graph_nms_rows(
    res: SuiteResult,
    live: LiveGateway,
    model: models.ImageModel,
    jpeg: bytes,
    sizes: dict[str, dict[str, float]],
    raw_json_bytes: int,
    t_out: str,
) -> None:
    """The same detector exported with NMS in its graph: its four outputs as the backend sends
    them (protobuf) and as TF REST JSON, and the gateway's detections JSON; ratios to the raw
    YOLO tensor's JSON above, so both paths compare in one column."""
    outputs = models.backend_output(models.YOLO_NMS, {model.input_name: models.float_input(model)})
    raw_json = wire.rest_json_response(outputs)
    pb = wire.predict_response(models.YOLO_NMS, outputs).SerializeToString()
    shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in outputs.items())
    for what, n in (
        ("raw outputs as TF REST JSON `predictions`", len(raw_json)),
        ("raw outputs as PredictResponse tensor_content (backend -> gateway)", len(pb)),
    ):
        res.add(
            Row(
                t_out,
                f"{model.name} {GRAPH_NMS}: {what}",
                n / MIB,
                "MiB",
                ratio=n / raw_json_bytes,
                note=f"{n:,} B; {shapes}",
                extra={"bytes": n, "path": "graph-nms"},
            )
        )
    sizes[model.name]["out_json_graph_nms"] = float(len(raw_json))
    sizes[model.name]["out_pb_graph_nms"] = float(len(pb))
    try:
        body, what = postprocessed(live, model, jpeg, models.YOLO_NMS)
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        res.skip(f"{model.name} {GRAPH_NMS} post-processed output", f"gateway request failed: {exc}")
        return
    res.add(
        Row(
            t_out,
            f"{model.name} {GRAPH_NMS}: gateway JSON ({what})",
            len(body) / MIB,
            "MiB",
            ratio=len(body) / raw_json_bytes,
            extra={"bytes": len(body), "path": "graph-nms"},
        )
    )
    res.add(
        Row(
            t_out,
            f"{model.name} {GRAPH_NMS}: gateway detections JSON, bytes",
            float(len(body)),
            "B",
            target=Target("<=", 1024, "detections <= 1 KB"),
            note="issue 7 target",
        )
    )
    sizes[model.name]["out_post_graph_nms"] = float(len(body))


def _bert_rows(res: SuiteResult, t_in: str) -> None:
    res.notes.append(
        "BERT: 500 tokens from real English text (Debian's Apache-2.0 licence text); ids are a deterministic "
        "word -> id map into BERT's 30522-entry range (no WordPiece vocabulary ships here), with [CLS]/[SEP] "
        "and padding, so JSON digit counts match real ids."
    )
    inputs = models.bert_inputs()
    text = models.english_text().encode()
    bert_bodies = {
        "a": wire.rest_json_request(inputs),
        "b": wire.predict_request("bert", inputs, repeated=True).SerializeToString(),
        "c": wire.predict_request("bert", inputs).SerializeToString(),
        "e": text,
    }
    labels = {
        "a": "(a) TF REST JSON `instances`, 3 inputs x 500 int32",
        "b": "(b) gRPC PredictRequest, repeated int_val (varint)",
        "c": "(c) gRPC PredictRequest, tensor_content int32",
        "e": "(e) text/plain UTF-8, tokenized at the gateway",
    }
    for key, body in bert_bodies.items():
        pap = {"a": paper.payload_mib("BERT", "in_json"), "c": paper.payload_mib("BERT", "in_pb")}.get(key)
        res.add(
            Row(
                t_in,
                f"BERT {labels[key]}",
                len(body) / MIB,
                "MiB",
                paper=pap,
                ratio=len(body) / len(bert_bodies["a"]),
                extra={"bytes": len(body), "plot": {"group": "BERT", "series": key.join("()")}},
            )
        )


def _headline(res: SuiteResult, sizes: dict[str, dict[str, float]], t_head: str) -> None:
    y = sizes["YOLOv5"]
    json_total, pb_total = y["a"] + y["out_json"], y["c"] + y["out_pb"]
    res.add(
        Row(
            t_head,
            "protobuf (c) vs JSON (a), request + response: % smaller",
            100 * (1 - pb_total / json_total),
            "%",
            paper=paper.headline("yolov5_payload_reduction_percent"),
        )
    )
    for key, path in (("out_post", GATEWAY_NMS), ("out_post_graph_nms", GRAPH_NMS)):
        if key not in y:
            continue
        ours = y["e"] + y[key]
        res.add(
            Row(
                t_head,
                f"JPEG in + detections out, {path}, vs protobuf (c): % smaller",
                100 * (1 - ours / pb_total),
                "%",
                target=Target(">=", 98.0, ">= 98% less than the protobuf path"),
            )
        )
        res.add(
            Row(
                t_head,
                f"JPEG in + detections out, {path}, vs JSON (a): % smaller",
                100 * (1 - ours / json_total),
                "%",
                target=Target(">=", 99.5, ">= 99.5% less than JSON"),
            )
        )
    if "out_pb_graph_nms" in y:
        res.add(
            Row(
                t_head,
                "backend -> gateway answer (protobuf), NMS in graph vs raw YOLO tensor: % smaller",
                100 * (1 - y["out_pb_graph_nms"] / y["out_pb"]),
                "%",
                note=f"{y['out_pb_graph_nms']:,.0f} B vs {y['out_pb']:,.0f} B",
            )
        )
        hop_gw, hop_graph = y["d"] + y["out_pb"], y["d"] + y["out_pb_graph_nms"]
        res.add(
            Row(
                t_head,
                "gateway <-> backend bytes (uint8 (d) in + answer), NMS in graph vs in gateway: % smaller",
                100 * (1 - hop_graph / hop_gw),
                "%",
                note=f"{hop_graph / MIB:.3g} MiB vs {hop_gw / MIB:.3g} MiB",
            )
        )
    if "out_post" in y:
        ours = y["e"] + y["out_post"]
        p_pb = (paper.payload_mib("YOLOv5", "in_pb") or 0) + (paper.payload_mib("YOLOv5", "out_pb") or 0)
        if p_pb:
            res.add(
                Row(
                    t_head,
                    f"JPEG in + detections out, {GATEWAY_NMS}, vs the paper's protobuf bytes: % smaller",
                    100 * (1 - ours / (p_pb * MIB)),
                    "%",
                    note="ours against the paper's reported MiB",
                )
            )
