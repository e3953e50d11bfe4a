"""``region set``: dotted ``KEY=VALUE`` assignments applied to a round-trip region document.

Keys are checked against the :class:`~kubevc.generator.spec.RegionSpec` schema
(:func:`kubevc.generator.spec.resolve_key`) before anything is
changed, so a typo is reported as an unknown key (with the known keys at that level) instead of
surfacing later. Values are YAML (``monitoring=false``, ``architectures=[arm64]``, ``git.url=...``);
an empty value removes an optional key.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from ..errors import SpecError, YamlError
from ..spec import resolve_key
from . import _yamlio as yamlio
from ._bounded import check_yaml_text


def _parse_value(raw: str, key: str) -> Any:
    if raw == "":
        return None
    try:
        check_yaml_text(raw, f"region set: value of {key!r}")
        value = YAML(typ="safe").load(raw)
    except YamlError as exc:
        raise SpecError(str(exc)) from None
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
