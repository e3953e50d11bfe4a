"""The v2 gRPC backend against a real MLServer (its own venv, started as a subprocess)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from skimage import data

from kubevc.gateway import parse_config, serve
from kubevc.gateway.testing import (
    backend_doc,
    classifier_profile,
    config_doc,
    run_mlserver,
    tensor_profile,
    write_mlserver_settings,
)

from .conftest import jpeg

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def _mlserver() -> Path:
    path = Path(os.environ.get("KUBEVC_MLSERVER") or REPO / ".tools/mlserver/bin/mlserver")
    if not path.exists():
        pytest.fail(f"MLServer not found at {path}: run `make tools` (or set KUBEVC_MLSERVER)")
    return path


@pytest.fixture(scope="module")
def mlserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = _mlserver()
    root = tmp_path_factory.mktemp("mlserver")
    shutil.copy(HERE / "mlserver_models" / "tiny_runtime.py", root / "tiny_runtime.py")
    # host and ports come from run_mlserver's environment: settings.json would win over it
    (root / "settings.json").write_text(
        json.dumps({"parallel_workers": 0, "debug": False, "load_models_at_startup": True})
    )
    write_mlserver_settings(root / "tiny", "tiny_runtime.TinyClassifier", name="tiny")
    # the same runtime with the metadata MLServer serves declared: the gateway reads its signature
    write_mlserver_settings(
        root / "tiny-declared",
        "tiny_runtime.TinyClassifier",
        name="tiny-declared",
        inputs=[{"name": "input", "datatype": "FP32", "shape": [-1, 224, 224, 3]}],
        outputs=[{"name": "output0", "datatype": "FP32", "shape": [-1, 1001]}],
    )
    with run_mlserver(exe, root, models=("tiny",), python_path=(root,), log=root / "mlserver.log") as server:
        yield server.grpc_target


def test_gateway_over_mlserver_v2_grpc(mlserver: str, tmp_path: Path) -> None:
    cfg = parse_config(
        config_doc(
            [backend_doc("mlserver", mlserver, "v2", retries=0)],
            [
                classifier_profile("tiny", "mlserver", size=224, mean=0, std=1),
                tensor_profile("tiny-raw", "mlserver", backend_model="tiny", dtype="float32"),
                tensor_profile("missing", "mlserver", output="output0"),
            ],
            log_level=None,
        ),
        env={},
    )
    with serve(cfg) as gw, httpx.Client(base_url=gw.url, timeout=60) as c:
        ready = c.get("/readyz").json()
        assert ready["models"] == {"tiny": True, "tiny-raw": True, "missing": False}
        a = c.post(
            "/v1/models/tiny/infer", content=jpeg(data.astronaut()), headers={"content-type": "image/jpeg"}
        )
        assert a.status_code == 200, a.text
        classes = a.json()["results"][0]["classes"]
        assert len(classes) == 3 and classes[0]["score"] >= classes[1]["score"] >= classes[2]["score"]
        b = c.post(
            "/v1/models/tiny/infer", content=jpeg(data.coffee()), headers={"content-type": "image/jpeg"}
        )
        assert b.json()["results"][0]["classes"] != classes
        # raw tensor in, raw tensor out, through ModelInfer raw_input_contents
        import numpy as np

        x = np.full((2, 224, 224, 3), 128, np.float32)
        r = c.post(
            "/v1/models/tiny-raw/infer",
            content=x.tobytes(),
            headers={
                "content-type": "application/octet-stream",
                "x-tensor-dtype": "float32",
                "x-tensor-shape": "2,224,224,3",
            },
        )
        assert r.status_code == 200, r.text
        out = r.json()["outputs"]["output0"]
        assert out["shape"] == [2, 1001] and abs(sum(out["data"][0]) - 1) < 1e-3
        # the runtime refuses a wrong shape: MLServer's error reaches the client as a 4xx/5xx JSON error
        bad = np.zeros((1, 10, 10, 3), np.float32)
        r = c.post(
            "/v1/models/tiny-raw/infer",
            content=bad.tobytes(),
            headers={
                "content-type": "application/octet-stream",
                "x-tensor-dtype": "float32",
                "x-tensor-shape": "1,10,10,3",
            },
        )
        assert r.status_code in (400, 502) and set(r.json()) == {"error", "status"}
        r = c.post(
            "/v1/models/missing/infer",
            content=bad.tobytes(),
            headers={
                "content-type": "application/octet-stream",
                "x-tensor-dtype": "float32",
                "x-tensor-shape": "1,10,10,3",
            },
        )
        assert r.status_code in (400, 404), r.text


def test_signature_from_mlserver_metadata_narrows_and_checks_the_config(mlserver: str) -> None:
    """MLServer's ModelMetadata declares FP32 [-1, 224, 224, 3]: a profile that leaves dtype and
    size at their defaults (uint8, 640x640) takes them from it; one that says uint8 is not ready."""
    plain: dict[str, object] = {
        "kind": "image",
        "name": "input",
        "resize": "stretch",
        "mean": [0] * 3,
        "std": [1] * 3,
    }
    cfg = parse_config(
        config_doc(
            [backend_doc("mlserver", mlserver, "v2", retries=0)],
            [
                {
                    "name": "declared",
                    "backend": "mlserver",
                    "backendModel": "tiny-declared",
                    "input": plain,
                    "output": {"name": "output0", "postprocess": "topk", "topK": 3},
                },
                {
                    "name": "contradicts",
                    "backend": "mlserver",
                    "backendModel": "tiny-declared",
                    "input": {**plain, "dtype": "uint8"},
                    "output": {"name": "output0", "postprocess": "topk", "topK": 3},
                },
            ],
            log_level=None,
        ),
        env={},
    )
    with serve(cfg) as gw, httpx.Client(base_url=gw.url, timeout=60) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 503
        doc = ready.json()
        assert doc["models"] == {"declared": True, "contradicts": False}
        reason = doc["errors"]["contradicts"]
        for part in ("'contradicts'", "input 'input'", "input.dtype is uint8", "float32"):
            assert part in reason, reason
        # sent as 224x224 float32, which the runtime insists on (it refuses any other shape)
        a = c.post(
            "/v1/models/declared/infer",
            content=jpeg(data.astronaut()),
            headers={"content-type": "image/jpeg"},
        )
        assert a.status_code == 200, a.text
        assert len(a.json()["results"][0]["classes"]) == 3
        r = c.post(
            "/v1/models/contradicts/infer",
            content=jpeg(data.astronaut()),
            headers={"content-type": "image/jpeg"},
        )
        assert r.status_code == 503 and "input.dtype is uint8" in r.json()["error"], r.text
        meta = c.get("/v2/models/declared").json()
        assert meta["name"] == "declared"
        assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 224, 224, 3]}]
        assert meta["outputs"] == [{"name": "output0", "datatype": "FP32", "shape": [-1, 1001]}]
