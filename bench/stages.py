"""``python -m bench.stages [--requests N] [--repeat N]``: the gateway's own CPU per stage (issue 18).

Two parts, printed as Markdown tables for docs/benchmarks.md:

* **Stages, in this process** (CPU time from ``time.process_time``, mean over ``--repeat`` runs
  of one stage on the same input): JPEG decode, letterbox 512 -> 640, the model tensor (uint8
  NHWC, float32 NCHW, float16 NCHW), the TF Serving request build, reading the raw YOLOv5 answer
  (1 x 25200 x 85 float32, 8.5 MB) from its serialized bytes, the YOLO decode + NMS, and the
  TF-REST ``:predict`` JSON -> tensor conversion per MiB of JSON.
* **Gateway CPU per JPEG -> detections request**: the gateway as a process of its own (CPU from
  /proc/<pid>/stat over ``--requests`` requests, one connection), raw YOLOv5 rows (NMS in the
  gateway) and NMS in the graph, against the test PredictionService on loopback; beside them the
  fixed cost of any request (``GET /healthz``; a 16-byte ``:predict`` through gRPC).
* **Floors** (``--floors``): what the components the gateway is built on cost for the raw-YOLO
  request's work, measured alone: the same bytes (1.2 MB image tensor out, 8.5 MB rows back)
  through ``grpc.aio`` as the gateway sends them and over a plain TCP socket read into one buffer
  (the kernel's copy only), and libjpeg-turbo's decode of the 512x512 JPEG at 8/8 (SIMD inverse
  DCT) and at 10/8 (the letterbox scale; scalar inverse DCT).

Before/after: run the same file with another checkout's interpreter, from this checkout
(``cd THIS && /old/.venv/bin/python -m bench.stages``): the stages call only functions both
versions have, and the gateway process is started with the running interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import struct
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import orjson
import simplejpeg

from bench.procs import Proc, python_cmd
from kubevc.gateway import _turbojpeg
from kubevc.gateway._allocator import tune_malloc
from kubevc.gateway._config import InputConfig
from kubevc.gateway._postprocess import yolo_detections
from kubevc.gateway._preprocess import decode_for_model, resize_decoded, to_model_tensor
from kubevc.gateway._proto.tensorflow_serving import model_pb2
from kubevc.gateway._rest import parse_predict

try:
    from kubevc.gateway._rest import parse_predict_body
except ImportError:  # an older checkout (before/after runs)
    parse_predict_body = None
try:
    from kubevc.gateway._preprocess import decode_scaled_into
except ImportError:  # before the DCT-scaled letterbox
    decode_scaled_into = None
from kubevc.gateway._tensors import from_tensor_proto
from kubevc.gateway._wire import encode_predict_request, encode_predict_response, read_predict_response
from kubevc.gateway.testing import (
    backend_doc,
    config_doc,
    detections_profile,
    gateway_process,
    run_test_backend,
    tensor_profile,
    yolo_profile,
)

YOLO_ROWS, YOLO_COLS = 25200, 85


def photo_jpeg(size: int = 512) -> bytes:
    """A smooth picture (compresses like a photo, unlike noise), as the wire suite sends."""
    y, x = np.mgrid[0:size, 0:size]
    image = np.stack([(x // 2) % 256, (y // 2) % 256, ((x + y) // 4) % 256], axis=2).astype(np.uint8)
    return bytes(simplejpeg.encode_jpeg(image, quality=90, colorspace="RGB"))


def cpu_ms(fn: Callable[[], Any], repeat: int) -> float:
    """Mean CPU milliseconds of ``fn()`` in this process, after one warm-up call."""
    fn()
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - start) / repeat * 1000


def raw_yolo_answer() -> bytes:
    """A serialized PredictResponse with YOLOv5's raw rows (mostly background, a few objects)."""
    rng = np.random.default_rng(0)
    rows = rng.random((1, YOLO_ROWS, YOLO_COLS), dtype=np.float32) * 0.01
    rows[0, :40, :4] = rng.random((40, 4), dtype=np.float32) * 600 + 20
    rows[0, :40, 4] = 0.9
    rows[0, :40, 5:] = rng.random((40, YOLO_COLS - 5), dtype=np.float32)
    return encode_predict_response(model_pb2.ModelSpec(name="yolov5"), {"output0": rows})


