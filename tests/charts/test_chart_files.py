"""The files of each chart: metadata, documented values, a strict schema, the usual templates."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.charts.rendering import CHART_NAMES, CHARTS_DIR

KEY_LINE = re.compile(r"^(?P<indent>\s*)(?:- )?(?P<key>[\w./\"-]+):(?:\s|$)")


@pytest.mark.parametrize("chart", CHART_NAMES)
def test_chart_metadata(chart: str) -> None:
    meta = yaml.safe_load((CHARTS_DIR / chart / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2" and meta["name"] == chart
    assert meta["version"] == "0.1.0" and meta["appVersion"] and meta["description"]
    assert meta["kubeVersion"] == ">=1.27.0-0"
    for required in ("values.yaml", "values.schema.json", "templates/NOTES.txt", "templates/_helpers.tpl"):
        assert (CHARTS_DIR / chart / required).is_file(), required


@pytest.mark.parametrize("chart", CHART_NAMES)
def test_every_values_key_has_a_comment_above_it(chart: str) -> None:
    lines = (CHARTS_DIR / chart / "values.yaml").read_text().splitlines()
    undocumented = [
        f"line {number + 1}: {line.strip()}"
        for number, line in enumerate(lines)
        if KEY_LINE.match(line) and (number == 0 or not lines[number - 1].lstrip().startswith("#"))
    ]
    assert not undocumented, undocumented


CONDITIONAL = {"if", "then", "else", "allOf", "anyOf", "oneOf", "not"}


def open_objects(schema: Any, path: tuple[str, ...] = ()) -> list[str]:
    """Schema nodes that list properties but still accept unknown keys."""
    if isinstance(schema, list):
        return [
            found for index, item in enumerate(schema) for found in open_objects(item, (*path, str(index)))
        ]
    if not isinstance(schema, dict):
        return []
    # Conditional branches only narrow keys that the enclosing object already closes.
    in_condition = bool(CONDITIONAL & set(path))
    is_open = "properties" in schema and schema.get("additionalProperties") is not False and not in_condition
    found = ["/".join(path) or "$"] if is_open else []
    return found + [deeper for key, sub in schema.items() for deeper in open_objects(sub, (*path, key))]


def test_open_objects_are_found() -> None:
    schema = {"properties": {"a": {"properties": {"b": {}}, "additionalProperties": False}}}
    assert open_objects(schema) == ["$"]


@pytest.mark.parametrize("chart", CHART_NAMES)
def test_schema_is_draft7_and_closed_at_every_level(chart: str) -> None:
    schema = json.loads((CHARTS_DIR / chart / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert not open_objects(schema)


def documented_paths(values: Any, prefix: str = "") -> set[str]:
    if not isinstance(values, dict):
        return set()
    return {f"{prefix}{key}" for key in values} | {
        path for key, sub in values.items() for path in documented_paths(sub, f"{prefix}{key}.")
    }


def schema_object_paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
    # Keys of objects (not of array items): those must all appear in values.yaml with a comment.
    return {f"{prefix}{key}" for key in schema.get("properties", {})} | {
        path
        for key, sub in schema.get("properties", {}).items()
        for path in schema_object_paths(sub, f"{prefix}{key}.")
    }


@pytest.mark.parametrize("chart", CHART_NAMES)
def test_every_schema_key_appears_in_values_yaml(chart: str) -> None:
    schema = json.loads((CHARTS_DIR / chart / "values.schema.json").read_text())
    values = yaml.safe_load((CHARTS_DIR / chart / "values.yaml").read_text())
    missing = schema_object_paths(schema) - documented_paths(values)
    assert not missing, sorted(missing)


@pytest.mark.parametrize("chart", CHART_NAMES)
def test_default_image_tags_are_pinned(chart: str) -> None:
    text = (CHARTS_DIR / chart / "values.yaml").read_text()
    tags = re.findall(r"^\s*tag:\s*\"?([^\"\s]+)", text, re.M)
    assert all(tag != "latest" for tag in tags)
    assert chart == "kubevc-monitoring" or tags, "workload charts pin an image tag"
