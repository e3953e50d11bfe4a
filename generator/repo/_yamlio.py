"""YAML input/output: ruamel round-trip for user-owned files, deterministic dumps for generated ones.

Two kinds of YAML live in a fleet repo:

* user-owned files (``regions/<r>/region.yaml``): loaded and saved with ruamel's round-trip mode,
  so comments and key order survive a rewrite; :func:`line_of` maps a key path to its line;
* generated files (everything ``kubevc-gen render`` writes): dumped from plain data with a fixed
  style, so the same input always gives byte-identical output.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from ..errors import YamlError
from ._bounded import check_yaml_text


def _rt() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def load_roundtrip(text: str, filename: str = "<string>") -> Any:
    """Parse ``text`` keeping comments and positions; errors name ``filename`` and the line.

    ``text`` is checked against the limits of :mod:`._bounded` first (no aliases, bounded size,
    depth and node count, no control characters).
    """
    check_yaml_text(text, filename)
    try:
        return _rt().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise YamlError(f"{filename}{line}: invalid YAML: {exc.problem or exc}") from exc
    except YAMLError as exc:  # a reader or emitter error without a position
        raise YamlError(f"{filename}: invalid YAML: {str(exc).splitlines()[0]}") from None


def dump_roundtrip(data: Any) -> str:
    """Serialise round-trip data (comments kept)."""
    buf = io.StringIO()
    _rt().dump(data, buf)
    return buf.getvalue()


def line_of(data: Any, path: Sequence[str | int]) -> int | None:
    """Return the 1-based line of the deepest existing element of ``path`` in round-trip ``data``."""
    line: int | None = None
    node = data
    for part in path:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def literal(text: str) -> LiteralScalarString:
    """Mark a multi-line string to be dumped in block style (``|``)."""
    result: LiteralScalarString = LiteralScalarString(text)
    return result


def to_plain(data: Any) -> Any:
    """Convert round-trip containers into plain dicts/lists (for pydantic)."""
    if isinstance(data, Mapping):
        return {str(k): to_plain(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [to_plain(v) for v in data]
    return data


def _generated_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    yaml.default_flow_style = False
    return yaml


def _prepare(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {str(k): _prepare(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_prepare(v) for v in data]
    if isinstance(data, str) and "\n" in data and not isinstance(data, LiteralScalarString):
        return LiteralScalarString(data)
    return data


def dump_generated(data: Any, header: str | None = None) -> str:
    """Dump plain data deterministically (insertion order kept, block style)."""
    buf = io.StringIO()
    if header:
        for line in header.splitlines():
            buf.write(f"# {line}\n".replace("# \n", "#\n"))
    _generated_yaml().dump(_prepare(data), buf)
    return buf.getvalue()


def dump_documents(docs: Sequence[Any], header: str | None = None) -> str:
    """Dump several documents separated by ``---``."""
    parts = [dump_generated(d) for d in docs]
    text = "---\n".join(parts)
    if header:
        text = "".join(f"# {line}\n" for line in header.splitlines()) + "---\n" + text
    return text


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
