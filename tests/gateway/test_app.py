"""End to end: HTTP client -> gateway (uvicorn, real socket) -> test backend (real gRPC)."""

from __future__ import annotations

import io
import struct
from fractions import Fraction

import av
import httpx
import numpy as np
import orjson
import pytest
from skimage import data

from .conftest import jpeg

pytestmark = pytest.mark.slow


def test_health_ready_metrics(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["models"] == {
        m: True for m in ["yolov5", "yolov5-nms", "mobilenet", "inception", "yolo-v2", "bert", "raw"]
    }
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    client.post(
        "/v1/models/mobilenet/infer", content=jpeg(data.coffee()), headers={"content-type": "image/jpeg"}
    )
    text = client.get("/metrics").text
    for name in [
        'kubevc_gateway_requests_total{code="200",model="mobilenet",route="infer"}',
        'kubevc_gateway_request_duration_seconds_bucket{le="0.001",model="mobilenet",stage="decode"}',
        'kubevc_gateway_request_duration_seconds_count{model="mobilenet",stage="backend"}',
        'kubevc_gateway_request_duration_seconds_count{model="mobilenet",stage="preprocess"}',
        'kubevc_gateway_request_duration_seconds_count{model="mobilenet",stage="postprocess"}',
        'kubevc_gateway_request_duration_seconds_count{model="mobilenet",stage="total"}',
        'kubevc_gateway_request_bytes_total{model="mobilenet"}',
        'kubevc_gateway_response_bytes_total{model="mobilenet"}',
        'kubevc_gateway_backend_up{backend="tf"} 1.0',
        'kubevc_gateway_model_available{model="yolov5"} 1.0',
    ]:
        assert name in text, name


def test_jpeg_to_yolo_detections_in_original_coordinates(client: httpx.Client, astronaut_jpeg: bytes) -> None:
    r = client.post("/v1/models/yolov5/infer", content=astronaut_jpeg, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200, r.text
    (result,) = r.json()["results"]
    assert (result["width"], result["height"]) == (512, 512)
    dets = result["detections"]
    assert 1 <= len(dets) <= 3  # the backend reports each object 8 times; NMS keeps one each
    for d in dets:
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 512 and 0.25 < d["score"] <= 1


def test_same_photo_over_tf_and_v2_backends_gives_same_detections(
    client: httpx.Client, astronaut_jpeg: bytes
) -> None:
    headers = {"content-type": "image/jpeg"}
    a = client.post("/v1/models/yolov5/infer", content=astronaut_jpeg, headers=headers).json()["results"]
    b = client.post("/v1/models/yolo-v2/infer", content=astronaut_jpeg, headers=headers).json()["results"]
    assert a == b


@pytest.mark.parametrize("photo", ["astronaut", "chelsea", "coffee"])
def test_nms_in_graph_model_gives_the_gateway_nms_detections(
    client: httpx.Client, photo: str, backend
) -> None:
    """yolov5-nms reports exactly the best row of each yolov5 object, with boxes as normalised
    yxyx: both post-processing paths must land on the same boxes in original-image pixels,
    through the same letterbox inverse (square, landscape and wide photos)."""
    image = jpeg(getattr(data, photo)())
    headers = {"content-type": "image/jpeg"}
    before = backend.calls["Predict", "yolov5-nms"]
    nms = client.post("/v1/models/yolov5-nms/infer", content=image, headers=headers)
    assert nms.status_code == 200, nms.text
    assert backend.calls["Predict", "yolov5-nms"] == before + 1
    yolo = client.post("/v1/models/yolov5/infer", content=image, headers=headers).json()["results"]
    (result,) = nms.json()["results"]
    h, w = getattr(data, photo)().shape[:2]
    assert (result["width"], result["height"]) == (w, h)
    dets = result["detections"]
    assert len(dets) == 3
    ref = yolo[0]["detections"]
    key = lambda d: (d["class"], d["box"][0])  # noqa: E731
    assert sorted(d["class"] for d in dets) == sorted(d["class"] for d in ref)
    for a, b in zip(sorted(dets, key=key), sorted(ref, key=key), strict=True):
        assert a["box"] == pytest.approx(b["box"], abs=0.05) and a["score"] == pytest.approx(b["score"])
        x1, y1, x2, y2 = a["box"]
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h


def test_png_and_multipart_batch_topk(client: httpx.Client, coffee_png: bytes, chelsea_jpeg: bytes) -> None:
    r = client.post("/v1/models/mobilenet/infer", content=coffee_png, headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    (single,) = r.json()["results"]
    assert len(single["classes"]) == 3 and single["classes"][0]["label"].startswith("class-")
    files = [
        ("a", ("coffee.png", coffee_png, "image/png")),
        ("b", ("chelsea.jpg", chelsea_jpeg, "image/jpeg")),
    ]
    r = client.post("/v1/models/mobilenet/infer", files=files)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 2  # same photo, same answer, batched
    assert [c["index"] for c in results[0]["classes"]] == [c["index"] for c in single["classes"]]
    assert [c["score"] for c in results[0]["classes"]] == pytest.approx(
        [c["score"] for c in single["classes"]], rel=1e-3
    )
    assert results[1]["classes"] != single["classes"]  # outputs depend on the input


def test_inception_over_v2_grpc(client: httpx.Client, chelsea_jpeg: bytes, backend) -> None:
    before = backend.calls["ModelInfer", "inceptionv3"]
    r = client.post(
        "/v1/models/inception/infer", content=chelsea_jpeg, headers={"content-type": "image/jpeg"}
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["results"][0]["classes"]) == 5
    assert backend.calls["ModelInfer", "inceptionv3"] == before + 1


def _video(frames: int = 12, fps: int = 6, fmt: str = "mp4", codec: str = "mpeg4") -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.time_base = Fraction(1, fps)
        base = np.asarray(data.chelsea()[:240, :320])
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(base, i * 10, axis=1).copy(), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def test_mp4_frames_are_sampled_and_batched(client: httpx.Client) -> None:
    video = _video(frames=12, fps=6)  # 2 s of video; the profile samples 2 fps -> 4 frames
    r = client.post("/v1/models/yolov5/infer", content=video, headers={"content-type": "video/mp4"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [round(x["time"], 2) for x in results] == [0.0, 0.5, 1.0, 1.5]
    assert all((x["width"], x["height"]) == (320, 240) for x in results)


def test_webm_vp8(client: httpx.Client) -> None:
    video = _video(
        frames=6, fps=3, fmt="webm", codec="libvpx"
    )  # frames every 1/3 s, sampled at >= 0.5 s apart
    r = client.post("/v1/models/mobilenet/infer", content=video, headers={"content-type": "video/webm"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 3 and all(len(x["classes"]) == 3 for x in results)
    assert [x["time"] for x in results] == pytest.approx([0.0, 2 / 3, 4 / 3], abs=0.01)


def test_video_frame_limit(client: httpx.Client) -> None:
    video = _video(frames=60, fps=30)  # 2 s; at 2 fps that is 4 frames, the limit is 8: fine
    assert (
        len(
            client.post(
                "/v1/models/mobilenet/infer", content=video, headers={"content-type": "video/mp4"}
            ).json()["results"]
        )
        == 4
    )
    long_video = _video(frames=40, fps=4)  # 10 s at 2 fps would be 20 frames: capped at maxVideoFrames 8
    assert (
        len(
            client.post(
                "/v1/models/mobilenet/infer", content=long_video, headers={"content-type": "video/mp4"}
            ).json()["results"]
        )
        == 8
    )


def test_text_is_tokenised_for_bert(client: httpx.Client, backend) -> None:
    before = backend.calls["Predict", "bert"]
    r = client.post(
        "/v1/models/bert/infer",
        content=b"The edge gateway is fast!",
        headers={"content-type": "text/plain; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    out = r.json()["outputs"]["logits"]
    assert out["shape"] == [1, 2] and out["dtype"] == "float32"
    other = client.post(
        "/v1/models/bert/infer", content=b"small clusters", headers={"content-type": "text/plain"}
    )
    assert other.json()["outputs"]["logits"]["data"] != out["data"]
    assert backend.calls["Predict", "bert"] == before + 2


def test_npy_and_octet_stream_tensors(client: httpx.Client) -> None:
    x = np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32)
    buf = io.BytesIO()
    np.save(buf, x)
    a = client.post(
        "/v1/models/raw/infer", content=buf.getvalue(), headers={"content-type": "application/x-npy"}
    )
    assert a.status_code == 200, a.text
    b = client.post(
        "/v1/models/raw/infer",
        content=x.tobytes(),
        headers={
            "content-type": "application/octet-stream",
            "x-tensor-dtype": "float32",
            "x-tensor-shape": "1,224,224,3",
        },
    )
    assert b.status_code == 200, b.text
    assert a.json() == b.json()
    assert a.json()["outputs"]["output0"]["shape"] == [1, 1001]


def test_npy_batch_to_yolo_gives_one_result_per_image(client: httpx.Client) -> None:
    x = np.stack([np.zeros((640, 640, 3), np.uint8), np.full((640, 640, 3), 200, np.uint8)])
    x[0, 100:300, 100:300] = 255  # a bright square on black: the test model puts an object there
    buf = io.BytesIO()
    np.save(buf, x)
    r = client.post(
        "/v1/models/yolov5/infer", content=buf.getvalue(), headers={"content-type": "application/x-npy"}
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 2 and all((x["width"], x["height"]) == (640, 640) for x in results)
    assert results[0]["detections"] != results[1]["detections"]


def test_tf_rest_predict_row_and_columnar(client: httpx.Client) -> None:
    x = (np.arange(224 * 224 * 3 * 2, dtype=np.int64) % 256).reshape(2, 224, 224, 3)
    row = client.post("/v1/models/mobilenet:predict", content=orjson.dumps({"instances": x.tolist()}))
    assert row.status_code == 200, row.text
    preds = np.asarray(row.json()["predictions"])
    assert preds.shape == (2, 1001) and np.allclose(preds.sum(axis=1), 1, atol=1e-4)
    col = client.post(
        "/v1/models/mobilenet/versions/1:predict",
        content=orjson.dumps({"inputs": {"input": x.tolist()}, "signature_name": "serving_default"}),
    )
    assert col.status_code == 200, col.text
    assert np.allclose(np.asarray(col.json()["outputs"]), preds)
    named = client.post(
        "/v1/models/mobilenet/labels/stable:predict",
        content=orjson.dumps({"instances": [{"input": r} for r in x.tolist()]}),
    )
    assert named.status_code == 200 and np.allclose(np.asarray(named.json()["predictions"]), preds)
    ids = client.post(
        "/v1/models/bert:predict", content=orjson.dumps({"instances": [[2, 5, 6, 3] + [0] * 496]})
    )
    assert ids.status_code == 200 and np.asarray(ids.json()["predictions"]).shape == (1, 2)


def test_v2_json_and_binary_extension(client: httpx.Client) -> None:
    x = np.random.default_rng(1).random((1, 224, 224, 3), dtype=np.float32)
    body = {
        "id": "r1",
        "inputs": [
            {"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.reshape(-1).tolist()}
        ],
    }
    j = client.post("/v2/models/raw/infer", content=orjson.dumps(body))
    assert j.status_code == 200, j.text
    doc = j.json()
    assert (
        doc["id"] == "r1"
        and doc["outputs"][0]["shape"] == [1, 1001]
        and doc["outputs"][0]["datatype"] == "FP32"
    )
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "outputs": [{"name": "output0", "parameters": {"binary_data": True}}],
        }
    )
    b = client.post(
        "/v2/models/raw/versions/1/infer",
        content=header + x.tobytes(),
        headers={
            "inference-header-content-length": str(len(header)),
            "content-type": "application/octet-stream",
        },
    )
    assert b.status_code == 200, b.text
    n = int(b.headers["inference-header-content-length"])
    meta = orjson.loads(b.content[:n])
    out = np.frombuffer(b.content[n:], dtype=np.float32).reshape(meta["outputs"][0]["shape"])
    assert meta["outputs"][0]["parameters"]["binary_data_size"] == out.nbytes
    assert np.allclose(out.reshape(-1), doc["outputs"][0]["data"])
    meta = client.get("/v2/models/mobilenet").json()
    assert meta["inputs"][0] == {"name": "input", "datatype": "FP32", "shape": [-1, 224, 224, 3]}
    assert client.get("/v2/models/bert/ready").json() == {"name": "bert", "ready": True}


def test_wire_bytes_protobuf_vs_json(client: httpx.Client, astronaut_jpeg: bytes) -> None:
    """The paper's point: JPEG in + detections out is tiny next to the JSON tensor round trip."""
    r = client.post("/v1/models/yolov5/infer", content=astronaut_jpeg, headers={"content-type": "image/jpeg"})
    media_bytes = len(astronaut_jpeg) + len(r.content)
    tensor_bytes = 640 * 640 * 3 * 4
    json_in = len(orjson.dumps({"instances": np.zeros((1, 640, 640, 3), np.float32).tolist()}))
    assert media_bytes < 0.1 * tensor_bytes < json_in
    assert struct.calcsize("f") == 4


def test_test_server_socket_is_tcp_so_asyncio_sets_nodelay(gateway) -> None:
    """asyncio turns Nagle off only for sockets whose proto is IPPROTO_TCP; with proto 0 every
    keep-alive response of serve() waited for the client's delayed ACK (~40 ms)."""
    import socket

    assert gateway.sock.proto == socket.IPPROTO_TCP


def test_metrics_content_type_names_the_charset_once(client: httpx.Client) -> None:
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    ctype = client.get("/metrics").headers["content-type"]
    assert ctype.count("charset=") == 1, ctype
    assert ctype == CONTENT_TYPE_LATEST


def test_image_jpg_is_an_alias_of_image_jpeg(client: httpx.Client, astronaut_jpeg: bytes) -> None:
    answers = [
        client.post("/v1/models/yolov5/infer", content=astronaut_jpeg, headers={"content-type": ctype})
        for ctype in ("image/jpeg", "image/jpg", "Image/JPG; q=1")
    ]
    assert [r.status_code for r in answers] == [200, 200, 200], answers[1].text
    assert answers[1].json() == answers[0].json() == answers[2].json()
    files = [("a", ("astronaut.jpg", astronaut_jpeg, "image/jpg"))]  # a multipart part may say image/jpg too
    r = client.post("/v1/models/yolov5/infer", files=files)
    assert r.status_code == 200, r.text
    assert r.json() == answers[0].json()
