"""``region set``: dotted ``KEY=VALUE`` assignments applied to a round-trip region document.

Keys are checked against the :class:`~kubevc.generator.spec.RegionSpec` schema before anything is
changed, so a typo is reported as an unknown key (with the known keys at that level) instead of
surfacing later. Values are YAML (``monitoring=false``, ``architectures=[arm64]``, ``git.url=...``);
an empty value removes an optional key.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Union

from pydantic import BaseModel
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from . import yamlio
from .spec import RegionSpec, SpecError

__all__ = ["apply_assignments", "resolve_key"]


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated wrappers."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    return {(f.alias or n): f.annotation for n, f in model.model_fields.items()}


def fields_at(path: list[str | int]) -> list[str]:
    """The keys the region schema allows at ``path`` (empty when unknown or free-form)."""
    current: Any = RegionSpec
    for part in path:
        current = _unwrap(current)
        origin = typing.get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = _fields(current)
            if not isinstance(part, str) or part not in fields:
                return []
            current = fields[part]
        elif origin is list and isinstance(part, int):
            current = typing.get_args(current)[0]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(_fields(current))
    return []


def resolve_key(key: str) -> list[str | int]:
    """Split a dotted key and check each part against the region schema."""
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise SpecError(f"region set: {key!r} is not a dotted key such as storage.nfs.path")
    current: Any = RegionSpec
    path: list[str | int] = []
    for i, part in enumerate(parts):
        where = ".".join(parts[: i + 1])
        current = _unwrap(current)
        origin = typing.get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = _fields(current)
            if part not in fields:
                known = ", ".join(sorted(fields))
                close = difflib.get_close_matches(part, list(fields), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise SpecError(f"region set: unknown key {where!r} ({hint}known keys here: {known})")
            path.append(part)
            current = fields[part]
        elif origin is list:
            if not part.isdigit():
                raise SpecError(f"region set: {where!r}: list index expected (e.g. nodes.0.sshUser)")
            path.append(int(part))
            current = typing.get_args(current)[0]
        elif origin is dict:
            path.append(part)
            current = typing.get_args(current)[1]
        else:
            raise SpecError(f"region set: unknown key {where!r} ({'.'.join(parts[:i])} has no sub-keys)")
    return path


def _parse_value(raw: str, key: str) -> Any:
    if raw == "":
        return None
    try:
        value = YAML(typ="safe").load(raw)
    except YAMLError as exc:
        raise SpecError(f"region set: value of {key!r} is not valid YAML: {exc}") from None
    return value


def apply_assignments(text: str, assignments: list[str], filename: str) -> str:
    """Return ``text`` with every ``KEY=VALUE`` applied; comments and key order are kept."""
    doc = yamlio.load_roundtrip(text, filename)
    parsed: list[tuple[str, list[str | int], Any]] = []
    for item in assignments:
        if "=" not in item:
            raise SpecError(f"region set: {item!r} is not KEY=VALUE")
        key, raw = item.split("=", 1)
        parsed.append((key, resolve_key(key.strip()), _parse_value(raw.strip(), key)))
    for key, path, value in parsed:
        node: Any = doc
        for i, part in enumerate(path[:-1]):
            nxt = path[i + 1]
            if isinstance(node, CommentedMap):
                if part not in node or node[part] is None:
                    node[part] = CommentedSeq() if isinstance(nxt, int) else CommentedMap()
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int):
                if part >= len(node):
                    raise SpecError(
                        f"region set: {key!r}: index {part} is out of range ({len(node)} entries)"
                    )
                node = node[part]
            else:
                raise SpecError(f"region set: {key!r}: cannot descend into a {type(node).__name__}")
        last = path[-1]
        if isinstance(node, CommentedMap):
            if value is None:
                node.pop(last, None)
            else:
                node[last] = value
        elif isinstance(node, CommentedSeq) and isinstance(last, int):
            if last < len(node):
                if value is None:
                    del node[last]
                else:
                    node[last] = value
            elif last == len(node) and value is not None:
                node.append(value)
            else:
                raise SpecError(f"region set: {key!r}: index {last} is out of range ({len(node)} entries)")
        else:
            raise SpecError(f"region set: {key!r}: cannot set a key inside a {type(node).__name__}")
    return yamlio.dump_roundtrip(doc)
