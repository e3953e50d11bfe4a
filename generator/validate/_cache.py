"""validate's result cache: each region's findings by a key of everything they depend on, in ``.git/``.

Like the render cache (``render/_cache.py``) it lives in the fleet repo's git folder, so it is
never committed, and a key names every input of a region's results:

* the tools: kubevc's own code, the versions of the libraries that check (kubernetes-validate,
  jsonschema, the Helm SDK, PyYAML), the kubectl binary, the checkov install, the checkov skip
  list and the Kubernetes schema version;
* the tree: every file the region owns (``clusters/<r>``, ``apps/<r>``, ``regions/<r>``,
  ``infrastructure/agents/<r>``, ``infrastructure/regions/<r>``; the hub owns ``hub/`` and
  ``clusters/hub``), every file no region owns (charts, ``apps/base``, the shared
  infrastructure), and the files of any other region its own files point into (a relative path
  such as ``../other/...`` or ``./apps/other``), so a hand-made cross-region reference still
  invalidates.

Findings are cached as well as successes. Each entry is one file per region and mode
(``<region>.checkov.json`` / ``<region>.plain.json``), written atomically and carrying a digest
of its own payload: a truncated, corrupted or foreign entry is a miss, never a result.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePosixPath
from typing import Any

from ..repo import atomic_write
from ..spec import HUB_NAME
from ._checkov import CHECKOV_SKIPS
from ._report import Finding
from ._schema import KUBE_VERSION

VALIDATE_CACHE = "kubevc-gen/validate-cache"  # a folder in the fleet repo's .git: never committed
VALIDATE_CACHE_ENV = "KUBEVC_VALIDATE_CACHE"  # "0" turns the cache off (like --no-cache)
ENTRY_FORMAT = 1
CHECKED_LIBRARIES = (
    "kubevc",
    "PyYAML",
    "kubernetes-validate",
    "jsonschema",
    "referencing",
    "helm-python-sdk",
)
# path-like tokens that may lead out of a region's folders into another's
_PATH_TOKEN = re.compile(r"[A-Za-z0-9_.\-/]*(?:\.\./|clusters/|apps/|agents/|regions/)[A-Za-z0-9_.\-/]*")


@dataclass
class RegionResult:
    """What validating one region found: the walk's findings, counts and notes, then checkov's."""

    findings: list[Finding] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    checkov_findings: list[Finding] = field(default_factory=list)
    checkov_tally: dict[str, int] | None = None  # passed, failed, resource_count (None: no checkov)

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": [_finding_json(f) for f in self.findings],
            "checked": dict(sorted(self.checked.items())),
            "notes": list(self.notes),
            "checkovFindings": [_finding_json(f) for f in self.checkov_findings],
            "checkovTally": self.checkov_tally,
        }

    @classmethod
    def from_json(cls, data: Any) -> RegionResult:
        """The result in ``data``; raises ValueError/TypeError/KeyError on any other shape."""
        if not isinstance(data, dict):
            raise TypeError("not a mapping")
        checked = data["checked"]
        notes = data["notes"]
        tally = data["checkovTally"]
        if not isinstance(checked, dict) or not all(
            isinstance(k, str) and type(v) is int for k, v in checked.items()
        ):
            raise TypeError("checked")
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise TypeError("notes")
        if tally is not None and (
            not isinstance(tally, dict) or not all(type(v) is int for v in tally.values())
        ):
            raise TypeError("checkovTally")
        return cls(
            findings=[_finding_from(f) for f in data["findings"]],
            checked=dict(checked),
            notes=list(notes),
            checkov_findings=[_finding_from(f) for f in data["checkovFindings"]],
            checkov_tally=dict(tally) if tally is not None else None,
        )


def _finding_json(f: Finding) -> list[str]:
    return [f.region, f.check, f.file, f.obj, f.message]


def _finding_from(data: Any) -> Finding:
    if not isinstance(data, list) or len(data) != 5 or not all(isinstance(x, str) for x in data):
        raise TypeError("finding")
    return Finding(*data)


@functools.cache
def _code_digest() -> str:
    """Hash of the generator package (validate, the Flux models, the repo reader) and the libraries."""
    digest = hashlib.sha256(sys.version.encode())
    for dist in CHECKED_LIBRARIES:
        with contextlib.suppress(PackageNotFoundError):  # a plain checkout: the files alone
            digest.update(f"{dist}=={version(dist)}\0".encode())
    base = Path(__file__).resolve().parent.parent  # the whole kubevc.generator package
    for path in sorted(base.rglob("*.py")):
        if "__pycache__" not in path.parts:
            digest.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _binary_identity(path: str | None) -> str:
    """Path, size and modification time of an executable (a reinstall changes them)."""
    if not path:
        return "-"
    resolved = shutil.which(path) or path
    try:
        st = os.stat(resolved)
    except OSError:
        return f"{resolved}:missing"
    return f"{os.path.realpath(resolved)}:{st.st_size}:{st.st_mtime_ns}"


def _checkov_identity(exe: str) -> str:
    """The checkov script and the checkov version installed beside it (its venv's dist-info)."""
    venv = Path(os.path.realpath(shutil.which(exe) or exe)).parent.parent
    dists = sorted(os.path.basename(p) for p in glob.glob(str(venv / "lib/python*/site-packages/checkov-*")))
    return f"{_binary_identity(exe)}|{','.join(dists)}"


def tools_digest(kubectl: str, checkov: str | None) -> str:
    """Key part for everything but the tree: code, libraries, kubectl, checkov and its policy."""
    parts = {
        "format": ENTRY_FORMAT,
        "code": _code_digest(),
        "kube": KUBE_VERSION,
        "kubectl": _binary_identity(kubectl),
        "checkov": _checkov_identity(checkov) if checkov else None,
        "skips": sorted(CHECKOV_SKIPS) if checkov else None,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def owner_of(rel: str, owners: frozenset[str]) -> str | None:
    """The region (or hub) whose folders hold ``rel`` (a repo-relative POSIX path), or None (shared)."""
    parts = PurePosixPath(rel).parts
    if len(parts) > 2 and parts[0] in ("clusters", "apps", "regions") and parts[1] in owners:
        return parts[1]
    if (
        len(parts) > 3
        and parts[0] == "infrastructure"
        and parts[1] in ("agents", "regions")
        and parts[2] in owners
    ):
        return parts[2]
    if len(parts) > 1 and parts[0] == "hub" and HUB_NAME in owners:
        return HUB_NAME
    return None


def _relevant(rel: str) -> bool:
    """Files a kustomize build, a Helm render or a check can read: all but git's and prose."""
    return not (rel.endswith(".md") and not rel.startswith("charts/"))


@dataclass
class TreeDigest:
    """Digests of the fleet tree, split by owner: what :func:`region_keys` combines."""

    shared: str
    own: dict[str, str]
    references: dict[str, set[str]]


def digest_tree(root: Path, owners: Iterable[str]) -> TreeDigest:
    """Read every file of the tree once: a digest of the shared files, one per owner, and which
    other owners each owner's files point into."""
    owner_set = frozenset(owners)
    shared = hashlib.sha256()
    own: dict[str, list[tuple[str, str]]] = {}
    references: dict[str, set[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not (dirpath == str(root) and d in (".git", ".kubevc")))
        base = Path(dirpath)
        for fname in sorted(filenames):
            path = base / fname
            rel = path.relative_to(root).as_posix()
            if not _relevant(rel):
                continue
            try:
                data = path.read_bytes()
            except OSError:
                data = b"\0unreadable"
            file_digest = hashlib.sha256(data).hexdigest()
            owner = owner_of(rel, owner_set)
            if owner is None:
                shared.update(f"{rel}\0{file_digest}\0".encode())
                continue
            own.setdefault(owner, []).append((rel, file_digest))
            if b"/" in data:
                for other in _pointed_at(rel, data, owner_set):
                    if other != owner:
                        references.setdefault(owner, set()).add(other)
    return TreeDigest(
        shared=shared.hexdigest(),
        own={
            owner: hashlib.sha256("".join(f"{r}\0{d}\0" for r, d in files).encode()).hexdigest()
            for owner, files in own.items()
        },
        references=references,
    )


def _pointed_at(rel: str, data: bytes, owners: frozenset[str]) -> set[str]:
    """Owners whose folders a path-like token of the file at ``rel`` leads into (relative to the
    file's folder or to the repo root)."""
    found: set[str] = set()
    text = data.decode("utf-8", errors="replace")
    folder = PurePosixPath(rel).parent
    for token in set(_PATH_TOKEN.findall(text)):
        for candidate in (os.path.normpath(str(folder / token)), os.path.normpath(token.lstrip("./"))):
            if not candidate.startswith(".."):
                owner = owner_of(candidate + "/x", owners)  # a folder or a file: both count
                if owner is not None:
                    found.add(owner)
    return found


def region_keys(tree: TreeDigest, names: Sequence[str], tools: str) -> dict[str, str]:
    """The cache key of each of ``names``: the tools, the shared files, its own files and those of
    every owner its files point into (followed transitively)."""
    keys: dict[str, str] = {}
    for name in names:
        closure = {name}
        todo = [name]
        while todo:
            for other in tree.references.get(todo.pop(), set()):
                if other not in closure:
                    closure.add(other)
                    todo.append(other)
        parts = {
            "tools": tools,
            "shared": tree.shared,
            "own": {o: tree.own.get(o, "") for o in sorted(closure)},
            "region": name,
        }
        keys[name] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return keys


class ValidateCache:
    """One entry file per region and mode in ``.git/kubevc-gen/validate-cache/``.

    :meth:`get` returns a result only when the entry is whole, its digest matches its payload and
    its key is the key asked for; :meth:`put` writes through a temporary file and a rename, so a
    validate killed mid-write leaves the old entry or none.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    @classmethod
    def open(cls, root: Path, enabled: bool = True) -> ValidateCache:
        """The cache of the fleet repo at ``root`` (off when disabled, ``KUBEVC_VALIDATE_CACHE=0``
        or without a ``.git`` folder)."""
        if not enabled or os.environ.get(VALIDATE_CACHE_ENV, "1") == "0" or not (root / ".git").is_dir():
            return cls(None)
        return cls(root / ".git" / VALIDATE_CACHE)

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    def _path(self, region: str, mode: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{region}.{mode}.json"

    def get(self, region: str, mode: str, key: str) -> RegionResult | None:
        if self.folder is None:
            return None
        try:
            envelope = json.loads(self._path(region, mode).read_bytes())
            payload = envelope["result"]
            if envelope["key"] != key or envelope["sha256"] != _payload_digest(key, payload):
                return None
            return RegionResult.from_json(payload)
        except (OSError, ValueError, TypeError, KeyError):
            return None  # missing, truncated, corrupted or from another format: validate again

    def put(self, region: str, mode: str, key: str, result: RegionResult) -> None:
        if self.folder is None:
            return
        payload = result.to_json()
        envelope = {"key": key, "sha256": _payload_digest(key, payload), "result": payload}
        with contextlib.suppress(OSError):  # a read-only .git: validate still works, only slower next time
            atomic_write(self._path(region, mode), json.dumps(envelope, sort_keys=True).encode())

    def prune(self, keep: Iterable[str]) -> None:
        """Delete the entries of regions that no longer exist (and leftovers of killed writes)."""
        if self.folder is None or not self.folder.is_dir():
            return
        wanted = set(keep)
        for path in self.folder.iterdir():
            region = path.name.split(".", 1)[0]
            if path.name.startswith(".") or region not in wanted:
                with contextlib.suppress(OSError):
                    path.unlink()


def _payload_digest(key: str, payload: Mapping[str, Any]) -> str:
    return hashlib.sha256((key + json.dumps(payload, sort_keys=True)).encode()).hexdigest()
