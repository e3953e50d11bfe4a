"""``python -m kubevc.gateway.demo``: the gateway answering real photos, and what it saves on the wire.

Starts the project's test model server (real gRPC) and the gateway (uvicorn) on free loopback
ports, sends a real JPEG (scikit-image's astronaut) to a YOLO profile and a classification profile,
prints the JSON answers and the bytes on the wire against the TF-Serving-REST JSON equivalent,
then shuts everything down.
"""

from __future__ import annotations

import json
import sys
import time

import httpx
import numpy as np
import orjson
import simplejpeg

from kubevc.gateway import parse_config, serve
from kubevc.gateway._preprocess import prepare_images
from kubevc.gateway._tensors import to_tensor_proto
from kubevc.gateway.testing import backend_doc, classifier_profile, config_doc, run_test_backend, yolo_profile


def _astronaut() -> np.ndarray:
    try:
        from skimage import data

        return np.ascontiguousarray(data.astronaut())  # type: ignore[no-untyped-call]
    except ImportError:  # scikit-image is a test dependency; fall back to a synthetic gradient
        y, x = np.mgrid[0:512, 0:512]
        return np.stack([x % 256, y % 256, (x + y) % 256], axis=2).astype(np.uint8)


def main() -> int:
    photo = _astronaut()
    jpeg = simplejpeg.encode_jpeg(photo, quality=90, colorspace="RGB")
    with run_test_backend() as backend:
        config = parse_config(
            config_doc(
                [backend_doc("tfserving", backend.address)],
                [yolo_profile("yolov5", "tfserving"), classifier_profile("mobilenet", "tfserving", size=224)],
            ),
            env={},
        )
        with serve(config) as gw, httpx.Client(base_url=gw.url, timeout=60) as client:
            print(f"test model server on {backend.address}, gateway on {gw.url}")
            headers = {"content-type": "image/jpeg"}
            for model in ("yolov5", "mobilenet"):
                start = time.perf_counter()
                r = client.post(f"/v1/models/{model}/infer", content=jpeg, headers=headers)
                ms = (time.perf_counter() - start) * 1000
                r.raise_for_status()
                print(
                    f"\nPOST /v1/models/{model}/infer  (image/jpeg, {len(jpeg):,} bytes)"
                    f" -> {r.status_code} in {ms:.1f} ms"
                )
                print(orjson.dumps(r.json(), option=orjson.OPT_INDENT_2).decode())
                cfg = config.model(model)
                assert cfg is not None
                tensor, _ = prepare_images([photo], cfg.input.model_copy(update={"dtype": "float32"}))
                json_in = len(json.dumps({"instances": tensor.tolist()}))
                out_shape = (1, 25200, 85) if model == "yolov5" else (1, 1001)
                outputs = np.random.default_rng(0).random(out_shape, dtype=np.float32)
                json_out = len(json.dumps({"predictions": outputs.tolist()}))
                grpc_in = to_tensor_proto(tensor).ByteSize()
                wire = len(jpeg) + len(r.content)
                print(
                    f"client <-> gateway: {wire:,} bytes (JPEG in + JSON answer)\n"
                    f"TF REST JSON equivalent: {json_in:,} bytes in + {json_out:,} out"
                    f" (the gateway moves {100 * (1 - wire / (json_in + json_out)):.1f}% fewer bytes)\n"
                    f"protobuf tensor_content to the model server: {grpc_in:,} bytes in"
                    f" ({100 * (1 - grpc_in / json_in):.1f}% less than JSON)"
                )
            calls = backend.inference_calls()
    print(f"\nthe model server answered {calls} gRPC Predict calls; everything shut down cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