def decode_and_letterbox(jpeg: bytes, cfg: InputConfig, slot: Any) -> Any:
    """What the gateway's decode job does per image: one DCT-scaled decode into the batch slot
    when a scale M/8 fits (10/8 here), else decode then Pillow's resize (older checkouts)."""
    if decode_scaled_into is not None and decode_scaled_into(jpeg, cfg, 40_000_000, slot) is not None:
        return slot
    return resize_decoded(decode_for_model(jpeg, "image/jpeg", cfg, 40_000_000), cfg, slot)


def stage_rows(repeat: int) -> list[tuple[str, float]]:
    jpeg = photo_jpeg()
    uint8 = InputConfig(kind="image", name="images")
    f32 = InputConfig(kind="image", name="images", dtype="float32", layout="NCHW")
    f16 = InputConfig(kind="image", name="images", dtype="float16", layout="NCHW")
    decoded = decode_for_model(jpeg, "image/jpeg", uint8, 40_000_000)
    letterboxed, geometry = resize_decoded(decoded, uint8)
    batch = letterboxed[None]
    slot = np.empty_like(letterboxed)
    tensor = to_model_tensor(batch, uint8)
    spec = model_pb2.ModelSpec(name="yolov5", signature_name="serving_default")
    answer = raw_yolo_answer()

    def read_answer() -> Any:
        outputs, _ = read_predict_response(answer, {"output0"})
        proto, content = outputs["output0"]
        return from_tensor_proto(proto, content)

    rows_out = read_answer()

    def postprocess() -> Any:
        return yolo_detections(
            rows_out, [geometry], (640, 640), confidence=0.25, iou=0.45, max_detections=100, labels=[]
        )

    rows = [
        (
            "decode (simplejpeg, 512x512 JPEG)",
            cpu_ms(lambda: decode_for_model(jpeg, "image/jpeg", uint8, 40_000_000), repeat),
        ),
        (
            "letterbox 512 -> 640x640 (uint8, Pillow bilinear)",
            cpu_ms(lambda: resize_decoded(decoded, uint8), repeat),
        ),
        (
            "decode + letterbox as the gateway does it (uint8 slot)",
            cpu_ms(lambda: decode_and_letterbox(jpeg, uint8, slot), repeat),
        ),
        ("model tensor uint8 NHWC", cpu_ms(lambda: to_model_tensor(batch, uint8), repeat)),
        ("model tensor float32 NCHW (normalised)", cpu_ms(lambda: to_model_tensor(batch, f32), repeat)),
        ("model tensor float16 NCHW (normalised)", cpu_ms(lambda: to_model_tensor(batch, f16), repeat)),
        (
            "request build (TF Serving PredictRequest)",
            cpu_ms(lambda: encode_predict_request(spec, {"images": tensor}), repeat),
        ),
        ("answer read (8.5 MB raw YOLO rows, zero-copy)", cpu_ms(read_answer, repeat)),
        ("postprocess (YOLO decode + NMS)", cpu_ms(postprocess, repeat)),
    ]
    return rows


def json_bodies() -> dict[str, tuple[bytes, dict[str, str]]]:
    """TF-REST ``:predict`` bodies of about 1-4 MiB: image-like uint8 ints, float32 features."""
    rng = np.random.default_rng(1)
    ints = rng.integers(0, 256, (1, 320, 320, 3), dtype=np.uint8)
    floats = rng.random((64, 1024), dtype=np.float32)
    ids = rng.integers(0, 30000, (256, 128), dtype=np.int64)
    return {
        "instances, uint8 image 320x320x3": (
            orjson.dumps({"instances": ints.tolist()}),
            {"input": "uint8"},
        ),
        "instances, float32 64x1024": (
            orjson.dumps({"instances": floats.tolist()}),
            {"input": "float32"},
        ),
        "inputs, int64 ids 256x128": (orjson.dumps({"inputs": ids.tolist()}), {"input": "int64"}),
    }


