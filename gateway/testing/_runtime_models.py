"""Model files for the real Triton and MLServer in tests: one writer each, so every test serves the
same model the same way.

* :func:`write_triton_add_model`: a Triton Python-backend version folder (``model.py``) answering
  ``output = input + addend`` in float32 (the addend tells the versions apart).
* :func:`write_mlserver_settings`: an MLServer ``model-settings.json`` naming the implementation
  (``module.Class``), optionally the model name and the inputs/outputs MLServer declares.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["triton_add_model_source", "write_mlserver_settings", "write_triton_add_model"]

_ADD_MODEL = '''"""Triton Python backend: {output} = {input} + {addend} (float32)."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        answers = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "{input}").as_numpy()
            out = pb_utils.Tensor("{output}", (x + {addend!r}).astype(np.float32))
            answers.append(pb_utils.InferenceResponse([out]))
        return answers
'''


def triton_add_model_source(
    *, addend: float = 1.0, input_name: str = "input", output_name: str = "output0"
) -> str:
    """The ``model.py`` text of the add model (see :func:`write_triton_add_model`)."""
    return _ADD_MODEL.format(input=input_name, output=output_name, addend=float(addend))


def write_triton_add_model(
    folder: Path, *, addend: float = 1.0, input_name: str = "input", output_name: str = "output0"
) -> Path:
    """Write ``folder/model.py`` (``folder`` created): a Python-backend model answering
    ``output_name = input_name + addend``. Returns ``folder``: a source for ``model publish``, or a
    version folder of a Triton repository."""
    folder.mkdir(parents=True, exist_ok=True)
    text = triton_add_model_source(addend=addend, input_name=input_name, output_name=output_name)
    (folder / "model.py").write_text(text, encoding="utf-8")
    return folder


def write_mlserver_settings(
    folder: Path,
    implementation: str,
    *,
    name: str | None = None,
    inputs: Sequence[Mapping[str, Any]] = (),
    outputs: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write ``folder/model-settings.json`` (``folder`` created) for the MLServer runtime
    ``implementation``; ``name`` left out for a ``model publish`` source (publish names the model).
    Returns the file."""
    folder.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {}
    if name is not None:
        doc["name"] = name
    doc["implementation"] = implementation
    if inputs:
        doc["inputs"] = [dict(i) for i in inputs]
    if outputs:
        doc["outputs"] = [dict(o) for o in outputs]
    path = folder / "model-settings.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path
