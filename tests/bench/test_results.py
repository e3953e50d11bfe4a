"""The result-file schema: what `python -m bench` writes must validate and round-trip."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.results import Row, SuiteResult, Target, load_results, validate_result, write_result


def _result() -> SuiteResult:
    res = SuiteResult("payload", "Payload", "quick")
    res.machine = {"cpu_model": "Test CPU", "cores": 2}
    t = res.table("input", "Request body, MiB", ratio_label="× (a)")
    res.add(Row(t, "(a) JSON", 22.5, "MiB", paper=24.547, ratio=1.0))
    res.add(Row(t, "(e) JPEG share", 2.4, "%", target=Target("<=", 3.0)))
    res.add(Row(t, "(x) broken", math.nan, "MiB"))
    res.skip("something", "because")
    return res


def test_write_and_load_round_trip(tmp_path: Path) -> None:
    path = write_result(_result(), tmp_path)
    assert path.name == "payload.json"
    (doc,) = load_results(tmp_path)
    assert doc["rows"][0]["paper"] == 24.547
    assert doc["rows"][1]["status"] == "pass"
    assert doc["rows"][2]["value"] is None  # NaN is not JSON: written as null
    assert doc["command"].startswith("python -m bench")
    assert doc["machine"]["cpu_model"] == "Test CPU"
    assert validate_result(doc) == []


def test_target_status() -> None:
    assert Target("<=", 3.0).status(3.0) == "pass"
    assert Target("<=", 3.0).status(3.1) == "miss"
    assert Target(">=", 98.0).status(97.9) == "miss"
    assert Target("<", 60.0).status(None) is None
    with pytest.raises(ValueError):
        Target("==", 1.0)


def test_row_must_name_a_known_table() -> None:
    res = SuiteResult("x", "x", "quick")
    with pytest.raises(KeyError):
        res.add(Row("nope", "label", 1.0, "s"))


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.pop("command"), "missing key 'command'"),
        (lambda d: d.update(mode="medium"), "mode"),
        (lambda d: d.update(date="yesterday"), "ISO 8601"),
        (lambda d: d["machine"].pop("cores"), "machine lacks 'cores'"),
        (lambda d: d["rows"][0].update(table="ghost"), "unknown table"),
        (lambda d: d["rows"][0].update(value="fast"), "value must be a number"),
        (lambda d: d["rows"][0].update(status="great"), "status"),
        (lambda d: d["rows"][1].update(target={"op": "~", "value": 1}), "target"),
        (lambda d: d["skipped"].append({"what": "x"}), "skipped"),
    ],
)
def test_validate_rejects(mutate, fragment: str) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(json.dumps(_result().to_json(), default=lambda x: None))
    doc["rows"][2]["value"] = None
    assert validate_result(doc) == []
    mutate(doc)
    errors = validate_result(doc)
    assert errors, "the broken document was accepted"
    assert any(fragment in e for e in errors), errors


def test_write_refuses_an_invalid_result(tmp_path: Path) -> None:
    res = _result()
    res.machine = {}
    with pytest.raises(ValueError, match="machine lacks"):
        write_result(res, tmp_path)
    assert not list(tmp_path.iterdir())
