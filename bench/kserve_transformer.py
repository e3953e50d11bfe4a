"""A KServe transformer doing the gateway's job, for the ``kserve`` benchmark suite.

``python bench/kserve_transformer.py --model_name yolov5 --predictor_host HOST:PORT
--predictor_protocol grpc-v2 --backend_model yolov5 --layout NCHW --http_port P``, run with the
interpreter of the KServe venv (``.tools/kserve``; ``make bench-full`` makes it).

KServe's ModelServer takes a KServe v1 request ``{"instances": [{"image_bytes": {"b64": ...}}]}``
(the JPEG base64-encoded, as KServe's image transformer examples take it). ``preprocess`` decodes
it with Pillow and letterboxes it to 640x640 (bilinear, grey 114 padding) as uint8; ``predict`` is
KServe's own v2 gRPC call to the backend; ``postprocess`` decodes the raw YOLOv5 ``(1, 25200, 85)``
answer and runs class-wise greedy NMS, written here with numpy only (the gateway's algorithm, not
its code: this file imports no kubevc), and answers
``{"predictions": [[{"box", "score", "class", "label"}, ...]]}`` in original pixels.

The numpy parts (``letterbox``, ``yolo_detections``, ``nms``) import without KServe, so the bench
tests can compare them with the gateway's on fixed arrays.
"""

from __future__ import annotations

import argparse
import base64
import io
import itertools
from typing import Any

import numpy as np
from PIL import Image

try:
    import kserve
    from kserve import InferInput, InferRequest, InferResponse
except ImportError:  # the bench venv's tests use the numpy parts only
    kserve = None

INPUT_SIZE = 640
FILL = 114
CONFIDENCE = 0.25
IOU = 0.45
MAX_DETECTIONS = 300
CLASS_OFFSET = 7680.0  # larger than any box coordinate: one NMS over all classes stays class-wise


def letterbox(
    image: Image.Image, size: int = INPUT_SIZE
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """RGB image -> (size, size, 3) uint8 and (scale_x, scale_y, pad_x, pad_y)."""
    w, h = image.size
    s = min(size / w, size / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    resized = image if (nw, nh) == (w, h) else image.resize((nw, nh), Image.Resampling.BILINEAR)
    canvas = np.full((size, size, 3), FILL, dtype=np.uint8)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas[py : py + nh, px : px + nw] = np.asarray(resized)
    return canvas, (nw / w, nh / h, float(px), float(py))


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, max_keep: int) -> np.ndarray:
    """Greedy NMS over x1, y1, x2, y2 boxes: indices kept, best score first."""
    order = np.argsort(-scores, kind="stable")
    b = boxes[order].astype(np.float32)
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    alive = np.arange(order.size)
    kept: list[int] = []
    while alive.size > 0 and len(kept) < max_keep:
        best, rest = int(alive[0]), alive[1:]
        kept.append(best)
        ix = np.clip(np.minimum(b[best, 2], b[rest, 2]) - np.maximum(b[best, 0], b[rest, 0]), 0, None)
        iy = np.clip(np.minimum(b[best, 3], b[rest, 3]) - np.maximum(b[best, 1], b[rest, 1]), 0, None)
        inter = ix * iy
        alive = rest[inter <= iou * (areas[best] + areas[rest] - inter)]
    return order[np.asarray(kept, dtype=np.int64)]


def yolo_detections(
    rows: np.ndarray,
    original: tuple[int, int],
    geometry: tuple[float, float, float, float],
    labels: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Rows ``cx, cy, w, h, objectness, class scores`` (normalised or input pixels) of one image
    -> detections in original-image pixels."""
    objectness = rows[:, 4]
    candidates = rows[objectness > CONFIDENCE]
    if candidates.shape[0] == 0:
        return []
    class_scores = candidates[:, 5:] * candidates[:, 4:5]
    classes = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(classes.size), classes]
    good = scores > CONFIDENCE
    candidates, classes, scores = candidates[good], classes[good], scores[good]
    xywh = candidates[:, :4].astype(np.float32)
    if xywh.size and float(np.abs(xywh[:, :2]).max()) <= 1.5:  # normalised coordinates
        xywh = xywh * np.float32(INPUT_SIZE)
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    keep = nms(boxes + (classes.astype(np.float32) * CLASS_OFFSET)[:, None], scores, IOU, MAX_DETECTIONS)
    width, height = original
    sx, sy, px, py = geometry
    out = np.empty((keep.size, 4), dtype=np.float32)
    out[:, 0::2] = np.clip((boxes[keep][:, 0::2] - px) / sx, 0, width)
    out[:, 1::2] = np.clip((boxes[keep][:, 1::2] - py) / sy, 0, height)
    names = labels or []
    return [
        {
            "box": [round(float(v), 2) for v in box],
            "score": round(float(s), 5),
            "class": int(c),
            "label": names[int(c)] if 0 <= int(c) < len(names) else str(int(c)),
        }
        for box, s, c in zip(out.tolist(), scores[keep].tolist(), classes[keep].tolist(), strict=True)
    ]


if kserve is not None:

    class YoloTransformer(kserve.Model):  # type: ignore[misc]
        """JPEG (base64, KServe v1) -> letterboxed uint8 -> v2 gRPC backend -> YOLO decode + NMS."""

        def __init__(self, name: str, backend_model: str, layout: str) -> None:
            # the backend's address and protocol come from ModelServer's --predictor_host and
            # --predictor_protocol (KServe keeps them in its context)
            super().__init__(name)
            self.backend_model = backend_model
            self.layout = layout
            # requests interleave between preprocess and postprocess (the backend call awaits):
            # each one's geometry is kept under its v2 request id, which the backend echoes
            self._geometries: dict[str, tuple[tuple[int, int], tuple[float, float, float, float]]] = {}
            self._ids = itertools.count()
            self.ready = True

        def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            data = base64.b64decode(payload["instances"][0]["image_bytes"]["b64"])
            with Image.open(io.BytesIO(data)) as im:
                rgb = im.convert("RGB")
            pixels, geometry = letterbox(rgb)
            tensor = (
                pixels[None]
                if self.layout == "NHWC"
                else np.ascontiguousarray(pixels.transpose(2, 0, 1)[None])
            )
            request_id = str(next(self._ids))
            self._geometries[request_id] = ((rgb.width, rgb.height), geometry)
            infer_input = InferInput(name="images", shape=list(tensor.shape), datatype="UINT8")
            infer_input.set_data_from_numpy(tensor, binary_data=True)
            return InferRequest(
                model_name=self.backend_model, infer_inputs=[infer_input], request_id=request_id
            )

        def postprocess(
            self, result: Any, headers: dict[str, str] | None = None, response_type: Any = None
        ) -> Any:
            assert isinstance(result, InferResponse)
            output = next(o for o in result.outputs if o.name == "output0").as_numpy()
            original, geometry = self._geometries.pop(str(result.id))
            return {
                "predictions": [yolo_detections(output.reshape(-1, output.shape[-1]), original, geometry)]
            }


def main() -> None:
    assert kserve is not None, "run with the KServe venv's interpreter (.tools/kserve)"
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--backend_model", default="yolov5")
    parser.add_argument("--layout", choices=("NCHW", "NHWC"), default="NCHW")
    args, _ = parser.parse_known_args()
    model = YoloTransformer(args.model_name, args.backend_model, args.layout)
    kserve.ModelServer().start([model])


if __name__ == "__main__":
    main()
