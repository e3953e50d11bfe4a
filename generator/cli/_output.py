"""``-o/--output table|json|yaml|name``: one option and one renderer for every list/show command.

``json`` and ``yaml`` print the same document: a mapping with ``schemaVersion`` (1) and ``kind``
(``RegionList``, ``Region``, ``ModelList``, ``Hub``, ``ValidationReport``, ``FleetStatus``, ``Rollout``); keys
may be added in a later version, none removed or renamed (README "Output formats"). ``name``
prints one ``kind/name`` per line, like ``kubectl get -o name``. ``table`` is for people and may
change at any time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from ..repo import dump_generated

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_FORMATS = ("table", "json", "yaml", "name")
SCHEMA_VERSION = 1


def output_option(func: F) -> F:
    """``-o/--output``: table (default), json, yaml or name."""
    return click.option(
        "--output",
        "-o",
        type=click.Choice(OUTPUT_FORMATS),
        default="table",
        show_default=True,
        help="Output format: table; json or yaml (stable: README 'Output formats'); name (kind/name lines).",
    )(func)


def document(kind: str, **fields: Any) -> dict[str, Any]:
    """A stable output document: ``schemaVersion`` and ``kind`` first, then ``fields``."""
    return {"schemaVersion": SCHEMA_VERSION, "kind": kind, **fields}


def emit(output: str, doc: dict[str, Any], names: Sequence[str], table: Callable[[], None]) -> None:
    """Print ``doc`` as ``output`` says: json/yaml the document, name the ``names``, table ``table()``."""
    if output == "json":
        click.echo(json.dumps(doc, indent=2))
    elif output == "yaml":
        click.echo(dump_generated(doc), nl=False)
    elif output == "name":
        for name in names:
            click.echo(name)
    else:
        table()
