"""Model repository layouts per runtime, on the same store TF Serving reads.

Every runtime keeps numbered version folders under ``<store>/<model>/``, published atomically by
:func:`kubevc.generator.models.publish`; Triton and MLServer also need a file describing the model
next to them, written here from the model spec (replaced atomically: written beside it, renamed)::

    tfserving  <model>/<version>/saved_model.pb, variables/
    triton     <model>/config.pbtxt
               <model>/<version>/model.py | model.onnx | model.pt | model.savedmodel/
    mlserver   <model>/model-settings.json   (name, implementation, version, uri ./<version>)
               <model>/<version>/...          (the model's files)

A model folder belongs to the runtime whose file it holds (``config.pbtxt``: Triton,
``model-settings.json``: MLServer, version folders alone: TF Serving); publishing another
runtime's model into it is refused before anything is written.
"""

from __future__ import annotations

import json
import posixpath
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..spec import RUNTIMES, ModelSpec, TensorSpec
from ._store import INCOMING_PREFIX, PublishResult, Store, check_saved_model, publish, versions

TRITON_CONFIG = "config.pbtxt"
MLSERVER_SETTINGS = "model-settings.json"
# A generated file is written under this name first, then renamed over the real one.
STAGING_PREFIX = ".writing-"
# Which file marks a model folder as a runtime's (TF Serving has none: its version folders).
LAYOUT_FILES: dict[str, str] = {"triton": TRITON_CONFIG, "mlserver": MLSERVER_SETTINGS}
# Triton backends by the file the source folder holds: (config key, value, file in the version).
TRITON_BACKENDS: tuple[tuple[str, str, str], ...] = (
    ("backend", "python", "model.py"),
    ("platform", "onnxruntime_onnx", "model.onnx"),
    ("platform", "pytorch_libtorch", "model.pt"),
    ("platform", "tensorflow_savedmodel", "saved_model.pb"),
)
# Backends that cannot read their inputs/outputs from the model file: the spec must list them.
_NEEDS_TENSORS = {"python", "pytorch_libtorch"}
_TRITON_TYPES = {"BYTES": "TYPE_STRING"}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TritonSource:
    """What a source folder holds for Triton: its backend and where it lands in the version."""

    key: str  # "backend" or "platform"
    value: str
    subfolder: str  # "model.savedmodel" for a SavedModel, else ""


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise StoreError(f"unknown runtime {runtime!r} (runtimes: {', '.join(RUNTIMES)})")
    return runtime


def triton_source(src: Path, model: ModelSpec) -> TritonSource:
    """The Triton backend of ``src``; a :class:`StoreError` when it holds none (or the spec lacks
    the inputs/outputs that backend needs)."""
    if not src.is_dir():
        raise StoreError(f"{src} is not a folder (expected a Triton model version folder)")
    found = [(key, value, name) for key, value, name in TRITON_BACKENDS if (src / name).is_file()]
    if len(found) != 1:
        names = ", ".join(name for _k, _v, name in TRITON_BACKENDS)
        what = "none" if not found else " and ".join(name for _k, _v, name in found)
        raise StoreError(
            f"{src} does not match runtime triton: it needs exactly one of {names} (found {what})"
        )
    key, value, name = found[0]
    if value in _NEEDS_TENSORS and not (model.inputs and model.outputs):
        raise StoreError(
            f"model {model.name}: Triton's {value} backend needs inputs and outputs in the model spec "
            "(kubevc-gen model add ... --input NAME:DTYPE:DIMS --output NAME:DTYPE:DIMS)"
        )
    if name == "saved_model.pb":
        check_saved_model(src, model.signature)
        return TritonSource(key, value, "model.savedmodel")
    _no_links(src)
    return TritonSource(key, value, "")


