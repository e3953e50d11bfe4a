"""Region files already parsed: their plain data by a hash of their text, in the fleet's ``.git/``.

Every command that loads the whole fleet (``region add`` renders with every region; ``validate``
checks every spec) parsed each ``region.yaml`` with the bounded check and the round-trip parser,
the slowest part of a command on a fleet of hundreds of regions. A file's plain data depends only
on its text and on the parsing code, so it is kept under a hash of both; the spec is still built
by ``RegionSpec.model_validate`` from that data every time, exactly as after a parse. Only files
that parsed cleanly are kept; a missing, truncated or altered entry is a miss (parse again).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PARSE_CACHE = "kubevc-gen/region-parse-cache"  # a folder in the fleet repo's .git: never committed
PARSE_CACHE_ENV = "KUBEVC_PARSE_CACHE"  # "0" turns it off


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
    return plain


def _digest(key: str, plain: Any) -> str:
    return hashlib.sha256((key + json.dumps(plain, sort_keys=True)).encode()).hexdigest()
