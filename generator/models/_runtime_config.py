"""What Triton and MLServer load once ``promote``/``rollback`` changed a model's labels: the
runtime's file in the store, rewritten from the model spec (region.yaml) the same way publish
writes it (a temporary name beside it, then one rename; nothing is written when a check fails)::

    triton    <model>/config.pbtxt                 its version_policy line becomes the spec's
                                                   (specific: the stable and canary versions);
                                                   the rest stays as publish wrote it
    mlserver  <model>/model-settings.json          serves the stable version (no stable label:
                                                   the newest published one, as publish does)
              <model>/canary/model-settings.json   serves the canary version while there is one
                                                   (MLServer loads every model-settings.json
                                                   under its root: one per version; the gateway
                                                   picks the version of each request)

Triton (explicit model control) and MLServer read these files when they start: the serving
chart restarts their pods when the region's model list changes (a checksum of it), so a
promote's commit is what makes them load the rewritten files.
"""

from __future__ import annotations

import difflib
import json
import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError, StoreError
from ..spec import ModelSpec
from ._layouts import (
    LAYOUT_FILES,
    MLSERVER_SETTINGS,
    TRITON_CONFIG,
    mlserver_settings,
    served_version,
    version_policy_text,
    write_store_file,
)
from ._store import Store, versions

__all__ = [
    "MLSERVER_CANARY_FOLDER",
    "StoreFileChange",
    "restore_runtime_config",
    "runtime_config_changes",
    "write_runtime_config",
]

# The folder of the canary version's model-settings.json inside an MLServer model folder.
MLSERVER_CANARY_FOLDER = "canary"
_POLICY_LINE = re.compile(r"^version_policy:.*$", re.MULTILINE)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class StoreFileChange:
    """One file of a model folder: what it holds now and what it will hold (None: no file)."""

    path: str  # absolute on the store host
    old: str | None
    new: str | None

    def diff(self) -> str:
        """A unified diff of the change (what ``--dry-run`` prints)."""
        lines = difflib.unified_diff(
            (self.old or "").splitlines(keepends=True),
            (self.new or "").splitlines(keepends=True),
            fromfile=self.path if self.old is not None else "/dev/null",
            tofile=self.path if self.new is not None else "/dev/null",
        )
        return "".join(lines)


def _triton_config(store: Store, model_dir: str, model: ModelSpec) -> list[StoreFileChange]:
    path = posixpath.join(model_dir, TRITON_CONFIG)
    old = store.read_text(path)
    if old is None:
        raise StoreError(
            f"{path} is missing: publish a version of {model.name} first (kubevc-gen model publish)"
        )
    policy = version_policy_text(model)
    lines = _POLICY_LINE.findall(old)
    if len(lines) == 1 and lines[0].count("{") == lines[0].count("}"):
        new = _POLICY_LINE.sub(policy, old)
    elif not lines and "version_policy" not in old:
        new = old.rstrip("\n") + "\n" + policy + "\n"
    else:
        raise StoreError(
            f"{path}: its version_policy is not the one line kubevc-gen model publish writes; "
            "publish the model again or fix the file by hand"
        )
    return [StoreFileChange(path, old, new)]


def _settings(store: Store, path: str) -> tuple[str | None, dict[str, Any] | None]:
    text = store.read_text(path)
    if text is None:
        return None, None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreError(f"{path} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise StoreError(f"{path} is not a JSON object")
    return text, doc


def _mlserver_settings(store: Store, model_dir: str, folder: str, model: ModelSpec) -> list[StoreFileChange]:
    top = posixpath.join(model_dir, MLSERVER_SETTINGS)
    old, settings = _settings(store, top)
    if old is None or settings is None:
        raise StoreError(
            f"{top} is missing: publish a version of {model.name} first (kubevc-gen model publish)"
        )
    published, _stale = versions(store, folder)
    labels = model.version_labels
    for label, version in sorted(labels.items()):
        if version not in published:
            raise StoreError(
                f"version {version} of {model.name} ({label}) is not published in {model_dir}; "
                f"MLServer could not load it (published: {', '.join(map(str, published)) or 'none'})"
            )
    stable = served_version(model, published)
    changes = [StoreFileChange(top, old, _json(mlserver_settings(model, settings, stable)))]
    canary_path = posixpath.join(model_dir, MLSERVER_CANARY_FOLDER, MLSERVER_SETTINGS)
    canary_old, _doc = _settings(store, canary_path)
    canary = labels.get("canary")
    canary_new = None
    if canary is not None and canary != stable:
        canary_new = _json(mlserver_settings(model, settings, canary, uri=f"../{canary}"))
    changes.append(StoreFileChange(canary_path, canary_old, canary_new))
    return changes


def _json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"


def runtime_config_changes(
    store: Store, models: Sequence[tuple[str, ModelSpec]], folder: str
) -> list[StoreFileChange]:
    """The files to rewrite so the runtime loads what the specs of ``models`` (region, model spec;
    one model in one store folder) promote. Unchanged files are left out; regions that share the
    folder but would serve different versions are a :class:`SpecError` (nothing is written)."""
    if not models:
        return []
    model_dir = posixpath.join(store.root, folder)
    wanted: dict[str, tuple[str, list[StoreFileChange]]] = {}
    for region, model in models:
        runtime = model.serving_runtime
        if runtime not in LAYOUT_FILES:
            continue
        if runtime == "triton":
            changes = _triton_config(store, model_dir, model)
        else:
            changes = _mlserver_settings(store, model_dir, folder, model)
        key = repr([(c.path, c.new) for c in changes])
        wanted.setdefault(key, (region, changes))
    if len(wanted) > 1:
        regions = ", ".join(region for _key, (region, _c) in wanted.items())
        raise SpecError(
            f"regions {regions} share the store folder {model_dir} but would load different versions "
            f"of {models[0][1].name}: pass --region to change one region (or give each its own basePath)"
        )
    if not wanted:
        return []
    ((_region, changes),) = wanted.values()
    return [c for c in changes if c.old != c.new]


def _write(store: Store, change: StoreFileChange, content: str | None) -> None:
    folder, name = posixpath.split(change.path)
    if content is not None:
        store.makedirs(folder)
        write_store_file(store, folder, name, content)
    elif posixpath.basename(folder) == MLSERVER_CANARY_FOLDER:
        store.rmtree(folder)  # the canary folder holds nothing else


def write_runtime_config(store: Store, changes: Sequence[StoreFileChange], progress: Progress) -> None:
    """Write ``changes`` (each atomically), after checking no file changed since it was read."""
    for change in changes:
        if store.read_text(change.path) != change.old:
            raise StoreError(f"{change.path} changed meanwhile (a publish?); nothing rewritten, try again")
    for change in changes:
        progress(f"{'write' if change.new is not None else 'remove'} {change.path}")
        _write(store, change, change.new)


def restore_runtime_config(store: Store, changes: Sequence[StoreFileChange], progress: Progress) -> None:
    """Put the files of ``changes`` back as they were (when the commit after the rewrite failed)."""
    for change in changes:
        progress(f"restore {change.path}")
        _write(store, change, change.old)
