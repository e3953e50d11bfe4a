"""The markdown writer: paper beside ours in every row, targets with pass/miss, command and machine."""

from __future__ import annotations

from pathlib import Path

from bench import report
from bench.results import DOC_PATH, RESULTS_DIR, Row, SuiteResult, Target, load_results, write_result


def _doc(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    res = SuiteResult("payload", "Payload size", "quick", command="python -m bench --quick")
    res.machine = {
        "cpu_model": "AMD Test 9000",
        "cores": 2,
        "kernel": "6.1",
        "python": "3.11.7",
        "numpy": "2.0",
        "blas": [{"internal_api": "openblas", "version": "0.3"}],
    }
    t = res.table("input", "Request body, MiB", ratio_label="× (a) JSON")
    res.add(Row(t, "YOLOv5 (a) JSON", 22.52, "MiB", paper=24.547, ratio=1.0))
    res.add(Row(t, "YOLOv5 (e) JPEG", 0.11, "MiB", ratio=0.0049))
    res.add(Row(t, "JPEG share", 2.36, "%", target=Target("<=", 3.0)))
    res.add(Row(t, "wire | time", 2.5, "ms", target=Target("<=", 2.0)))
    res.skip("transfer", "needs root")
    write_result(res, tmp_path)
    (doc,) = load_results(tmp_path)
    return doc


def test_every_row_has_a_paper_cell(tmp_path: Path) -> None:
    md = report.render_markdown([_doc(tmp_path)])
    rows = [line for line in md.splitlines() if line.startswith("| YOLOv5") or line.startswith("| JPEG")]
    assert len(rows) == 3
    assert "| 22.52 MiB | 24.547 MiB | 1.000× |" in rows[0]
    assert "— (not in paper)" in rows[1]
    assert all(line.count("|") == rows[0].count("|") for line in rows)


def test_targets_pass_and_miss_and_escaping(tmp_path: Path) -> None:
    md = report.render_markdown([_doc(tmp_path)])
    assert "## Targets from issues 5, 7 and 18 (goals, not tests)" in md
    assert "✅ pass" in md and "❌ miss" in md
    assert "wire \\| time" in md  # a pipe in a label must not break the table


def test_command_machine_and_skips_are_printed(tmp_path: Path) -> None:
    md = report.render_markdown([_doc(tmp_path)])
    assert "`python -m bench --quick`" in md
    assert "AMD Test 9000 × 2 cores" in md
    assert "openblas 0.3" in md
    assert "- transfer: needs root" in md


def test_empty_results() -> None:
    assert "No results yet" in report.render_markdown([])


def test_fmt() -> None:
    assert report.fmt(None) == "—"
    assert report.fmt(0) == "0"
    assert report.fmt(4498.2, "ms") == "4,498 ms"
    assert report.fmt(0.000291, "MiB") == "0.000291 MiB"
    assert report.fmt_ratio(0.0049) == "0.0049×"
    assert report.fmt_ratio(18.23) == "18.2×"


def test_committed_doc_matches_committed_results() -> None:
    """docs/benchmarks.md is generated: it must be what the committed results render to."""
    docs = load_results(RESULTS_DIR)
    assert docs, f"no committed benchmark results in {RESULTS_DIR}"
    assert DOC_PATH.read_text(encoding="utf-8") == report.render_markdown(docs, DOC_PATH.parent), (
        "docs/benchmarks.md is stale or hand-edited: run `python -m bench --report-only`"
    )


def test_plot_from_result(tmp_path: Path) -> None:
    from bench import plots

    res = SuiteResult("transfer", "Transfer", "quick")
    res.machine = {"cpu_model": "Test CPU", "cores": 2}
    t = res.table("link", "p50")
    for link in ("1 Gbit/s", "100 Mbit/s"):
        for path, ms in (("(a)", 900.0), ("(e)", 3.0)):
            res.add(
                Row(
                    t,
                    f"{link} {path}",
                    ms,
                    "ms",
                    paper=800.0 if path == "(a)" else None,
                    extra={"plot": {"group": link, "series": path, "high": ms * 1.2}},
                )
            )
    write_result(res, tmp_path / "results")
    (doc,) = load_results(tmp_path / "results")
    png = plots.plot_suite(doc, tmp_path / "img")
    assert png is not None and png.name == "bench-transfer.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plots.plot_suite({**doc, "rows": []}, tmp_path / "img2") is None


def test_unreached_issue_targets_are_listed(tmp_path: Path) -> None:
    md = report.render_markdown([_doc(tmp_path)])
    assert "| deploy | render+validate of 100 regions < 60 s | — | | not measured in this run" in md
