"""TF Serving REST GET routes: model status (GetModelStatus) and metadata (GetModelMetadata)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kubevc.gateway import parse_config, serve
from kubevc.gateway.testing import TestBackend, run_test_backend

from .conftest import gateway_config

OK = {"error_code": "OK", "error_message": ""}


def test_model_status_in_tf_serving_shape(client: httpx.Client, backend: TestBackend) -> None:
    before = backend.calls["GetModelStatus", "mobilenet"]
    r = client.get("/v1/models/mobilenet")
    assert r.status_code == 200, r.text
    assert r.json() == {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": OK}]}
    assert backend.calls["GetModelStatus", "mobilenet"] == before + 1
    assert client.get("/v1/models/mobilenet/versions/1").json() == r.json()
    assert client.get("/v1/models/mobilenet/labels/stable").json() == r.json()
    missing = client.get("/v1/models/mobilenet/versions/9")
    assert missing.status_code == 404 and "version 9" in missing.json()["error"]
    label = client.get("/v1/models/mobilenet/labels/nope")
    assert label.status_code == 400 and "Unrecognized servable version label: nope" in label.json()["error"]
    # a v2 (Open Inference Protocol) backend: readiness as the one, default version
    v2 = client.get("/v1/models/inception")
    assert v2.json() == {"model_version_status": [{"version": "0", "state": "AVAILABLE", "status": OK}]}


def test_routes_that_do_not_exist(client: httpx.Client) -> None:
    assert client.get("/v1/models/nope").status_code == 404
    assert client.get("/v1/models/nope/metadata").status_code == 404
    assert client.get("/v1/models/mobilenet/versions/x").status_code == 400
    assert client.get("/v1/models/mobilenet/weights").status_code == 404


def _dims(info: dict) -> list[int]:
    return [int(d["size"]) for d in info["tensor_shape"]["dim"]]


def test_metadata_from_the_backend_signature(client: httpx.Client, backend: TestBackend) -> None:
    before = backend.calls["GetModelMetadata", "bert"]
    r = client.get("/v1/models/bert/metadata")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert backend.calls["GetModelMetadata", "bert"] == before + 1
    assert doc["model_spec"] == {"name": "bert", "signature_name": "serving_default", "version": "1"}
    sig = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    ids = sig["inputs"]["input_ids"]
    assert ids["dtype"] == "DT_INT64" and ids["name"] == "serving_default_input_ids:0"
    assert _dims(ids) == [-1, 500] and ids["tensor_shape"]["unknown_rank"] is False
    assert sorted(sig["inputs"]) == ["attention_mask", "input_ids", "token_type_ids"]
    assert _dims(sig["outputs"]["logits"]) == [-1, 2]
    # the client-facing name, even when the backend calls the model something else
    raw = client.get("/v1/models/raw/versions/1/metadata").json()
    assert raw["model_spec"]["name"] == "raw"
    assert _dims(raw["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]["input"]) == [
        -1,
        224,
        224,
        3,
    ]
    nms = client.get("/v1/models/yolov5-nms/labels/stable/metadata").json()
    outs = nms["metadata"]["signature_def"]["signature_def"]["serving_default"]["outputs"]
    assert _dims(outs["detection_boxes"]) == [-1, 100, 4] and _dims(outs["num_detections"]) == [-1]


def test_metadata_over_v2_comes_from_the_profile(client: httpx.Client) -> None:
    doc = client.get("/v1/models/inception/metadata").json()
    assert doc["model_spec"]["name"] == "inception"
    sig = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["input"]["dtype"] == "DT_UINT8" and _dims(sig["inputs"]["input"]) == [
        -1,
        299,
        299,
        3,
    ]
    # the v2 server's ModelMetadata declares the output: its shape is known now
    assert _dims(sig["outputs"]["output0"]) == [-1, 1001]


@pytest.fixture(scope="module")
def no_metadata_client(vocab_file: Path) -> Iterator[tuple[httpx.Client, TestBackend]]:
    with (
        run_test_backend(metadata=False) as b,
        serve(parse_config(gateway_config(b.address, vocab_file), env={})) as gw,
        httpx.Client(base_url=gw.url, timeout=30) as c,
    ):
        yield c, b


def test_backend_without_get_model_metadata_falls_back_to_the_profile(
    no_metadata_client: tuple[httpx.Client, TestBackend],
) -> None:
    client, backend = no_metadata_client
    before = backend.calls["GetModelMetadata", "bert"]  # the gateway asked at start, too
    r = client.get("/v1/models/bert/versions/1/metadata")
    assert r.status_code == 200, r.text
    assert backend.calls["GetModelMetadata", "bert"] == before + 1  # asked, answered UNIMPLEMENTED
    doc = r.json()
    assert doc["model_spec"] == {"name": "bert", "signature_name": "", "version": "1"}
    sig = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sorted(sig["inputs"]) == ["attention_mask", "input_ids"]  # what the profile sends
    assert (
        _dims(sig["inputs"]["attention_mask"]) == [-1, 500]
        and sig["inputs"]["input_ids"]["dtype"] == "DT_INT32"
    )


def test_v2_metadata_lists_the_detection_outputs(client: httpx.Client) -> None:
    names = [o["name"] for o in client.get("/v2/models/yolov5-nms").json()["outputs"]]
    assert names == ["detection_boxes", "detection_scores", "detection_classes", "num_detections"]
    assert [o["name"] for o in client.get("/v2/models/yolov5").json()["outputs"]] == ["output0"]
