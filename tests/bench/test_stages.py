"""``python -m bench.stages``: the floors table (the components' own cost for the raw-YOLO
request's work) and the fixed-cost rows of the gateway table come out, measured, not made up."""

from __future__ import annotations

import pytest

from bench import stages


def test_transport_rows_measure_grpc_and_the_plain_socket() -> None:
    rows = dict(stages.transport_rows(calls=3))
    labels = list(rows)
    assert labels[0].startswith("gRPC call to yolov5, 1.2 MB out / 8.6 MB back")
    assert labels[1].startswith("TCP socket, yolov5's bytes")
    assert any(label.startswith("gRPC call to yolov5-nms, 1.2 MB out / ") for label in labels)
    assert any(label.startswith("gRPC call to regressor, 67 bytes out / ") for label in labels)
    # CPU time was really spent on each (a process_time delta over real calls, never zero for
    # megabytes moved through a socket)
    assert all(ms > 0 for ms in rows.values())


def test_jpeg_scale_rows_decode_at_both_scales() -> None:
    rows = stages.jpeg_scale_rows(repeat=3)
    if not rows:
        pytest.skip("libturbojpeg.so.0 is not installed")
    assert [label for label, _ in rows] == [
        "JPEG decode at 8/8 -> 512x512 (SIMD inverse DCT)",
        "JPEG decode at 10/8 -> 640x640 (scalar inverse DCT)",
    ]
    assert all(ms > 0 for _, ms in rows)


def test_gateway_rows_include_the_fixed_cost_of_a_request() -> None:
    rows = stages.gateway_rows(requests=3)
    labels = [label for label, _, _ in rows]
    assert labels[:3] == ["yolov5", "yolov5-nms", "GET /healthz (HTTP only)"]
    assert labels[3].startswith("regressor `:predict`")
    assert all(cpu >= 0 and wall > 0 for _, cpu, wall in rows)