def mlserver_source(src: Path) -> dict[str, Any]:
    """The settings the source folder's ``model-settings.json`` gives (at least ``implementation``)."""
    settings_file = src / MLSERVER_SETTINGS
    if not src.is_dir() or not settings_file.is_file():
        raise StoreError(
            f"{src} does not match runtime mlserver: it needs {MLSERVER_SETTINGS} naming the implementation"
        )
    try:
        settings = json.loads(settings_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{settings_file} is not JSON: {exc}") from None
    if not isinstance(settings, dict) or not isinstance(settings.get("implementation"), str):
        raise StoreError(
            f'{settings_file} does not name the implementation ("implementation": "module.Class")'
        )
    _no_links(src)
    return settings


def _no_links(src: Path) -> None:
    for path in src.rglob("*"):
        if path.is_symlink():
            raise StoreError(f"{path}: symbolic links are not published (copy the real file)")
        if path.name.startswith(INCOMING_PREFIX):
            raise StoreError(f"{path}: names starting with {INCOMING_PREFIX} are reserved")


def check_source(model: ModelSpec, src: Path) -> None:
    """Does ``src`` hold what the model's runtime serves? (before connecting to any store)"""
    runtime = check_runtime(model.serving_runtime)
    if runtime == "triton":
        triton_source(src, model)
    elif runtime == "mlserver":
        mlserver_source(src)
    else:
        check_saved_model(src, model.signature)


def layout_owner(store: Store, model_dir: str) -> str | None:
    """The runtime whose layout the model folder holds; None when it is empty or missing."""
    names = store.listdir(model_dir)
    if not names:
        return None
    for runtime, marker in LAYOUT_FILES.items():
        if marker in names:
            return runtime
    if any(n.isdigit() for n in names):
        return "tfserving"
    return None


def _owner_check(model: ModelSpec) -> Callable[[Store, str], None]:
    def check(store: Store, model_dir: str) -> None:
        owner = layout_owner(store, model_dir)
        if owner is not None and owner != model.serving_runtime:
            raise StoreError(
                f"{model_dir} holds a {owner} model; {model.name} runs {model.serving_runtime}: "
                "publish it to its own folder (basePath) or remove the other runtime's files first"
            )

    return check


# --------------------------------------------------------------------------- generated files


def _dims(tensor: TensorSpec) -> str:
    return ", ".join(str(d) for d in tensor.shape)


def _tensors(kind: str, tensors: list[TensorSpec] | None) -> list[str]:
    if not tensors:
        return []
    items = [
        f'  {{ name: "{t.name}" data_type: {_TRITON_TYPES.get(t.datatype, "TYPE_" + t.datatype)} '
        f"dims: [ {_dims(t)} ] }}"
        for t in tensors
    ]
    return [f"{kind} [", ",\n".join(items), "]"]


def version_policy_text(model: ModelSpec) -> str:
    """The model spec's version policy in Triton's words (what promote/rollback set in region.yaml)."""
    if model.version_policy == "specific":
        return (
            f"version_policy: {{ specific: {{ versions: [ {', '.join(str(v) for v in model.versions)} ] }} }}"
        )
    if model.version_policy == "all":
        return "version_policy: { all: {} }"
    return "version_policy: { latest: { num_versions: 1 } }"


def triton_config(model: ModelSpec, name: str, source: TritonSource) -> str:
    """``config.pbtxt`` of ``model`` (``name``: its repository folder, which Triton requires)."""
    lines = [
        "# Written by kubevc-gen model publish from the model spec (regions/*/region.yaml).",
        f'name: "{name}"',
        f'{source.key}: "{source.value}"',
        "max_batch_size: 0",
        version_policy_text(model),
        *_tensors("input", model.inputs),
        *_tensors("output", model.outputs),
    ]
    return "\n".join(lines) + "\n"


def mlserver_settings(
    model: ModelSpec, source: dict[str, Any], version: int, *, uri: str | None = None
) -> dict[str, Any]:
    """``model-settings.json`` of ``model``: the source's settings, served as ``version`` from
    ``uri`` (relative to the file; default ``./<version>``, the file beside the version folders)."""
    settings = {k: v for k, v in source.items() if k not in ("name", "inputs", "outputs")}
    parameters = dict(settings.get("parameters") or {})
    parameters.update({"version": str(version), "uri": uri or f"./{version}"})
    settings.update({"name": model.name, "parameters": parameters})
    for key, tensors in (("inputs", model.inputs), ("outputs", model.outputs)):
        if tensors:
            settings[key] = [t.model_dump(by_alias=True) for t in tensors]
        elif key in source:
            settings[key] = source[key]
    return settings


def served_version(model: ModelSpec, published: list[int]) -> int:
    """The version MLServer's ``model-settings.json`` serves: the stable label's, else the newest."""
    stable = model.version_labels.get("stable")
    return stable if stable is not None else max(published)


def write_store_file(store: Store, model_dir: str, name: str, text: str) -> None:
    """Write ``<model_dir>/<name>`` atomically: a temporary name beside it, then a rename."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / name
        local.write_text(text, encoding="utf-8")
        staged = posixpath.join(model_dir, f"{STAGING_PREFIX}{name}-{secrets.token_hex(4)}")
        store.upload(local, staged)
        store.replace(staged, posixpath.join(model_dir, name))


# --------------------------------------------------------------------------- publish


def _checked(_src: Path) -> None:
    """The source check :func:`publish` runs for a runtime whose source was checked already."""


def publish_model(
    store: Store,
    *,
    model: ModelSpec,
    folder: str,
    version: int,
    src: Path,
    progress: Progress = lambda _msg: None,
    dry_run: bool = False,
) -> PublishResult:
    """Publish ``src`` as version ``version`` of ``model`` in its runtime's layout (see above)."""
    runtime = check_runtime(model.serving_runtime)
    # what each runtime's source check found, and how its files land in the version folder
    source: TritonSource | None = None
    settings: dict[str, Any] = {}
    source_check: Callable[[Path], None] | None = None  # None: publish checks for a SavedModel
    subfolder = ""
    exclude: frozenset[str] = frozenset()
    if runtime == "triton":
        source = triton_source(src, model)
        source_check, subfolder = _checked, source.subfolder
    elif runtime == "mlserver":
        settings = mlserver_source(src)
        # MLServer would load a copy of the source's settings as a second model
        source_check, exclude = _checked, frozenset({MLSERVER_SETTINGS})
    result = publish(
        store,
        model=model.name,
        folder=folder,
        version=version,
        src=src,
        signature=model.signature,
        progress=progress,
        dry_run=dry_run,
        source_check=source_check,
        subfolder=subfolder,
        exclude=exclude,
        check_folder=_owner_check(model),
    )
    if source is not None:
        text = triton_config(model, posixpath.basename(folder), source)
        name = TRITON_CONFIG
    elif runtime == "mlserver":
        published, _stale = versions(store, folder)
        # MLServer serves one version per settings file: the stable label's (promote rewrites it),
        # else the newest published one
        served = served_version(model, [*published, version])
        text = json.dumps(mlserver_settings(model, settings, served), indent=2) + "\n"
        name = MLSERVER_SETTINGS
    else:
        return result  # TF Serving: the version folder is all
    model_dir = posixpath.dirname(result.path)
    if dry_run:
        progress(f"dry run: would write {posixpath.join(model_dir, name)}")
        return result
    progress(f"write {name}")
    write_store_file(store, model_dir, name, text)
    return result
