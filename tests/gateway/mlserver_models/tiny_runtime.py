"""A small MLServer custom runtime for the v2 backend tests (runs inside MLServer's own venv).

``TinyClassifier``: FP32/UINT8 images (N, 224, 224, 3) -> ``output0`` (N, 1001) softmax scores,
deterministic and dependent on the input; refuses other shapes (MLServer answers an error).
"""

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class TinyClassifier(MLModel):
    async def load(self) -> bool:
        self._weights = np.random.default_rng(3).normal(0, 4, size=(3, 1001)).astype(np.float32)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        if x.ndim != 4 or x.shape[1:] != (224, 224, 3):
            raise ValueError(f"expected shape [-1, 224, 224, 3], got {list(x.shape)}")
        feats = x.mean(axis=(1, 2)) / 255.0
        logits = feats @ self._weights
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("output0", probs.astype(np.float32))]
        )
