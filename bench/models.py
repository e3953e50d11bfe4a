"""The four models of the paper's Table 5: real input/output shapes and real inputs.

Image inputs are real photos from scikit-image's bundled samples (no download), resized to the
model's input size; never random noise, which compresses far worse than photos and would distort
every JPEG ratio.
"""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
PHOTOS = ("astronaut", "coffee", "chelsea")


@dataclass(frozen=True)
class ImageModel:
    name: str
    size: int  # square input, NHWC
    output_shape: tuple[int, ...]
    kind: Literal["classifier", "detector"]
    photo: str
    normalise: Literal["unit", "symmetric"]  # x/255 | (x-127.5)/127.5 (as the Keras apps expect)
    input_name: str
    output_name: str
    backend_name: str

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.size, self.size, 3)


@dataclass(frozen=True)
class TextModel:
    name: str
    tokens: int
    input_names: tuple[str, ...]
    backend_name: str = "bert"


IMAGE_MODELS: dict[str, ImageModel] = {
    "MobileNetV1": ImageModel(
        "MobileNetV1", 224, (1, 1001), "classifier", "chelsea", "symmetric", "input", "output0", "mobilenet"
    ),
    "InceptionV3": ImageModel(
        "InceptionV3", 299, (1, 1001), "classifier", "coffee", "symmetric", "input", "output0", "inceptionv3"
    ),
    "YOLOv5": ImageModel(
        "YOLOv5", 640, (1, 25200, 85), "detector", "astronaut", "unit", "images", "output0", "yolov5"
    ),
}
BERT = TextModel("BERT", 500, ("input_ids", "attention_mask", "token_type_ids"))


@cache
def photo(name: str) -> Array:
    """A bundled scikit-image sample photo as HxWx3 uint8."""
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


@cache
def photo_at(name: str, size: int) -> Array:
    """The photo resized (bicubic, aspect ignored, as a client preparing the model input would)."""
    from PIL import Image

    im = Image.fromarray(photo(name)).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(im, dtype=np.uint8)


def jpeg(img: Array, quality: int = 90) -> bytes:
    import simplejpeg

    data: bytes = simplejpeg.encode_jpeg(np.ascontiguousarray(img), quality=quality, colorspace="RGB")
    return data


def png(img: Array) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def uint8_input(model: ImageModel, photo_name: str | None = None) -> Array:
    return photo_at(photo_name or model.photo, model.size)[None, ...]


def float_input(model: ImageModel, photo_name: str | None = None) -> Array:
    x = uint8_input(model, photo_name).astype(np.float32)
    if model.normalise == "unit":
        return x / np.float32(255.0)
    return (x - np.float32(127.5)) / np.float32(127.5)


# ---------------------------------------------------------------------------------------------
# text (BERT)


def english_text(min_words: int = 420) -> str:
    """Real English prose available offline on Debian (the Apache-2.0 licence text), or a
    docstring-rich stdlib module's text elsewhere; enough words for about 500 WordPiece tokens."""
    for candidate in (Path("/usr/share/common-licenses/Apache-2.0"),):
        try:
            words = candidate.read_text(encoding="utf-8").split()
        except OSError:
            continue
        if len(words) >= min_words:
            return " ".join(words[200 : 200 + min_words])
    import json as _json

    words = (_json.__doc__ or "").split() * 50
    return " ".join(words[:min_words])


_WORD = re.compile(r"\w+|[^\w\s]")


def token_ids(text: str, length: int, vocab_size: int = 30522) -> Array:
    """Token ids shaped like BERT's: [CLS] ... [SEP] then padding, ids spread over the vocab.

    When the gateway's WordPiece tokenizer is importable its ids are used instead (see
    ``bench.gw``); this fallback maps each word deterministically into the word-piece id range.
    """
    ids = [101]
    for w in _WORD.findall(text.lower()):
        ids.append(1000 + zlib.crc32(w.encode()) % (vocab_size - 1000))
        if len(ids) >= length - 1:
            break
    ids.append(102)
    out = np.zeros((1, length), dtype=np.int32)
    out[0, : len(ids)] = ids
    return out


def bert_inputs(length: int = BERT.tokens) -> dict[str, Array]:
    ids = token_ids(english_text(), length)
    mask = (ids != 0).astype(np.int32)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


# ---------------------------------------------------------------------------------------------
# outputs: the gateway's test backend models (real shapes, input-dependent values)


@cache
def _test_models() -> dict[str, Any]:
    from kubevc.gateway.testing import default_models

    found: dict[str, Any] = default_models()
    return found


def model_output(model: ImageModel | TextModel, inputs: dict[str, Array]) -> dict[str, Array]:
    """Run the gateway's test-backend numpy model of the same shape on ``inputs``."""
    return backend_output(model.backend_name, inputs)


# YOLOv5 exported with NMS in the graph (TF detection-export outputs), the test backend's name
YOLO_NMS = "yolov5-nms"
YOLO_NMS_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def backend_output(backend_name: str, inputs: dict[str, Array]) -> dict[str, Array]:
    """Run the test-backend model ``backend_name`` (e.g. ``yolov5-nms``) on ``inputs``."""
    result: dict[str, Array] = _test_models()[backend_name].fn(inputs)
    return result
