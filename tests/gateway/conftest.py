"""Gateway fixtures: the project's test model server over real gRPC, the gateway under uvicorn on a
free loopback port, real photos from scikit-image encoded as JPEG/PNG."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import simplejpeg
from PIL import Image
from skimage import data

from kubevc.gateway import GatewayServer, parse_config, serve
from kubevc.gateway.testing import TestBackend, run_test_backend

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "edge", "gateway", "is", "fast", "and",
    "small", "cluster", "##s", "run", "##ning", "model", "##s", "on", "a", "pi", ".", ",", "!",
    "un", "##related", "inference", "great",
]  # fmt: skip


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    return bytes(simplejpeg.encode_jpeg(np.ascontiguousarray(image), quality=quality, colorspace="RGB"))


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def astronaut_jpeg() -> bytes:
    return jpeg(data.astronaut())


@pytest.fixture(scope="session")
def coffee_png() -> bytes:
    return png(data.coffee())


@pytest.fixture(scope="session")
def chelsea_jpeg() -> bytes:
    return jpeg(data.chelsea())


@pytest.fixture(scope="session")
def vocab_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n")
    return path


@pytest.fixture(scope="session")
def backend() -> Iterator[TestBackend]:
    with run_test_backend() as b:
        yield b


def gateway_config(
    address: str,
    vocab: Path,
    *,
    backend_overrides: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Profiles for the four test models, over TF Serving gRPC and over v2 gRPC."""
    tf = {"name": "tf", "protocol": "tfserving", "address": address, **(backend_overrides or {})}
    v2 = {"name": "v2", "protocol": "v2", "address": address, **(backend_overrides or {})}
    labels = [f"class-{i}" for i in range(1001)]
    return {
        "server": {"logLevel": "warning"},
        "limits": {
            "maxBodyBytes": 8 << 20,
            "maxImagePixels": 4_000_000,
            "maxVideoFrames": 8,
            **(limits or {}),
        },
        "backends": [tf, v2],
        "models": [
            {
                "name": "yolov5",
                "backend": "tf",
                "input": {"kind": "image", "name": "images"},
                "output": {"name": "output0", "postprocess": "yolo"},
            },
            {
                "name": "yolov5-nms",
                "backend": "tf",
                "input": {"kind": "image", "name": "images"},
                "output": {"postprocess": "detections"},
            },
            {
                "name": "mobilenet",
                "backend": "tf",
                "input": {
                    "kind": "image",
                    "name": "input",
                    "width": 224,
                    "height": 224,
                    "dtype": "float32",
                    "resize": "center-crop",
                    "mean": [127.5, 127.5, 127.5],
                    "std": [127.5, 127.5, 127.5],
                },
                "output": {"postprocess": "topk", "topK": 3, "labels": labels},
            },
            {
                "name": "inception",
                "backend": "v2",
                "backendModel": "inceptionv3",
                "input": {"kind": "image", "name": "input", "width": 299, "height": 299, "resize": "stretch"},
                "output": {"postprocess": "topk", "topK": 5},
            },
            {
                "name": "yolo-v2",
                "backend": "v2",
                "backendModel": "yolov5",
                "input": {"kind": "image", "name": "images"},
                "output": {"postprocess": "yolo"},
            },
            {
                "name": "bert",
                "backend": "tf",
                "input": {
                    "kind": "text",
                    "name": "input_ids",
                    "sequenceLength": 500,
                    "vocabFile": str(vocab),
                    "maskName": "attention_mask",
                },
                "output": {"name": "logits", "postprocess": "none"},
            },
            {
                "name": "raw",
                "backend": "tf",
                "backendModel": "mobilenet",
                "input": {"kind": "tensor", "name": "input", "dtype": "float32"},
                "output": {"name": None, "postprocess": "none"},
            },
        ],
    }


@pytest.fixture(scope="session")
def gateway(backend: TestBackend, vocab_file: Path) -> Iterator[GatewayServer]:
    config = parse_config(gateway_config(backend.address, vocab_file), env={})
    with serve(config) as gw:
        yield gw


def http_client(url: str, timeout: float = 60) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=timeout)


@pytest.fixture
def client(gateway: GatewayServer) -> Iterator[httpx.Client]:
    with http_client(gateway.url) as c:
        yield c


@pytest.fixture
def calls(backend: TestBackend) -> Callable[[], int]:
    """Inference calls the test backend has seen so far (Predict + ModelInfer)."""
    return backend.inference_calls
