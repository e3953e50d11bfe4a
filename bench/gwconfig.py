"""The gateway configuration the benchmarks run with (camelCase keys, docs/gateway-config.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.gw import COCO_LABELS


def gateway_config(backend_address: str, host: str, port: int) -> dict[str, Any]:
    image = {"kind": "image", "name": "images", "width": 640, "height": 640, "resize": "letterbox"}
    yolo_out = {"name": "output0", "postprocess": "yolo", "labels": COCO_LABELS}
    return {
        "server": {"host": host, "port": port, "logLevel": "warning"},
        "limits": {"maxBodyBytes": 64 << 20, "requestTimeoutSeconds": 120},
        "backends": [
            {
                "name": "tfserving",
                "protocol": "tfserving",
                "address": backend_address,
                "deadlineSeconds": 60,
                "maxMessageBytes": 128 << 20,
            }
        ],
        "models": [
            # JPEG in, detections out, NMS in the gateway: decode, letterbox, uint8 tensor_content,
            # the raw (1, 25200, 85) tensor back, YOLO decode + class-wise NMS in the gateway
            {
                "name": "yolov5",
                "backend": "tfserving",
                "input": {**image, "dtype": "uint8"},
                "output": yolo_out,
            },
            # JPEG in, detections out, NMS in the model graph: the backend answers the four TF
            # detection-export outputs (about 2 KB) instead of the (1, 25200, 85) YOLO tensor
            {
                "name": "yolov5-nms",
                "backend": "tfserving",
                "input": {**image, "dtype": "uint8"},
                "output": {"postprocess": "detections", "labels": COCO_LABELS},
            },
            # TF REST JSON in (float32 instances), raw tensor JSON out: TF Serving's REST contract
            {
                "name": "yolov5-f32",
                "backend": "tfserving",
                "backendModel": "yolov5-f32",  # the export whose signature declares float32
                "input": {**image, "dtype": "float32", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
                "output": {**yolo_out, "postprocess": "none"},
            },
            # JPEG in, top-5 out: the two classifiers of Table 5
            *(
                {
                    "name": name,
                    "backend": "tfserving",
                    "input": {
                        "kind": "image",
                        "name": "input",
                        "width": size,
                        "height": size,
                        # no dtype: the one each model's signature declares (MobileNet float32,
                        # InceptionV3 uint8); a config that contradicts it is not ready
                        "resize": "center-crop",
                    },
                    "output": {"name": "output0", "postprocess": "topk", "topK": 5},
                }
                for name, size in (("mobilenet", 224), ("inceptionv3", 299))
            ),
        ],
    }


def write_config(path: Path, backend_address: str, host: str, port: int) -> Path:
    path.write_text(yaml.safe_dump(gateway_config(backend_address, host, port), sort_keys=False))
    return path
