"""``model add --saved-model DIR`` reads the SavedModel's signature and picks profile and wire form.

The SavedModels are real: TensorFlow (the tool venv, ``KUBEVC_TF_PYTHON``) writes them once per
run; kubevc reads ``saved_model.pb`` with its own wire-format reader (no TensorFlow, no gateway).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from kubevc.generator.models import SavedModelError, pick_serving, read_signature

from .conftest import Gen
from .model_savedmodels import tf_python

# name -> (input specs, output builder): each a tf.Module whose serving_default has that signature
BUILD = """
import sys
import tensorflow as tf

def save(name, specs, outputs):
    class M(tf.Module):
        @tf.function(input_signature=specs)
        def serve(self, *args):
            n = tf.shape(args[0])[0]
            return {k: tf.zeros(tf.concat([[n], shape], 0), dtype) for k, (shape, dtype) in outputs.items()}
    m = M()
    tf.saved_model.save(m, f"{sys.argv[1]}/{name}", signatures={"serving_default": m.serve})

save("yolo-bytes", [tf.TensorSpec([None], tf.string, name="images")], {"output0": ([25200, 85], tf.float32)})
save("yolo-f32", [tf.TensorSpec([None, 640, 640, 3], tf.float32, name="images")],
     {"output0": ([25200, 85], tf.float32)})
save("ssd-u8", [tf.TensorSpec([None, None, None, 3], tf.uint8, name="input_tensor")],
     {"detection_boxes": ([100, 4], tf.float32), "detection_scores": ([100], tf.float32)})
save("mobilenet-u8", [tf.TensorSpec([None, 224, 224, 3], tf.uint8, name="image")],
     {"probs": ([1001], tf.float32)})
save("mobilenet-f16", [tf.TensorSpec([None, 224, 224, 3], tf.float16, name="image")],
     {"probs": ([1001], tf.float16)})
save("bert", [tf.TensorSpec([None, 128], tf.int64, name="input_ids"),
              tf.TensorSpec([None, 128], tf.int64, name="attention_mask")],
     {"logits": ([2], tf.float32)})
save("scale", [tf.TensorSpec([None, 4], tf.float32, name="x")], {"y": ([4], tf.float32)})
print("ok")
"""


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = tf_python()
    if python is None:
        pytest.skip("TensorFlow tool venv missing (make tools, or set KUBEVC_TF_PYTHON)")
    out = tmp_path_factory.mktemp(f"sig-{hashlib.sha256(BUILD.encode()).hexdigest()[:8]}")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [str(python), "-c", BUILD, str(out)], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]
    return out


@pytest.mark.parametrize(
    ("model", "profile", "wire"),
    [
        ("yolo-bytes", "detection", "encoded"),
        ("yolo-f32", "detection", "float32"),
        ("ssd-u8", "detection", "uint8"),
        ("mobilenet-u8", "classification", "uint8"),
        ("mobilenet-f16", "classification", "float16"),
        ("bert", "text", None),
        ("scale", "tensor", None),
    ],
)
def test_the_signature_picks_profile_and_wire(
    models_dir: Path, model: str, profile: str, wire: str | None
) -> None:
    pick = pick_serving(read_signature(models_dir / model))
    assert (pick.profile, pick.wire) == (profile, wire), pick.reasons
    assert pick.reasons


def test_the_signature_is_read_exactly(models_dir: Path) -> None:
    sig = read_signature(models_dir / "bert")
    assert sig.method == "tensorflow/serving/predict"
    assert [(t.name, t.dtype, t.shape) for t in sig.inputs] == [
        ("attention_mask", "int64", (None, 128)),
        ("input_ids", "int64", (None, 128)),
    ]
    assert [(t.name, t.dtype, t.shape) for t in sig.outputs] == [("logits", "float32", (None, 2))]
    yolo = read_signature(models_dir / "yolo-bytes")
    assert [(t.name, t.dtype, t.shape) for t in yolo.inputs] == [("images", "string", (None,))]


def test_bad_saved_models_are_one_line(models_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SavedModelError, match="no signature 'predict' \\(signatures: serving_default\\)"):
        read_signature(models_dir / "scale", "predict")
    with pytest.raises(SavedModelError, match="cannot read"):
        read_signature(tmp_path)
    (tmp_path / "saved_model.pb").write_bytes(b"\xff\xff\xff")
    with pytest.raises(SavedModelError, match="not a SavedModel"):
        read_signature(tmp_path)


def test_model_add_picks_and_says_why(gen: Gen, fleet: Path, models_dir: Path) -> None:
    added = gen("model", "add", "yolo", "--region", "seoul", "--saved-model", str(models_dir / "yolo-bytes"))
    assert added.exit_code == 0, added.output
    assert "profile detection, wire encoded" in added.output
    assert "takes encoded image bytes" in added.output and "YOLO layout" in added.output
    region = yaml.safe_load((fleet / "regions/seoul/region.yaml").read_text())
    model = next(m for m in region["models"] if m["name"] == "yolo")
    assert (model["profile"], model["wire"]) == ("detection", "encoded")
    values = (fleet / "apps/seoul/kubevc-gateway-values.yaml").read_text()
    gateway = yaml.safe_load(yaml.safe_load(values)["data"]["values.yaml"])
    entry = next(m for m in gateway["config"]["models"] if m["name"] == "yolo")
    assert entry["input"]["dtype"] == "string"
    # overrides win and are said
    over = gen(
        "model", "add", "mnet", "--region", "seoul", "--saved-model", str(models_dir / "mobilenet-u8"),
        "--wire", "float32",
    )  # fmt: skip
    assert over.exit_code == 0, over.output
    assert "--wire float32 overrides the pick" in over.output
    region = yaml.safe_load((fleet / "regions/seoul/region.yaml").read_text())
    assert next(m for m in region["models"] if m["name"] == "mnet")["wire"] == "float32"
    text = gen("model", "add", "bert", "--region", "seoul", "--saved-model", str(models_dir / "bert"))
    assert text.exit_code == 0 and "profile text, wire -" in text.output
    bad = gen("model", "add", "b2", "--region", "seoul", "--profile", "text", "--wire", "uint8")
    assert bad.exit_code == 5 and "has no image input" in bad.output
