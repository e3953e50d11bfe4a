"""Reading rendered YAML fast (libyaml when available) and naming objects in findings."""

from __future__ import annotations

from typing import Any

import yaml


def obj_name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    name = meta.get("name", "?")
    return f"{obj.get('kind', '?')}/{ns + '/' if ns else ''}{name}"


_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it


def safe_load_all(text: str) -> list[Any]:
    """``yaml.safe_load_all`` through libyaml; on an error the pure loader re-parses, so the
    message (and what is accepted) is exactly the pure loader's."""
    try:
        return list(yaml.load_all(text, Loader=_FAST_LOADER))
    except yaml.YAMLError:
        return list(yaml.safe_load_all(text))


def safe_load(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_FAST_LOADER)  # noqa: S506 - CSafeLoader (or SafeLoader)
    except yaml.YAMLError:
        return yaml.safe_load(text)


def load_docs(text: str) -> list[dict[str, Any]]:
    return [d for d in safe_load_all(text) if isinstance(d, dict)]
