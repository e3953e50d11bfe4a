"""Limits on the YAML an operator (or a pull request) puts into a fleet repo.

A region, hub or fleet file is a few kilobytes of plain mappings; anything far outside that is a
mistake or an attack (an alias bomb of a few hundred bytes expands to gigabytes; a 200,000-node
file or a 10,000-deep nesting stalls CI or overflows the stack). Before ruamel builds any object,
:func:`check_yaml_text` walks the parser's event stream (flat: no recursion, no expansion) and
stops at the first problem with one line naming the file, line and column:

* NUL and other control characters, text that is not UTF-8 (:func:`read_yaml_file`);
* more than :data:`MAX_BYTES` bytes;
* aliases and anchors (``&a`` / ``*a``): kubevc's own files never need them;
* nesting deeper than :data:`MAX_DEPTH`, more than :data:`MAX_NODES` nodes.
"""

from __future__ import annotations

import re
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, NodeEvent

from ..errors import YamlError

MAX_BYTES = 1 << 20  # 1 MiB: a region file with hundreds of nodes and models is ~50 KiB
MAX_DEPTH = 64
MAX_NODES = 50_000

# C0 controls YAML forbids (tab, LF and CR are fine), DEL and the two non-characters.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def decode_yaml_bytes(data: bytes, filename: str) -> str:
    """``data`` as UTF-8 text within :data:`MAX_BYTES`, else a one-line :class:`YamlError`."""
    if len(data) > MAX_BYTES:
        raise YamlError(f"{filename}: {len(data)} bytes is more than the limit of {MAX_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlError(
            f"{filename}:{line}:{column}: not UTF-8 text (byte 0x{data[exc.start]:02x})"
        ) from None


def read_yaml_file(path: Path, filename: str) -> str:
    """Read a fleet YAML file as bounded UTF-8 text (the size is checked before reading it all)."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise YamlError(f"{filename}: {size} bytes is more than the limit of {MAX_BYTES} bytes")
        return decode_yaml_bytes(path.read_bytes(), filename)
    except OSError as exc:
        raise YamlError(f"{filename}: cannot read: {exc.strerror or exc}") from None


def check_yaml_text(text: str, filename: str) -> None:
    """Raise a one-line :class:`YamlError` (``file:line:col: ...``) when ``text`` breaks a limit."""
    if len(text) > MAX_BYTES:
        raise YamlError(f"{filename}: {len(text)} characters is more than the limit of {MAX_BYTES}")
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        line, column = _position(text, bad.start())
        char = bad.group()
        what = "a NUL byte" if char == "\0" else f"control character U+{ord(char):04X}"
        raise YamlError(f"{filename}:{line}:{column}: {what} is not allowed in YAML")
    depth = 0
    nodes = 0
    try:
        for event in YAML(typ="rt").parse(text):
            if isinstance(event, AliasEvent) or (isinstance(event, NodeEvent) and event.anchor):
                mark = event.start_mark
                kind = "alias *" if isinstance(event, AliasEvent) else "anchor &"
                raise YamlError(
                    f"{filename}:{mark.line + 1}:{mark.column + 1}: YAML anchors and aliases are not "
                    f"allowed ({kind}{event.anchor})"
                )
            if isinstance(event, NodeEvent):
                nodes += 1
                if nodes > MAX_NODES:
                    mark = event.start_mark
                    raise YamlError(
                        f"{filename}:{mark.line + 1}:{mark.column + 1}: more than {MAX_NODES} YAML nodes"
                    )
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    raise YamlError(
                        f"{filename}:{mark.line + 1}:{mark.column + 1}: nested deeper than {MAX_DEPTH} levels"
                    )
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except MarkedYAMLError:
        return  # a syntax error: the loader reports it with its line, as it always has
    except YAMLError as exc:
        raise YamlError(f"{filename}: invalid YAML: {str(exc).splitlines()[0]}") from None
