"""The result file format: one JSON document per suite in ``bench/results/<suite>.json``.

Every row carries our value, the paper's number in the same unit (or None where the paper has
none), the ratio to the table's baseline measured in the same run, and an optional target from
issue 7 with its pass/miss status. Each file records the command, date and machine.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
IMG_DIR = REPO_ROOT / "docs" / "img"
DOC_PATH = REPO_ROOT / "docs" / "benchmarks.md"

_OPS = ("<=", ">=", "<", ">")


@dataclass(frozen=True)
class Target:
    """A goal from the issue; evaluated and printed, never asserted."""

    op: str
    value: float
    text: str = ""

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"target op must be one of {_OPS}, got {self.op!r}")

    def status(self, value: float | None) -> str | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        ok = {
            "<=": value <= self.value,
            ">=": value >= self.value,
            "<": value < self.value,
            ">": value > self.value,
        }[self.op]
        return "pass" if ok else "miss"


@dataclass
class Row:
    table: str
    label: str
    value: float | None
    unit: str
    paper: float | None = None
    ratio: float | None = None
    target: Target | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["target"] = asdict(self.target) if self.target else None
        d["status"] = self.target.status(self.value) if self.target else None
        return d


@dataclass
class Table:
    id: str
    title: str
    ratio_label: str = ""
    paper_label: str = "paper"
    description: str = ""


@dataclass
class SuiteResult:
    suite: str
    title: str
    mode: str
    tables: list[Table] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    command: str = field(default_factory=lambda: current_command())
    date: str = field(default_factory=lambda: utc_now())
    duration_s: float | None = None
    machine: dict[str, Any] = field(default_factory=dict)

    def table(
        self, id: str, title: str, ratio_label: str = "", description: str = "", paper_label: str = "paper"
    ) -> str:
        self.tables.append(Table(id, title, ratio_label, paper_label, description))
        return id

    def add(self, row: Row) -> Row:
        if row.table not in {t.id for t in self.tables}:
            raise KeyError(f"row {row.label!r} names unknown table {row.table!r}")
        self.rows.append(row)
        return row

    def skip(self, what: str, reason: str) -> None:
        self.skipped.append({"what": what, "reason": reason})

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "suite": self.suite,
            "title": self.title,
            "mode": self.mode,
            "command": self.command,
            "date": self.date,
            "duration_s": self.duration_s,
            "machine": self.machine,
            "tables": [asdict(t) for t in self.tables],
            "rows": [r.to_json() for r in self.rows],
            "skipped": self.skipped,
            "notes": self.notes,
            "plots": self.plots,
        }


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def current_command() -> str:
    args = " ".join(shlex.quote(a) for a in sys.argv[1:])
    return f"python -m bench {args}".strip()


def _finite(x: Any) -> Any:
    """JSON has no NaN/Infinity: write None instead."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def write_result(result: SuiteResult, directory: Path = RESULTS_DIR) -> Path:
    doc = _finite(result.to_json())
    errors = validate_result(doc)
    if errors:
        raise ValueError(f"result for {result.suite} does not match the schema: {errors}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.suite}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def load_results(directory: Path = RESULTS_DIR) -> list[dict[str, Any]]:
    docs = []
    for path in sorted(directory.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        errors = validate_result(doc)
        if errors:
            raise ValueError(f"{path}: {errors}")
        docs.append(doc)
    return docs


_TOP = {
    "schema": int,
    "suite": str,
    "title": str,
    "mode": str,
    "command": str,
    "date": str,
    "machine": dict,
    "tables": list,
    "rows": list,
    "skipped": list,
    "notes": list,
    "plots": list,
}
_ROW = {"table": str, "label": str, "unit": str, "note": str, "extra": dict}
_NUM_OR_NONE = ("value", "paper", "ratio")


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def validate_result(doc: Any) -> list[str]:
    """Errors in a result document (empty list: valid)."""
    if not isinstance(doc, dict):
        return ["document is not an object"]
    errors: list[str] = []
    for key, typ in _TOP.items():
        if key not in doc:
            errors.append(f"missing key {key!r}")
        elif not isinstance(doc[key], typ):
            errors.append(f"{key!r} must be {typ.__name__}")
    if errors:
        return errors
    if doc["schema"] != SCHEMA_VERSION:
        errors.append(f"schema {doc['schema']} != {SCHEMA_VERSION}")
    if doc["mode"] not in ("quick", "full"):
        errors.append(f"mode {doc['mode']!r} is not quick|full")
    try:
        _dt.datetime.fromisoformat(doc["date"].replace("Z", "+00:00"))
    except ValueError:
        errors.append(f"date {doc['date']!r} is not ISO 8601")
    for key in ("cpu_model", "cores"):
        if key not in doc["machine"]:
            errors.append(f"machine lacks {key!r}")
    table_ids = set()
    for i, t in enumerate(doc["tables"]):
        if not isinstance(t, dict) or not isinstance(t.get("id"), str) or not isinstance(t.get("title"), str):
            errors.append(f"tables[{i}] needs string id and title")
        else:
            table_ids.add(t["id"])
    for i, row in enumerate(doc["rows"]):
        if not isinstance(row, dict):
            errors.append(f"rows[{i}] is not an object")
            continue
        for key, typ in _ROW.items():
            if not isinstance(row.get(key), typ):
                errors.append(f"rows[{i}].{key} must be {typ.__name__}")
        for key in _NUM_OR_NONE:
            if key not in row:
                errors.append(f"rows[{i}] lacks {key!r}")
            elif row[key] is not None and not _is_num(row[key]):
                errors.append(f"rows[{i}].{key} must be a number or null")
        if row.get("table") not in table_ids:
            errors.append(f"rows[{i}] names unknown table {row.get('table')!r}")
        target = row.get("target")
        if target is not None and (
            not isinstance(target, dict) or target.get("op") not in _OPS or not _is_num(target.get("value"))
        ):
            errors.append(f"rows[{i}].target must have op in {_OPS} and a numeric value")
        if row.get("status") not in (None, "pass", "miss"):
            errors.append(f"rows[{i}].status must be pass, miss or null")
    for i, s in enumerate(doc["skipped"]):
        if (
            not isinstance(s, dict)
            or not isinstance(s.get("what"), str)
            or not isinstance(s.get("reason"), str)
        ):
            errors.append(f"skipped[{i}] needs string what and reason")
    return errors
