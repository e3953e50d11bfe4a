"""The render cache: each region's files by a key of everything they depend on, in ``.git/``."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..repo import atomic_write
from ..spec import FleetConfig, RegionSpec

RENDER_CACHE = "kubevc-gen/render-cache.json"  # in the fleet repo's .git folder: never committed
RENDER_CACHE_ENV = "KUBEVC_RENDER_CACHE"  # "0" turns the cache off


@functools.cache
def code_digest() -> str:
    """Hash of everything in the generator that can change a region's files (code, profiles)."""
    digest = hashlib.sha256(sys.version.encode())
    for dist in ("kubevc", "ruamel.yaml", "pydantic"):  # the dumper's and the models' versions too
        with contextlib.suppress(PackageNotFoundError):  # a plain checkout: the files alone
            digest.update(f"{dist}=={version(dist)}\0".encode())
    base = Path(__file__).resolve().parent.parent  # the whole kubevc.generator package
    for path in sorted(base.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def region_key(region: RegionSpec, cfg: FleetConfig, labels: Mapping[str, bytes]) -> str | None:
    """Cache key of a region's files: every input they depend on, or None (render, do not cache).

    ``labels`` holds the model label files read for the render; a missing one gives None, so the
    region is rendered and the missing file reported.
    """
    digests: dict[str, str] = {}
    for m in region.models:
        if m.labels_file:
            data = labels.get(m.labels_file)
            if data is None:
                return None  # the render reports it
            digests[m.labels_file] = hashlib.sha256(data).hexdigest()
    key = {
        "code": code_digest(),
        "region": region.model_dump(mode="json", by_alias=True),
        "config": cfg.model_dump(mode="json", by_alias=True),
        "root": True,
        "labels": digests,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


class RenderCache:
    """Each region's rendered files by :func:`region_key`, kept in the fleet's git folder.

    ``region add`` on a fleet of 100 regions renders one region; the other 99 come from here
    (their specs, the fleet config, their label files and the generator itself are unchanged).
    Only the entries the last render used are kept. :meth:`load` and :meth:`save` touch the disk;
    :meth:`region_files` only looks up and records, so rendering stays a function of its inputs.
    """

    def __init__(self, path: Path | None = None, old: dict[str, dict[str, str]] | None = None) -> None:
        self.path = path
        self.old: dict[str, dict[str, str]] = old or {}
        self.new: dict[str, dict[str, str]] = {}

    @classmethod
    def load(cls, root: Path) -> RenderCache:
        """The cache of the fleet repo at ``root`` (off when ``KUBEVC_RENDER_CACHE=0`` or no .git/)."""
        if os.environ.get(RENDER_CACHE_ENV, "1") == "0" or not (root / ".git").is_dir():
            return cls(None)
        path = root / ".git" / RENDER_CACHE
        old: dict[str, dict[str, str]] = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = None
            if isinstance(data, dict) and data.get("code") == code_digest():
                entries = data.get("regions")
                if isinstance(entries, dict):
                    old = {
                        k: v
                        for k, v in entries.items()
                        if isinstance(v, dict) and all(isinstance(t, str) for t in v.values())
                    }
        return cls(path, old)

    def region_files(self, key: str | None, render: Callable[[], dict[str, bytes]]) -> dict[str, bytes]:
        """The files cached under ``key``, else ``render()``'s (recorded under ``key``)."""
        if self.path is None:
            key = None
        if key is not None and key in self.old:
            self.new[key] = self.old[key]
            return {rel: text.encode() for rel, text in self.old[key].items()}
        files = render()
        if key is not None:
            self.new[key] = {rel: content.decode() for rel, content in files.items()}
        return files

    def save(self) -> None:
        if self.path is None or self.new == self.old:
            return
        data = {"code": code_digest(), "regions": self.new}
        with contextlib.suppress(OSError):  # a read-only .git: render still works, only slower next time
            atomic_write(self.path, json.dumps(data, sort_keys=True).encode())
