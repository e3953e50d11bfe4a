"""A Triton model repository of YOLOv5-shaped Python-backend models, written at bench time.

Three models, the shapes and wire forms of real YOLOv5 exports, answers computed cheaply but
deterministically from the input with numpy (the real ``tritonserver`` runs them under its Python
backend; the work is Triton's request handling, not a network):

``yolov5``          ``images`` UINT8 ``[1, 3, 640, 640]`` (NCHW, as ONNX exports take it) -> ``output0``
                    FP32 ``[1, 25200, 85]``: the raw answer, NMS in the caller.
``yolov5-nms``      the same input -> the four TF detection-export outputs (NMS in the graph).
``yolov5-encoded``  ``image_bytes`` BYTES ``[1]`` (the JPEG as the client sent it, decoded with
                    Pillow in the "graph") -> as ``yolov5-nms``.

Rows of ``output0`` are ``cx, cy, w, h`` normalised to 0..1, objectness, 80 class scores: a fixed
background far below any threshold plus three objects placed where the image has the most
contrast, each reported by eight overlapping rows so that NMS has real work (the same scheme as the
gateway's numpy test backend, written again here because Triton's venv has no kubevc).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import PIL

MODELS = ("yolov5", "yolov5-nms", "yolov5-encoded")

# One model.py for the three models; ``KIND`` and ``PIL_PATH`` are set per model when written.
MODEL_PY = '''
import io
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

KIND = {kind!r}
PIL_PATH = {pil_path!r}
ROWS, CLASSES, OBJECTS, PER_OBJECT, K = 25200, 80, 3, 8, 100


def features(chw, grid):
    """Mean colour of a grid x grid tiling of a (3, H, W) uint8 image, 0..1: (grid*grid, 3)."""
    x = chw[:, ::10, ::10].astype(np.float32) / 255.0
    c, h, w = x.shape
    hs, ws = h // grid, w // grid
    tiles = x[:, : hs * grid, : ws * grid].reshape(c, grid, hs, grid, ws).mean(axis=(2, 4))
    return tiles.reshape(c, grid * grid).T


def objects(chw):
    """Boxes (3, 4) as normalised cx, cy, w, h, classes (3,), scores (3,), best first."""
    grid = 8
    feats = features(chw, grid)
    contrast = np.abs(feats - feats.mean(axis=0)).sum(axis=1)
    cells = np.argsort(-contrast, kind="stable")[:OBJECTS]
    chosen = feats[cells]
    size = 0.12 + 0.1 * chosen.mean(axis=1)
    boxes = np.stack([(cells % grid + 0.5) / grid, (cells // grid + 0.5) / grid, size, size * 0.8], axis=1)
    classes = (chosen.argmax(axis=1) * 20 + np.arange(OBJECTS) * 7) % CLASSES
    scores = np.full(OBJECTS, 0.95 * 0.9, dtype=np.float32)
    return boxes.astype(np.float32), classes, scores


class TritonPythonModel:
    def initialize(self, args):
        rng = np.random.default_rng(5)
        base = np.empty((ROWS, 5 + CLASSES), dtype=np.float32)
        base[:, 0:2] = rng.random((ROWS, 2))
        base[:, 2:4] = rng.random((ROWS, 2)) * 0.2 + 0.01
        base[:, 4] = rng.random(ROWS) * 0.02  # objectness far below any threshold
        base[:, 5:] = rng.random((ROWS, CLASSES)) * 0.5
        self.base = base
        self.jitter = rng.normal(0.0, 0.004, size=(PER_OBJECT, 4)).astype(np.float32)
        self.jitter[0] = 0.0
        if KIND == "encoded":
            sys.path.append(PIL_PATH)  # Pillow of the bench venv: Triton's venv has none
            from PIL import Image

            self.image = Image

    def raw(self, chw):
        out = self.base.copy()
        boxes, classes, _ = objects(chw)
        for k in range(OBJECTS):
            rows = slice(1000 + k * 4000, 1000 + k * 4000 + PER_OBJECT)
            out[rows, 0:4] = boxes[k] + self.jitter
            out[rows, 4] = np.linspace(0.95, 0.6, PER_OBJECT, dtype=np.float32)
            out[rows, 5:] = 0.01
            out[rows, 5 + classes[k]] = 0.9
        return [pb_utils.Tensor("output0", out[None])]

    def detections(self, chw):
        cxcywh, classes, scores = objects(chw)
        boxes = np.zeros((1, K, 4), np.float32)
        cx, cy, w, h = cxcywh.T
        boxes[0, :OBJECTS] = np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=1)
        out_scores = np.zeros((1, K), np.float32)
        out_scores[0, :OBJECTS] = scores
        out_classes = np.zeros((1, K), np.float32)
        out_classes[0, :OBJECTS] = classes
        return [
            pb_utils.Tensor("detection_boxes", boxes),
            pb_utils.Tensor("detection_scores", out_scores),
            pb_utils.Tensor("detection_classes", out_classes),
            pb_utils.Tensor("num_detections", np.full(1, OBJECTS, np.float32)),
        ]

    def execute(self, requests):
        answers = []
        for request in requests:
            if KIND == "encoded":
                data = pb_utils.get_input_tensor_by_name(request, "image_bytes").as_numpy().reshape(-1)[0]
                with self.image.open(io.BytesIO(bytes(data))) as im:
                    rgb = im.convert("RGB").resize((640, 640), self.image.Resampling.BILINEAR)
                    chw = np.asarray(rgb).transpose(2, 0, 1)
                tensors = self.detections(chw)
            else:
                chw = pb_utils.get_input_tensor_by_name(request, "images").as_numpy()[0]
                tensors = self.raw(chw) if KIND == "raw" else self.detections(chw)
            answers.append(pb_utils.InferenceResponse(tensors))
        return answers
'''

_IMAGES_IN = 'input [ { name: "images" data_type: TYPE_UINT8 dims: [ 1, 3, 640, 640 ] } ]'
_BYTES_IN = 'input [ { name: "image_bytes" data_type: TYPE_STRING dims: [ 1 ] } ]'
_RAW_OUT = 'output [ { name: "output0" data_type: TYPE_FP32 dims: [ 1, 25200, 85 ] } ]'
_DETECTIONS_OUT = """output [
  { name: "detection_boxes" data_type: TYPE_FP32 dims: [ 1, 100, 4 ] },
  { name: "detection_scores" data_type: TYPE_FP32 dims: [ 1, 100 ] },
  { name: "detection_classes" data_type: TYPE_FP32 dims: [ 1, 100 ] },
  { name: "num_detections" data_type: TYPE_FP32 dims: [ 1 ] }
]"""
# model name -> (KIND, input, output)
_LAYOUT = {
    "yolov5": ("raw", _IMAGES_IN, _RAW_OUT),
    "yolov5-nms": ("nms", _IMAGES_IN, _DETECTIONS_OUT),
    "yolov5-encoded": ("encoded", _BYTES_IN, _DETECTIONS_OUT),
}


def pil_path() -> str:
    """The site-packages directory this interpreter imports Pillow from."""
    return str(Path(PIL.__file__).resolve().parent.parent)


def config_pbtxt(name: str) -> str:
    _kind, inp, out = _LAYOUT[name]
    # one model instance: a CPU-only Python backend on a shared machine, as the test backend
    return (
        f'name: "{name}"\nbackend: "python"\nmax_batch_size: 0\n{inp}\n{out}\n'
        "instance_group [ { count: 1 kind: KIND_CPU } ]\n"
    )


def write_repository(root: Path) -> Path:
    """Write the three models under ``root`` (created); returns ``root``."""
    for name in MODELS:
        kind = _LAYOUT[name][0]
        (root / name / "1").mkdir(parents=True, exist_ok=True)
        (root / name / "config.pbtxt").write_text(config_pbtxt(name))
        (root / name / "1" / "model.py").write_text(MODEL_PY.format(kind=kind, pil_path=pil_path()))
    return root


def server_pid(grpc_port: int) -> int | None:
    """The pid of the ``tritonserver`` serving gRPC on ``grpc_port`` (found in /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"tritonserver") and f"--grpc-port={grpc_port}".encode() in argv:
            return int(entry.name)
    return None


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its live children (Triton's Python backend stubs), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


if __name__ == "__main__":
    print(write_repository(Path(sys.argv[1])))
