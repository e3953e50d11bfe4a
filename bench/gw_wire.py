"""The gateway -> server wire form per model: encoded-bytes passthrough next to uint8 pixels.

``python -m bench.gw_wire [--requests N] [--json FILE]``: the same 512x512 JPEG sent N times to
the YOLOv5 detector with NMS in its graph, once as ``yolov5-nms`` (the gateway decodes, letterboxes
and sends 640x640x3 uint8) and once as ``yolov5-encoded`` (the model decodes in its graph: the
gateway sends the JPEG bytes as they came). The gateway runs as a process of its own; its CPU time
per request comes from /proc/<pid>/stat; the input tensor's size follows from the wire form. The
backend is the test PredictionService (numpy models) over TF Serving gRPC on loopback, so wall
times include its work (decoding, for the encoded form) on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import simplejpeg

from kubevc.gateway.testing import (
    backend_doc,
    config_doc,
    detections_profile,
    gateway_process,
    run_test_backend,
)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _photo() -> bytes:
    y, x = np.mgrid[0:512, 0:512]
    image = np.stack([(x // 2) % 256, (y // 2) % 256, ((x + y) // 4) % 256], axis=2).astype(np.uint8)
    return bytes(simplejpeg.encode_jpeg(image, quality=90, colorspace="RGB"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    jpeg = _photo()
    rows: list[dict[str, Any]] = []
    with run_test_backend() as backend, tempfile.TemporaryDirectory() as tmp:
        encoded = detections_profile("yolov5-encoded", "tf")
        encoded["input"] = {"kind": "image", "name": "image_bytes"}  # the signature says string
        doc = config_doc(
            [backend_doc("tf", backend.address)], [detections_profile("yolov5-nms", "tf"), encoded]
        )
        with gateway_process(doc, Path(tmp)) as gw, httpx.Client(base_url=gw.url, timeout=60) as client:
            for model, tensor_bytes in (("yolov5-nms", 640 * 640 * 3), ("yolov5-encoded", len(jpeg))):
                url = f"/v1/models/{model}/infer"
                for _ in range(5):  # warm up
                    client.post(url, content=jpeg, headers={"content-type": "image/jpeg"}).raise_for_status()
                form = client.get(f"/v2/models/{model}").json()["kubevc"]["wire_form"]
                cpu0, t0 = _cpu_seconds(gw.proc.pid), time.perf_counter()
                for _ in range(args.requests):
                    client.post(url, content=jpeg, headers={"content-type": "image/jpeg"}).raise_for_status()
                wall, cpu = time.perf_counter() - t0, _cpu_seconds(gw.proc.pid) - cpu0
                row = {
                    "model": model,
                    "wire_form": form,
                    "requests": args.requests,
                    "gateway_cpu_ms_per_request": round(cpu / args.requests * 1000, 2),
                    "wall_ms_per_request": round(wall / args.requests * 1000, 2),
                    "input_tensor_bytes": tensor_bytes,
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"jpeg_bytes": len(jpeg), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
