"""Harness parts of the ``triton`` and ``kserve`` suites: the transformer script's numpy letterbox,
YOLO decode and NMS against the gateway's on fixed arrays; the Triton model repository the bench
writes (loaded by the real tritonserver: slow); the KServe rows skipped with a reason when the
KServe venv is missing. No timings."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from bench import kserve_transformer as kt
from bench import triton_models
from bench.gw import COCO_LABELS
from bench.suites import kserve, triton
from kubevc.gateway._postprocess import nms, yolo_detections
from kubevc.gateway._preprocess import Geometry
from kubevc.gateway._proto.inference import grpc_predict_v2_pb2 as v2pb
from kubevc.gateway._proto.inference import grpc_predict_v2_pb2_grpc as v2grpc
from kubevc.gateway.testing import run_tritonserver, triton_install

REPO = Path(__file__).resolve().parents[2]


def _yolo_rows(seed: int) -> np.ndarray:
    """(25200, 85) rows: background below threshold, 40 objects of 3 classes each reported by 6
    overlapping rows, in input pixels."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((25200, 85), np.float32)
    rows[:, :4] = rng.random((25200, 4), dtype=np.float32) * np.float32(600) + np.float32(20)
    rows[:, 4] = rng.random(25200, dtype=np.float32) * np.float32(0.2)
    rows[:, 5:] = rng.random((25200, 80), dtype=np.float32) * np.float32(0.3)
    for k in range(40):
        at = 500 + k * 600
        box = np.array([50 + 13 * k, 60 + 11 * k, 40 + k, 30 + 2 * k], np.float32)
        for j in range(6):
            rows[at + j, :4] = box + rng.normal(0, 3, 4).astype(np.float32)
            rows[at + j, 4] = 0.9 - 0.05 * j
            rows[at + j, 5:] = 0.01
            rows[at + j, 5 + k % 3] = 0.95
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_transformer_nms_keeps_what_the_gateway_keeps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    xy = rng.random((400, 2), dtype=np.float32) * np.float32(500)
    boxes = np.concatenate([xy, xy + rng.random((400, 2), dtype=np.float32) * np.float32(120) + 1], axis=1)
    scores = rng.random(400, dtype=np.float32)
    np.testing.assert_array_equal(kt.nms(boxes, scores, 0.45, 300), nms(boxes, scores, 0.45, 300))


@pytest.mark.parametrize("seed", [4, 5])
def test_transformer_detections_equal_the_gateways(seed: int) -> None:
    rows = _yolo_rows(seed)
    image = Image.new("RGB", (512, 384))
    pixels, (sx, sy, px, py) = kt.letterbox(image)
    assert pixels.shape == (640, 640, 3)
    geometry = Geometry(512, 384, sx, sy, px, py)
    ours = kt.yolo_detections(rows, (512, 384), (sx, sy, px, py), COCO_LABELS)
    theirs = yolo_detections(
        rows[None],
        [geometry],
        (640, 640),
        confidence=0.25,
        iou=0.45,
        max_detections=300,
        labels=COCO_LABELS,
    )[0]
    assert len(ours) >= 40
    assert ours == theirs


def test_letterbox_pads_grey_around_the_fitted_image() -> None:
    image = Image.new("RGB", (512, 256), (10, 200, 30))
    pixels, (sx, sy, px, py) = kt.letterbox(image)
    assert (sx, sy, px, py) == (1.25, 1.25, 0.0, 160.0)
    assert (pixels[:160] == 114).all() and (pixels[480:] == 114).all()
    assert tuple(pixels[320, 320]) == (10, 200, 30)


def test_model_repository_is_written(tmp_path: Path) -> None:
    root = triton_models.write_repository(tmp_path / "models")
    assert sorted(p.name for p in root.iterdir()) == sorted(triton_models.MODELS)
    for name in triton_models.MODELS:
        assert f'name: "{name}"' in (root / name / "config.pbtxt").read_text()
        compile((root / name / "1" / "model.py").read_text(), "model.py", "exec")
    assert "TYPE_STRING" in (root / "yolov5-encoded" / "config.pbtxt").read_text()


