"""Region files already parsed: their plain data by a hash of their text, in the fleet's ``.git/``.

Every command that loads the whole fleet (``region add`` renders with every region; ``validate``
checks every spec) parsed each ``region.yaml`` with the bounded check and the round-trip parser,
the slowest part of a command on a fleet of hundreds of regions. A file's plain data depends only
on its text and on the parsing code, so it is kept under a hash of both; the spec is still built
by ``RegionSpec.model_validate`` from that data every time, exactly as after a parse. Only files
that parsed cleanly are kept; a missing, truncated or altered entry is a miss (parse again).

The cache stays bounded (:func:`prune`, run at most once per process, after it wrote an entry): an
entry's modification time is when it was last used (a hit refreshes it at most once per
:data:`REFRESH_SECONDS`); entries unused for :data:`UNUSED_SECONDS` go, and beyond
:func:`entry_limit` entries or :data:`MAX_CACHE_BYTES` the least recently used go too (down to
three quarters of the limit, so that a full cache is not pruned again at every write).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PARSE_CACHE = "kubevc-gen/region-parse-cache"  # a folder in the fleet repo's .git: never committed
PARSE_CACHE_ENV = "KUBEVC_PARSE_CACHE"  # "0" turns it off
REFRESH_SECONDS = 3600  # a hit marks the entry used when it was last marked longer ago than this
UNUSED_SECONDS = 30 * 24 * 3600  # entries nobody used for this long are removed
MIN_ENTRIES = 1024  # entries kept at least (a fleet keeps 4 per region: edits, branches, reverts)
ENTRIES_PER_REGION = 4
MAX_CACHE_BYTES = 64 << 20

_pruned: set[Path] = set()  # cache folders pruned by this process


@functools.cache
def _parser_digest() -> str:
    """The parsing code: ruamel.yaml's version and kubevc's YAML modules."""
    digest = hashlib.sha256()
    with contextlib.suppress(PackageNotFoundError):
        digest.update(version("ruamel.yaml").encode())
    here = Path(__file__).resolve().parent
    for name in ("_bounded.py", "_yamlio.py", "_fleet.py", "_parse_cache.py"):
        with contextlib.suppress(OSError):
            digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    return digest.hexdigest()


def _is_plain(value: Any) -> bool:
    """JSON gives back exactly this value (no dates, no non-string keys, no NaN)."""
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def cached_plain(root: Path, text: str, parse: Callable[[], Any]) -> Any:
    """The plain data of ``text`` from the cache of the fleet at ``root``, else ``parse()``'s
    (which raises on a bad file; nothing is cached then)."""
    git = root / ".git"
    if os.environ.get(PARSE_CACHE_ENV, "1") == "0" or not git.is_dir():
        return parse()
    key = hashlib.sha256((_parser_digest() + "\0" + text).encode()).hexdigest()
    path = git / PARSE_CACHE / f"{key}.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        entry = json.loads(path.read_bytes())
        if entry["key"] == key and entry["sha256"] == _digest(key, entry["plain"]):
            _mark_used(path)
            return entry["plain"]
    plain = parse()
    if _is_plain(plain):
        envelope = json.dumps({"key": key, "sha256": _digest(key, plain), "plain": plain}).encode()
        with contextlib.suppress(OSError):  # a read-only .git: slower next time, nothing else
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(envelope)
                os.replace(tmp, path)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        if path.parent not in _pruned:
            _pruned.add(path.parent)
            prune(path.parent, entry_limit(root))
    return plain


def _mark_used(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.stat().st_mtime < time.time() - REFRESH_SECONDS:
            os.utime(path)


def entry_limit(root: Path) -> int:
    """How many entries the cache of the fleet at ``root`` keeps: :data:`ENTRIES_PER_REGION` per
    region folder, at least :data:`MIN_ENTRIES`."""
    try:
        regions = sum(1 for _ in os.scandir(root / "regions"))
    except OSError:
        regions = 0
    return max(MIN_ENTRIES, ENTRIES_PER_REGION * regions)


def prune(folder: Path, max_entries: int, max_bytes: int = MAX_CACHE_BYTES) -> int:
    """Remove the entries unused for :data:`UNUSED_SECONDS`, then the least recently used ones
    while there are more than ``max_entries`` or ``max_bytes``; return how many went."""
    entries: list[tuple[float, int, str]] = []  # (last used, size, path)
    try:
        with os.scandir(folder) as listing:
            for item in listing:
                with contextlib.suppress(OSError):
                    st = item.stat()
                    if item.name.endswith(".json"):
                        entries.append((st.st_mtime, st.st_size, item.path))
                    elif item.name.endswith(".tmp") and st.st_mtime < time.time() - REFRESH_SECONDS:
                        os.unlink(item.path)  # left by a writer that was killed
    except OSError:
        return 0
    entries.sort(reverse=True)  # most recently used first
    cutoff = time.time() - UNUSED_SECONDS
    keep = [e for e in entries if e[0] >= cutoff]
    if len(keep) > max_entries or sum(e[1] for e in keep) > max_bytes:
        count, size = 0, 0
        kept: list[tuple[float, int, str]] = []
        for entry in keep:
            if count + 1 > max_entries * 3 // 4 or size + entry[1] > max_bytes * 3 // 4:
                break
            kept.append(entry)
            count, size = count + 1, size + entry[1]
        keep = kept
    kept_paths = {entry_path for _used, _size, entry_path in keep}
    gone = 0
    for _used, _size, entry_path in entries:
        if entry_path not in kept_paths:
            with contextlib.suppress(OSError):
                os.unlink(entry_path)
                gone += 1
    return gone


def _digest(key: str, plain: Any) -> str:
    return hashlib.sha256((key + json.dumps(plain, sort_keys=True)).encode()).hexdigest()