def json_rows(repeat: int) -> list[tuple[str, float, float]]:
    """(label, MiB of JSON, CPU ms per MiB) for parse + conversion, as ``decode_predict`` does."""
    rows = []
    for label, (body, dtypes) in json_bodies().items():

        def convert(body: bytes = body, dtypes: dict[str, str] = dtypes) -> Any:
            if parse_predict_body is not None:  # what decode_predict calls
                return parse_predict_body(body, "input", dtypes)
            return parse_predict(orjson.loads(body), "input", dtypes)  # before issue 18's fast path

        mib = len(body) / (1 << 20)
        rows.append((label, mib, cpu_ms(convert, max(3, repeat // 10)) / mib))
    return rows


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gateway_rows(requests: int) -> list[tuple[str, float, float]]:
    """(request, gateway CPU ms per request, wall ms per request) over one keep-alive connection:
    the two JPEG -> detections models, then the fixed cost every request pays."""
    jpeg = photo_jpeg()
    tiny = tensor_profile("regressor", "tf", dtype="float32")
    tiny["input"]["name"] = "x"  # the test backend's regressor: x (N, 4) -> y (N, 1)
    requests_to_time: list[tuple[str, str, bytes, str]] = [
        ("yolov5", "/v1/models/yolov5/infer", jpeg, "image/jpeg"),
        ("yolov5-nms", "/v1/models/yolov5-nms/infer", jpeg, "image/jpeg"),
        ("GET /healthz (HTTP only)", "/healthz", b"", ""),
        (
            "regressor `:predict`, 16 bytes each way (HTTP + gRPC: the fixed cost)",
            "/v1/models/regressor:predict",
            orjson.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]]}),
            "application/json",
        ),
    ]
    rows = []
    with run_test_backend() as backend, tempfile.TemporaryDirectory() as tmp:
        doc = config_doc(
            [backend_doc("tf", backend.address)],
            [yolo_profile("yolov5", "tf"), detections_profile("yolov5-nms", "tf"), tiny],
        )
        with gateway_process(doc, Path(tmp)) as gw, httpx.Client(base_url=gw.url, timeout=60) as client:
            for label, url, body, content_type in requests_to_time:

                def send(url: str = url, body: bytes = body, content_type: str = content_type) -> None:
                    if body:
                        client.post(
                            url, content=body, headers={"content-type": content_type}
                        ).raise_for_status()
                    else:
                        client.get(url).raise_for_status()

                for _ in range(5):
                    send()
                cpu0, wall0 = cpu_seconds(gw.proc.pid), time.perf_counter()
                for _ in range(requests):
                    send()
                wall = time.perf_counter() - wall0
                cpu = cpu_seconds(gw.proc.pid) - cpu0
                rows.append((label, cpu / requests * 1000, wall / requests * 1000))
    return rows


_SINK_HEADER = struct.Struct("<QQ")  # bench.serve_sink's request header: bytes in, bytes out


def transport_rows(calls: int) -> list[tuple[str, float]]:
    """CPU ms per call in this process for the JPEG -> detections request's bytes (the 640x640
    uint8 image tensor out; raw YOLOv5 rows or NMS detections back): through ``grpc.aio`` (the
    gateway's client) to the test PredictionService, and, for the raw rows, over a plain TCP
    socket to ``bench.serve_sink`` moving the same byte counts, read with ``recv_into`` into one
    buffer. The servers run in processes of their own: only the client is counted."""
    image = {"images": np.zeros((1, 640, 640, 3), np.uint8)}
    inputs = {"yolov5": image, "yolov5-nms": image, "regressor": {"x": np.zeros((1, 4), np.float32)}}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        with Proc(python_cmd("bench.serve_backend"), Path(tmp) / "backend.log") as backend:
            address = backend.wait_line("READY", timeout=120).split()[1]
            for model, tensors in inputs.items():
                request = encode_predict_request(
                    model_pb2.ModelSpec(name=model, signature_name="serving_default"), tensors
                )
                ms, answer_bytes = asyncio.run(_grpc_cpu_ms(address, request, calls))
                sizes = f"{_size(len(request))} out / {_size(answer_bytes)} back"
                rows.append((f"gRPC call to {model}, {sizes} (grpc.aio, bytes in and out)", ms))
                if model == "yolov5":
                    raw_sizes = (len(request), answer_bytes)
        with Proc(python_cmd("bench.serve_sink"), Path(tmp) / "sink.log") as sink:
            host, port = sink.wait_line("READY", timeout=120).split()[1].rsplit(":", 1)
            tcp_ms = _tcp_cpu_ms((host, int(port)), *raw_sizes, calls)
    rows.insert(
        1, ("TCP socket, yolov5's bytes (sendall / recv_into one buffer: the kernel's copies)", tcp_ms)
    )
    return rows


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


