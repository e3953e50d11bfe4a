"""The throughput suite's JPEG paths with the real ``tritonserver`` as the backend (issue 18).

The gateway (its own process, uvicorn) in front of ``tritonserver`` from PyPI's ``nvidia-pytriton``
(``.tools/triton``, ``make tools``), over v2 gRPC, serving the Python-backend YOLOv5 models that
:mod:`bench.triton_models` writes into a fresh model repository: the raw ``(1, 25200, 85)`` answer
with NMS in the gateway (``yolov5``, uint8 NCHW), NMS in the graph (``yolov5-nms``), and the
encoded-bytes passthrough (``yolov5-encoded``: the gateway sends the JPEG as it came, a BYTES
tensor, the model decodes it). Load from ``wrk`` in its own process; CPU per request of the gateway
and of Triton (server + Python backend stubs) from /proc, as in the ``throughput`` suite.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench import triton_models
from bench.gw import COCO_LABELS
from bench.machine import usable_cores
from bench.procs import Proc, python_cmd, wait_http
from bench.results import SuiteResult, Target
from bench.rounds import Contender, load_run
from bench.suites.kserve import MALLOC_ENV, photo_jpeg, triton_python
from bench.suites.throughput import WRK_LUA, Case, add_case_rows, set_ratios
from kubevc.gateway.testing import free_port, run_tritonserver, triton_install

_IMAGE = {"kind": "image", "name": "images", "width": 640, "height": 640, "layout": "NCHW", "dtype": "uint8"}
RAW = "JPEG -> detections, raw answer, NMS in gateway (`yolov5`, uint8 NCHW)"
CASES = (
    Case(RAW, "yolov5", "infer", "jpeg", 4, 5.0, 15.0),
    Case(
        "JPEG -> detections, NMS in graph (`yolov5-nms`, uint8 NCHW)",
        "yolov5-nms",
        "infer",
        "jpeg",
        4,
        5.0,
        15.0,
    ),
    Case(
        "JPEG -> detections, encoded-bytes passthrough, decode in graph (`yolov5-encoded`, BYTES)",
        "yolov5-encoded",
        "infer",
        "jpeg",
        4,
        5.0,
        15.0,
    ),
)


# issue 18 ("Performance to reach"): goals, never asserted
CPU_TARGETS = {
    "yolov5": Target("<=", 8.0, "issue 18: gateway CPU per JPEG -> detections request <= 8 ms, raw YOLO"),
    "yolov5-nms": Target("<=", 4.0, "issue 18: gateway CPU per request <= 4 ms with NMS in the graph"),
}


def gateway_doc(address: str, port: int) -> dict[str, Any]:
    detections = {"postprocess": "detections", "labels": COCO_LABELS}
    return {
        "server": {"host": "127.0.0.1", "port": port, "logLevel": "warning"},
        "limits": {"maxBodyBytes": 64 << 20, "requestTimeoutSeconds": 120},
        "backends": [
            {
                "name": "triton",
                "protocol": "v2",
                "address": address,
                "deadlineSeconds": 60,
                "maxMessageBytes": 128 << 20,
            }
        ],
        "models": [
            {
                "name": "yolov5",
                "backend": "triton",
                "input": {**_IMAGE, "resize": "letterbox"},
                "output": {"name": "output0", "postprocess": "yolo", "labels": COCO_LABELS},
            },
            {
                "name": "yolov5-nms",
                "backend": "triton",
                "input": {**_IMAGE, "resize": "letterbox"},
                "output": detections,
            },
            # no size, dtype or resize: the signature says BYTES, the JPEG goes as it came
            {
                "name": "yolov5-encoded",
                "backend": "triton",
                "input": {"kind": "image", "name": "image_bytes"},
                "output": detections,
            },
        ],
    }


def run(mode: str) -> SuiteResult:
    quick = mode == "quick"
    cores = usable_cores()
    res = SuiteResult(
        "triton", f"Gateway in front of the real tritonserver on {cores} cores (loopback)", mode
    )
    t = res.table(
        "rps",
        "Requests per second, gateway -> tritonserver over v2 gRPC (YOLOv5, batch 1)",
        ratio_label="× raw answer + NMS in gateway, same run",
        description="The same 512x512 JPEG; Triton's Python backend computes YOLOv5-shaped answers "
        "with numpy (bench/triton_models.py).",
    )
    t_cpu = res.table("cpu", "CPU time per request, ms (utime + stime from /proc, over the load run)")
    t_fp = res.table("footprint", "Gateway process footprint")
    try:
        install = triton_install(triton_python())
    except FileNotFoundError as missing:
        res.skip("tritonserver rows", f"{missing}: run `make tools` (or set KUBEVC_TRITON_PYTHON)")
        return res
    load = os.getloadavg()
    use_wrk = shutil.which("wrk") is not None
    with tempfile.TemporaryDirectory(prefix="kvb-triton-") as tmpdir:
        tmp = Path(tmpdir)
        script = tmp / "post.lua"
        script.write_text(WRK_LUA)
        body = tmp / "photo.jpg"
        body.write_bytes(photo_jpeg())
        repository = triton_models.write_repository(tmp / "models")
        with run_tritonserver(repository, install=install, ready_timeout=600) as server:
            tpid = triton_models.server_pid(server.grpc_port)

            def backend_cpu() -> float:
                return triton_models.tree_cpu_seconds(tpid) if tpid else 0.0

            gport = free_port()
            cfg = tmp / "gateway.yaml"
            cfg.write_text(yaml.safe_dump(gateway_doc(server.grpc_target, gport), sort_keys=False))
            prefix = ["env", *(f"{k}={v}" for k, v in MALLOC_ENV.items())]
            with Proc(
                python_cmd("kubevc.gateway.cli", "--config", str(cfg)), tmp / "gateway.log", prefix
            ) as gw:
                base = f"http://127.0.0.1:{gport}"
                wait_http(f"{base}/healthz", 120)
                for case in CASES:
                    contender = Contender(
                        case.model,
                        case.url(base),
                        body,
                        "image/jpeg",
                        lambda: gw.cpu_seconds() or 0.0,
                        backend_cpu,
                        gw,
                    )
                    secs = case.seconds_quick if quick else case.seconds_full
                    measured = load_run(contender, case.connections, secs, script, use_wrk=use_wrk)
                    add_case_rows(res, t, t_cpu, t_fp, case, measured, cores)
    set_ratios(res, t, RAW)
    for row in res.rows:
        model = row.extra.get("model")
        if row.table == t_cpu and row.label.startswith("gateway CPU/request") and model in CPU_TARGETS:
            row.target = CPU_TARGETS[model]
    load_after = os.getloadavg()
    res.notes += [
        "Backend CPU = tritonserver and its Python backend stub processes. Gateway run with "
        f"{' '.join(f'{k}={v}' for k, v in MALLOC_ENV.items())}.",
        f"Load average (1/5/15 min) before {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}, after "
        f"{load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f}: compare rows of this run only.",
        "Not in `make bench` (Triton's start-up alone can take minutes): "
        "`python -m bench --full --suite triton`.",
    ]
    return res