def test_kserve_rows_are_skipped_with_a_reason_without_the_venv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kserve.KSERVE_PYTHON_ENV, "/nonexistent/kserve/bin/python")
    result = kserve.run("quick")
    assert result.rows == []
    assert "make bench-full" in result.skipped[0]["reason"]


def test_triton_rows_are_skipped_with_a_reason_without_the_venv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEVC_TRITON_PYTHON", "/nonexistent/triton/bin/python")
    result = triton.run("quick")
    assert result.rows == []
    assert "KUBEVC_TRITON_PYTHON" in result.skipped[0]["reason"]


def test_kserve_body_carries_the_jpeg_base64_encoded() -> None:
    jpeg = kserve.photo_jpeg()
    body = json.loads(kserve.kserve_body(jpeg))
    assert base64.b64decode(body["instances"][0]["image_bytes"]["b64"]) == jpeg
    assert Image.open(io.BytesIO(jpeg)).size == (512, 512)


def _infer(stub: v2grpc.GRPCInferenceServiceStub, name: str, image: np.ndarray) -> v2pb.ModelInferResponse:
    request = v2pb.ModelInferRequest(model_name=name, id="42")
    request.inputs.add(name="images", datatype="UINT8", shape=[1, 3, 640, 640])
    request.raw_input_contents.append(np.ascontiguousarray(image.transpose(2, 0, 1)[None]).tobytes())
    answer: v2pb.ModelInferResponse = stub.ModelInfer(request, timeout=120)
    return answer


@pytest.mark.slow
def test_the_bench_model_repository_loads_in_tritonserver(tmp_path: Path) -> None:
    python = os.environ.get("KUBEVC_TRITON_PYTHON") or str(REPO / ".tools/triton/bin/python")
    try:
        install = triton_install(python)
    except FileNotFoundError as missing:
        pytest.fail(f"{missing}: run `make tools` (or set KUBEVC_TRITON_PYTHON)")
    root = triton_models.write_repository(tmp_path / "models")
    image, _ = kt.letterbox(
        Image.fromarray((np.indices((384, 512)).sum(axis=0) % 256).astype(np.uint8)).convert("RGB")
    )
    with (
        run_tritonserver(root, install=install, ready_timeout=600) as server,
        grpc.insecure_channel(
            server.grpc_target, options=[("grpc.max_receive_message_length", 64 << 20)]
        ) as ch,
    ):
        stub = v2grpc.GRPCInferenceServiceStub(ch)
        for name in triton_models.MODELS:
            assert stub.ModelReady(v2pb.ModelReadyRequest(name=name), timeout=30).ready
        raw = _infer(stub, "yolov5", image)
        again = _infer(stub, "yolov5", image)
        nms_answer = _infer(stub, "yolov5-nms", image)
        assert raw.id == "42"
        assert [list(o.shape) for o in raw.outputs] == [[1, 25200, 85]]
        assert raw.raw_output_contents[0] == again.raw_output_contents[0]  # deterministic
        rows = np.frombuffer(raw.raw_output_contents[0], np.float32).reshape(25200, 85)
        found = kt.yolo_detections(rows, (640, 640), (1.0, 1.0, 0.0, 0.0))
        assert len(found) == 3  # three objects, each reported by eight overlapping rows
        outputs = {o.name: i for i, o in enumerate(nms_answer.outputs)}
        count = np.frombuffer(nms_answer.raw_output_contents[outputs["num_detections"]], np.float32)
        classes = np.frombuffer(nms_answer.raw_output_contents[outputs["detection_classes"]], np.float32)
        assert count.tolist() == [3.0]
        assert sorted(classes[:3].astype(int).tolist()) == sorted(d["class"] for d in found)