async def _grpc_cpu_ms(address: str, request: bytes, calls: int) -> tuple[float, int]:
    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        predict = channel.unary_unary(
            "/tensorflow.serving.PredictionService/Predict",
            request_serializer=None,
            response_deserializer=None,
        )
        answer: bytes = await predict(request, timeout=60)
        for _ in range(3):
            await predict(request, timeout=60)
        start = time.process_time()
        for _ in range(calls):
            await predict(request, timeout=60)
        return (time.process_time() - start) / calls * 1000, len(answer)


def _tcp_cpu_ms(address: tuple[str, int], n_out: int, n_in: int, calls: int) -> float:
    payload = _SINK_HEADER.pack(n_out, n_in) + bytes(n_out)
    buffer = memoryview(bytearray(n_in))
    with socket.create_connection(address) as sock:

        def call() -> None:
            sock.sendall(payload)
            got = 0
            while got < n_in:
                n = sock.recv_into(buffer[got:])
                if not n:
                    raise ConnectionError("the sink closed the connection")
                got += n

        return cpu_ms(call, calls)


def jpeg_scale_rows(repeat: int) -> list[tuple[str, float]]:
    """libjpeg-turbo's decode of the 512x512 JPEG into a packed buffer at 8/8 and at 10/8."""
    jpeg = photo_jpeg()
    header = _turbojpeg.read_header(jpeg)
    if header is None or not _turbojpeg.available():
        return []
    rows = []
    for numerator, label in (
        (8, "8/8 -> 512x512 (SIMD inverse DCT)"),
        (10, "10/8 -> 640x640 (scalar inverse DCT)"),
    ):
        side = _turbojpeg.scaled(header.width, numerator)
        out = np.empty((side, side, 3), np.uint8)

        def decode(numerator: int = numerator, out: Any = out, header: Any = header) -> bool:
            return _turbojpeg.decode_into(jpeg, numerator, out, header)

        rows.append((f"JPEG decode at {label}", cpu_ms(decode, repeat)))
    return rows


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg()[0]
    return (
        f"{datetime.now(UTC).isoformat(timespec='seconds')} · {cpu} × {os.cpu_count()} cores · "
        f"Linux {platform.release()} · Python {platform.python_version()} · numpy {np.__version__} · "
        f"load average at start {load:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=100, help="runs of each in-process stage")
    parser.add_argument("--requests", type=int, default=200, help="requests per model to the gateway process")
    parser.add_argument("--skip-gateway", action="store_true", help="only the in-process stages")
    parser.add_argument(
        "--floors", action="store_true", help="also the components' floors (transport, JPEG scale)"
    )
    args = parser.parse_args(argv)
    # the gateway process runs with these malloc settings; without them glibc trims and re-faults
    # the large temporaries of the JSON and image stages on every call, which the gateway never pays
    tuned = tune_malloc()
    print(
        f"Measured with `python -m bench.stages --repeat {args.repeat} --requests {args.requests}`"
        f" · {machine()} · malloc as in the gateway: {tuned or 'not applied (not glibc, or MALLOC_* set)'}\n"
    )
    print("| stage | CPU ms |\n|---|--:|")
    for label, ms in stage_rows(args.repeat):
        print(f"| {label} | {ms:.2f} |")
    print("\n| TF-REST `:predict` body | MiB | CPU ms per MiB |\n|---|--:|--:|")
    for label, mib, per_mib in json_rows(args.repeat):
        print(f"| {label} | {mib:.2f} | {per_mib:.1f} |")
    if not args.skip_gateway:
        print("\n| request | gateway CPU ms / request | wall ms / request |\n|---|--:|--:|")
        for label, cpu, wall in gateway_rows(args.requests):
            print(f"| {label} | {cpu:.2f} | {wall:.2f} |")
    if args.floors:
        print("\n| floor, measured alone | CPU ms |\n|---|--:|")
        for label, ms in transport_rows(args.requests) + jpeg_scale_rows(args.repeat):
            print(f"| {label} | {ms:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
