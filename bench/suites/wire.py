"""The gateway -> server wire form per model (issue 18): encoded-bytes passthrough next to uint8.

The same 512x512 JPEG is sent N times to the YOLOv5 detector with NMS in its graph, once as
``yolov5-nms`` (the gateway decodes, letterboxes and sends 640x640x3 uint8) and once as
``yolov5-encoded`` (the model decodes in its graph: the gateway sends the JPEG bytes as they came).
The gateway runs as a process of its own; its CPU time per request comes from /proc/<pid>/stat; the
input tensor's size follows from the wire form. The backend is the test PredictionService (numpy
models) over TF Serving gRPC on loopback, so wall times include its work (decoding, for the encoded
form) on the same machine.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import simplejpeg

from bench.results import Row, SuiteResult
from kubevc.gateway.testing import (
    backend_doc,
    config_doc,
    detections_profile,
    gateway_process,
    run_test_backend,
)

REQUESTS = {"quick": 100, "full": 300}
WARMUP = 5
UINT8_MODEL = "yolov5-nms"
ENCODED_MODEL = "yolov5-encoded"


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def photo_jpeg() -> bytes:
    """A smooth 512x512 picture (compresses like a photo, unlike noise)."""
    y, x = np.mgrid[0:512, 0:512]
    image = np.stack([(x // 2) % 256, (y // 2) % 256, ((x + y) // 4) % 256], axis=2).astype(np.uint8)
    return bytes(simplejpeg.encode_jpeg(image, quality=90, colorspace="RGB"))


def run(mode: str) -> SuiteResult:
    result = SuiteResult("wire", "Gateway -> server wire form: uint8 vs encoded-bytes passthrough", mode)
    requests = REQUESTS.get(mode, REQUESTS["quick"])
    jpeg = photo_jpeg()
    cpu = result.table(
        "cpu",
        f"Gateway CPU per JPEG -> detections request, ms (mean of {requests})",
        ratio_label="× uint8",
        description="YOLOv5 with NMS in its graph, the same 512x512 JPEG "
        f"({len(jpeg):,} bytes) each time; the gateway as its own process, CPU from /proc.",
    )
    wall = result.table(
        "wall",
        "Wall time per request, ms (client, gateway and backend on one machine)",
        ratio_label="× uint8",
    )
    size = result.table("bytes", "Input tensor bytes on the gateway -> server hop", ratio_label="× uint8")
    measured: dict[str, tuple[float, float]] = {}
    forms: dict[str, str] = {}
    tensor_bytes = {UINT8_MODEL: 640 * 640 * 3, ENCODED_MODEL: len(jpeg)}
    with run_test_backend() as backend, tempfile.TemporaryDirectory() as tmp:
        encoded = detections_profile(ENCODED_MODEL, "tf")
        encoded["input"] = {"kind": "image", "name": "image_bytes"}  # the signature says string
        doc = config_doc(
            [backend_doc("tf", backend.address)], [detections_profile(UINT8_MODEL, "tf"), encoded]
        )
        with gateway_process(doc, Path(tmp)) as gw, httpx.Client(base_url=gw.url, timeout=60) as client:
            for model in (UINT8_MODEL, ENCODED_MODEL):
                url = f"/v1/models/{model}/infer"
                headers = {"content-type": "image/jpeg"}
                for _ in range(WARMUP):
                    client.post(url, content=jpeg, headers=headers).raise_for_status()
                forms[model] = client.get(f"/v2/models/{model}").json()["kubevc"]["wire_form"]
                cpu0, t0 = cpu_seconds(gw.proc.pid), time.perf_counter()
                for _ in range(requests):
                    client.post(url, content=jpeg, headers=headers).raise_for_status()
                elapsed, used = time.perf_counter() - t0, cpu_seconds(gw.proc.pid) - cpu0
                measured[model] = (used / requests * 1000, elapsed / requests * 1000)
    base_cpu, base_wall = measured[UINT8_MODEL]
    for model in (UINT8_MODEL, ENCODED_MODEL):
        cpu_ms, wall_ms = measured[model]
        label = f"{model} (wire form {forms[model]})"
        extra = {"model": model, "wire_form": forms[model], "requests": requests}
        result.add(Row(cpu, label, round(cpu_ms, 2), "ms", ratio=cpu_ms / base_cpu, extra=extra))
        result.add(Row(wall, label, round(wall_ms, 2), "ms", ratio=wall_ms / base_wall, extra=extra))
        result.add(
            Row(
                size,
                label,
                tensor_bytes[model],
                "B",
                ratio=tensor_bytes[model] / tensor_bytes[UINT8_MODEL],
                extra=extra,
            )
        )
    result.notes += [
        "CPU time has the resolution of the kernel's clock tick (10 ms) summed over all requests.",
        "Not in `make bench` (its 3-minute budget is taken): runs in `make bench-full`.",
    ]
    return result
