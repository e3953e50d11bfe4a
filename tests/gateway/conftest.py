"""Gateway fixtures: the project's test model server over real gRPC, the gateway under uvicorn on a
free loopback port, real photos from scikit-image encoded as JPEG/PNG."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import simplejpeg
from PIL import Image
from skimage import data

from kubevc.gateway import BadRequest, GatewayServer, parse_config, serve
from kubevc.gateway._rest import parse_predict, parse_predict_body
from kubevc.gateway.testing import (
    TestBackend,
    backend_doc,
    classifier_profile,
    config_doc,
    detections_profile,
    run_test_backend,
    tensor_profile,
    text_profile,
    yolo_profile,
)

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
    overrides = backend_overrides or {}
    return config_doc(
        [backend_doc("tf", address, **overrides), backend_doc("v2", address, "v2", **overrides)],
        [
            yolo_profile("yolov5", "tf"),
            detections_profile("yolov5-nms", "tf"),
            classifier_profile("mobilenet", "tf", size=224, labels=[f"class-{i}" for i in range(1001)]),
            classifier_profile(
                "inception",
                "v2",
                size=299,
                backend_model="inceptionv3",
                dtype="uint8",
                resize="stretch",
                mean=None,
                std=None,
                top_k=5,
            ),
            yolo_profile("yolo-v2", "v2", backend_model="yolov5"),
            text_profile("bert", "tf", vocab_file=vocab, sequence_length=500),
            tensor_profile("raw", "tf", backend_model="mobilenet", dtype="float32"),
        ],
        limits={"maxBodyBytes": 8 << 20, "maxImagePixels": 4_000_000, "maxVideoFrames": 8, **(limits or {})},
    )


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


def general_predict_answer(body: bytes, dtypes: dict[str, str]) -> Any:
    """What the general JSON path (orjson, then ``parse_predict``) makes of a ``:predict`` body:
    its inputs, or its 400 message."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "body is not valid JSON"
    try:
        return parse_predict(doc, "x", dtypes)
    except BadRequest as exc:
        return exc.message


def predict_answer(body: bytes, dtypes: dict[str, str]) -> Any:
    """What the gateway makes of it (``parse_predict_body``, fast paths included)."""
    try:
        return parse_predict_body(body, "x", dtypes)
    except BadRequest as exc:
        return exc.message
