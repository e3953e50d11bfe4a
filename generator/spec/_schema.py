"""The region schema as a tree of keys: what ``region set`` and error hints check a key against."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Union

from pydantic import BaseModel

from ..errors import SpecError
from ._region import RegionSpec


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
        elif current is Any:  # free-form (chart values): checked against the chart's schema instead
            path.append(part)
        else:
            raise SpecError(f"region set: unknown key {where!r} ({'.'.join(parts[:i])} has no sub-keys)")
    return path
