"""Per-region chart values (``values.<chart>.<path>`` in a region file), checked against the charts.

A kubevc chart's override is validated against that chart's ``values.schema.json`` (draft 7) with
its ``required`` lists dropped (an override is a partial document; the render merges it into
complete values). kube-prometheus-stack has no schema in this project: its overrides must lie
under :data:`kubevc.generator.spec.KPS_ALLOWED_KEYS`. Every problem is one line naming the key
path and, when one is close, the nearest valid key.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from .. import charts_dir
from ..errors import SpecError
from ..spec import (
    KPS_ALLOWED_KEYS,
    KPS_CHART,
    VALUES_CHARTS,
    RegionSpec,
    deep_merge,
    kps_key_allowed,
    leaf_paths,
)
from . import _yamlio as yamlio


def _without_required(schema: Any, in_items: bool = False) -> Any:
    """``schema`` with the ``required`` lists of its object levels removed (not inside array items:
    a list in an override replaces the chart's whole list, so its entries must be complete)."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key == "required" and not in_items:
                continue
            out[key] = _without_required(value, in_items or key == "items")
        return out
    if isinstance(schema, list):
        return [_without_required(v, in_items) for v in schema]
    return schema


@functools.cache
def _chart_schema(charts: Path, chart: str) -> dict[str, Any]:
    path = charts / chart / "values.schema.json"
    try:
        schema: dict[str, Any] = _without_required(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise SpecError(f"values.{chart}: cannot read the chart's schema {path}: {exc}") from None
    return schema


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _properties_at(schema: dict[str, Any], path: list[str | int]) -> list[str]:
    node: Any = schema
    for part in path:
        if not isinstance(node, dict):
            return []
        node = node.get("items") if isinstance(part, int) else node.get("properties", {}).get(part)
    return sorted(node.get("properties", {})) if isinstance(node, dict) else []


def _chart_problems(chart: str, overrides: Mapping[str, Any], charts: Path) -> list[str]:
    # jsonschema is slow to import; only `region set` and `validate` of a region with values need it
    import jsonschema

    schema = _chart_schema(charts, chart)
    problems: list[str] = []
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(dict(overrides)), key=lambda e: [str(p) for p in e.path]):
        where = ".".join(["values", chart, *(str(p) for p in error.path)])
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = _properties_at(schema, list(error.path))
            for extra in sorted(k for k in error.instance if k not in known):
                near = _suggest(extra, known)
                problems.append(f"{where}.{extra}: unknown key{near}")
        else:
            problems.append(f"{where}: {error.message}")
    return problems


def _kps_problems(overrides: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    allowed = [k.rstrip(".") for k in KPS_ALLOWED_KEYS]
    for path in leaf_paths(overrides):
        if not kps_key_allowed(path):
            problems.append(
                f"values.{KPS_CHART}.{path}: not a key kubevc lets a region set{_suggest(path, allowed)} "
                f"(allowed: {', '.join(allowed)})"
            )
    return problems


def check_value_overrides(region: RegionSpec, charts: Path | None = None) -> list[str]:
    """One line per invalid key of ``region.values`` (empty: all valid)."""
    problems: list[str] = []
    for chart, overrides in sorted(region.values.items()):
        if chart == KPS_CHART:
            problems.extend(_kps_problems(overrides))
        else:
            problems.extend(_chart_problems(chart, overrides, charts or charts_dir()))
    return [f"regions/{region.name}/region.yaml: {p}" for p in problems]


def read_values_file(spec: str) -> tuple[str, dict[str, Any]]:
    """``CHART=FILE`` (``region set --values-file``) -> (chart, the file's mapping)."""
    if "=" not in spec:
        raise SpecError(f"--values-file {spec!r}: write CHART=FILE (charts: {', '.join(VALUES_CHARTS)})")
    chart, name = spec.split("=", 1)
    if chart not in VALUES_CHARTS:
        raise SpecError(
            f"--values-file {spec!r}: unknown chart {chart!r}{_suggest(chart, VALUES_CHARTS)} "
            f"(charts: {', '.join(VALUES_CHARTS)})"
        )
    try:
        data = YAML(typ="safe").load(Path(name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"--values-file {spec!r}: cannot read {name}: {exc}") from None
    except YAMLError as exc:
        raise SpecError(f"--values-file {spec!r}: {name} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise SpecError(f"--values-file {spec!r}: {name} must hold a non-empty mapping of chart values")
    return chart, data


def merge_values(text: str, chart: str, data: Mapping[str, Any], filename: str) -> str:
    """Region file ``text`` with ``data`` merged into ``values.<chart>`` (comments kept)."""
    doc = yamlio.load_roundtrip(text, filename)
    values = doc.get("values")
    if not isinstance(values, CommentedMap):
        values = doc["values"] = CommentedMap()
    current = yamlio.to_plain(values.get(chart) or {})
    values[chart] = deep_merge(current, data)
    return yamlio.dump_roundtrip(doc)
