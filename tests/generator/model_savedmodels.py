"""Real TensorFlow SavedModels for the model tests, built once in the TF tool venv and cached.

The main venv has no TensorFlow: ``KUBEVC_TF_PYTHON`` (``make tools`` -> ``.tools/tf/bin/python``)
runs :data:`BUILD` in a subprocess. The result is cached under pytest's cache folder, keyed by the
script's hash, so only the first run pays the ~5 s TensorFlow import. Tests that need only a
folder layout use :func:`synthetic_saved_model_layout`, which is *not* a real SavedModel.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# A tf.Module with one signature (serving_default: input (N, 4) float32 -> output0 = x * scale).
BUILD = """
import sys
import tensorflow as tf

class Scale(tf.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = tf.Variable(float(scale), name="scale")

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="input")])
    def serve(self, x):
        return {"output0": x * self.scale}

for version, scale in ((1, 1.0), (2, 2.0), (3, 3.0)):
    module = Scale(scale)
    tf.saved_model.save(module, f"{sys.argv[1]}/v{version}", signatures={"serving_default": module.serve})
    loaded = tf.saved_model.load(f"{sys.argv[1]}/v{version}")
    out = loaded.signatures["serving_default"](tf.ones([1, 4]))["output0"].numpy()
    assert out.tolist() == [[scale] * 4], out
print("ok")
"""


def tf_python() -> Path | None:
    for candidate in (os.environ.get("KUBEVC_TF_PYTHON"), str(REPO / ".tools/tf/bin/python")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def build_saved_models(cache_root: Path) -> Path:
    """Folder with v1, v2, v3 SavedModels (built by TensorFlow); skips when TF is not installed."""
    python = tf_python()
    if python is None:
        pytest.skip("TensorFlow tool venv missing (make tools, or set KUBEVC_TF_PYTHON)")
    key = hashlib.sha256(BUILD.encode()).hexdigest()[:16]
    out = cache_root / f"savedmodels-{key}"
    if (out / ".complete").is_file():
        return out
    # Two pytest-xdist workers share the cache folder: one builds, the other waits and reuses it
    # (without the lock the second would replace the folder while the first's tests read it).
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / f".build-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (out / ".complete").is_file():
            return out
        return _build_saved_models(python, key, out)


def _build_saved_models(python: Path, key: str, out: Path) -> Path:
    cache_root = out.parent
    tmp = cache_root / f".build-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [str(python), "-c", BUILD, str(tmp)], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]
    (tmp / ".complete").write_text(key)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def synthetic_saved_model_layout(folder: Path, signature: str = "serving_default") -> Path:
    """A *synthetic* SavedModel layout (not loadable by TensorFlow): for file-level tests only."""
    (folder / "variables").mkdir(parents=True)
    # field 1 (schema version, varint 1), then a fake meta graph mentioning the signature name
    (folder / "saved_model.pb").write_bytes(b"\x08\x01\x12\x20synthetic " + signature.encode())
    (folder / "variables" / "variables.index").write_bytes(b"synthetic index")
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(os.urandom(4096))
    return folder


@pytest.fixture(scope="session")
def saved_models(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1, v2, v3: real SavedModels written by TensorFlow (cached between runs when pytest caches)."""
    cache = getattr(pytestconfig, "cache", None)  # None with -p no:cacheprovider
    root = cache.mkdir("kubevc-model-tests") if cache is not None else tmp_path_factory.mktemp("savedmodels")
    return build_saved_models(root)
