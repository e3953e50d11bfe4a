"""(Re)generate ``docs/benchmarks.md`` and the PNG plots from ``bench/results/*.json``."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

from bench.results import DOC_PATH, IMG_DIR, REPO_ROOT, RESULTS_DIR, load_results

SUITE_ORDER = (
    "payload",
    "transfer",
    "codec",
    "throughput",
    "triton",
    "kserve",
    "deploy",
    "deploy_scale",
    "abuse",
    "wire",
)
STATUS = {"pass": "✅ pass", "miss": "❌ miss", None: ""}


def fmt(value: float | None, unit: str = "") -> str:
    """A number with about 4 significant digits (never scientific notation for table cells)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if value == 0:
        return "0"
    mag = abs(value)
    if mag >= 1000:
        text = f"{value:,.0f}"
    elif mag >= 100:
        text = f"{value:.1f}"
    elif mag >= 1:
        text = f"{value:.3g}" if mag < 10 else f"{value:.2f}"
    else:
        digits = max(3, 2 - math.floor(math.log10(mag)))
        text = f"{value:.{min(digits, 9)}f}"
    return f"{text} {unit}".strip() if unit else text


def fmt_ratio(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    if value >= 10:
        return f"{value:.1f}×"
    if value >= 0.01:
        return f"{value:.3f}×"
    return f"{value:.2g}×"


def _target_text(row: dict[str, Any]) -> str:
    t = row.get("target")
    if not t:
        return ""
    return f"{t['op']} {fmt(t['value'])} {row['unit']}".strip()


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def machine_line(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    blas = ", ".join(
        f"{b.get('internal_api')} {b.get('version') or ''}".strip()
        for b in m.get("blas", [])
        if b.get("internal_api")
    )
    parts = [
        f"`{doc['command']}`",
        doc["date"],
        f"{m.get('cpu_model')} × {m.get('cores')} cores",
        f"Linux {m.get('kernel')}" if m.get("kernel") else "",
        f"Python {m.get('python')}" if m.get("python") else "",
        f"numpy {m.get('numpy')}" + (f" ({blas})" if blas else "") if m.get("numpy") else "",
        f"load average at start {m['loadavg_at_start'][0]}" if m.get("loadavg_at_start") else "",
    ]
    if doc.get("duration_s") is not None:
        parts.append(f"took {doc['duration_s']:.0f} s")
    return " · ".join(p for p in parts if p)


def render_table(doc: dict[str, Any], table: dict[str, Any]) -> list[str]:
    rows = [r for r in doc["rows"] if r["table"] == table["id"]]
    if not rows:
        return []
    has_ratio = any(r.get("ratio") is not None for r in rows)
    has_target = any(r.get("target") for r in rows)
    head = ["", "ours", table.get("paper_label") or "paper"]
    if has_ratio:
        head.append(table.get("ratio_label") or "ratio")
    if has_target:
        head += ["target", "status"]
    head.append("notes")
    lines = [f"#### {table['title']}", ""]
    if table.get("description"):
        lines += [table["description"], ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["--:"] * (len(head) - 2) + ["---"]) + "|")
    for r in rows:
        cells = [
            _escape(r["label"]),
            fmt(r["value"], r["unit"]),
            f"{r['paper']:g} {r['unit']}" if r.get("paper") is not None else "— (not in paper)",
        ]
        if has_ratio:
            cells.append(fmt_ratio(r.get("ratio")))
        if has_target:
            cells += [_target_text(r), STATUS.get(r.get("status"), "")]
        cells.append(_escape(r.get("note", "")))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def render_suite(doc: dict[str, Any], docs_dir: Path) -> list[str]:
    lines = [f"## {doc['title']}", "", f"Measured with {machine_line(doc)}.", ""]
    for table in doc["tables"]:
        lines += render_table(doc, table)
    for plot in doc.get("plots", []):
        rel = Path(plot)
        with contextlib.suppress(ValueError):
            rel = (REPO_ROOT / plot).relative_to(docs_dir)
        lines += [f"![{Path(plot).stem}]({rel.as_posix()})", ""]
    if doc["skipped"]:
        lines += ["Skipped in this run:", ""]
        lines += [f"- {_escape(s['what'])}: {_escape(s['reason'])}" for s in doc["skipped"]]
        lines.append("")
    if doc["notes"]:
        lines += ["Notes:", ""]
        lines += [f"- {_escape(n)}" for n in doc["notes"]]
        lines.append("")
    return lines


def targets_summary(docs: list[dict[str, Any]]) -> list[str]:
    rows = [(d, r) for d in docs for r in d["rows"] if r.get("target")]
    if not rows:
        return []
    lines = [
        "## Targets from issues 5, 7 and 18 (goals, not tests)",
        "",
        "| suite | row | ours | target | status |",
        "|---|---|--:|--:|---|",
    ]
    for d, r in rows:
        lines.append(
            f"| {d['suite']} | {_escape(r['label'])} | {fmt(r['value'], r['unit'])} | "
            f"{_target_text(r)} | {STATUS.get(r.get('status'), 'not measured')} |"
        )
    seen = {r["target"].get("text") for _, r in rows}
    for suite, text, how in ISSUE_TARGETS:
        if text not in seen:
            lines.append(f"| {suite} | {_escape(text)} | — | | not measured in this run ({how}) |")
    lines.append("")
    return lines


# Targets of issues 7 and 18 that a run may not reach (listed as "not measured" rather than left out).
ISSUE_TARGETS = (
    ("deploy", "render+validate of 100 regions < 60 s", "`make bench-full`"),
    ("abuse", "gateway RSS never above 400 MiB", "`make bench-full`"),
    ("transfer", "wire time at 1 Gbit/s <= 2 ms", "needs root for network namespaces"),
)


METHOD = [
    "How each suite measures (`python -m bench --quick --suite NAME` runs one; `--report-only` only "
    "rewrites this file and the plots):",
    "",
    "- **payload**: serialized body bytes per path, built with the gateway's own generated protobuf "
    "messages and `to_tensor_proto`; inputs are real photos (scikit-image samples), outputs come from the "
    "gateway's test models of the real shapes, post-processed answers from the real gateway app.",
    "- **transfer**: two network namespaces joined by a veth pair (`tc qdisc ... tbf` at 1 Gbit/s and "
    "100 Mbit/s, and the bare veth), gateway + test backend + a TCP sink in one namespace, the client in "
    "the other; request count and time bounded per path. Needs root; skipped with the reason otherwise.",
    "- **codec**: single-thread encode/decode of one request tensor, plus the gateway's JPEG decode + "
    "letterbox, YOLO decode + NMS and top-k functions.",
    "- **throughput**: `kubevc-gateway` and the test backend as their own processes on loopback, load from a "
    "separate process (`wrk` when installed, else an httpx/asyncio generator); RSS and CPU from /proc.",
    "- **deploy**: `kubevc-gen` commands as separate processes on a fleet repo in a temp folder; `node "
    "prepare` (kubeadm profile) twice through pyinfra's @chroot connector on a cached debootstrap'd "
    "Debian root (`kubevc.nodeprep.testing`), packages from this machine's Debian mirror. Needs root and "
    "debootstrap; skipped with the reason otherwise.",
    "- **abuse** (`make bench-full` only): the abuse cases of issue 18 (PNG bombs in multiparts, "
    "concurrent bombs, an 8 MiB header, 1000 idle connections), each against a fresh `kubevc-gateway` "
    "process with its address space capped; peak (VmHWM) and final RSS from /proc. Before/after against "
    "an older gateway is a manual step (`KUBEVC_BENCH_GATEWAY_PYTHON`, see the suite's notes).",
    "- **wire** (`make bench-full` only): gateway CPU per request (/proc) and input tensor bytes for the "
    "same JPEG sent as 640x640 uint8 and as encoded bytes passed through to a model that decodes in its "
    "graph, both through one gateway process in one run.",
    "- **triton** (`make bench-full` only; `python -m bench --full --suite triton`): the gateway in front "
    "of the real `tritonserver` (PyPI `nvidia-pytriton`, `.tools/triton`) over v2 gRPC, serving "
    "YOLOv5-shaped Python-backend models that `bench/triton_models.py` writes at bench time: raw "
    "answer + NMS in the gateway, NMS in the graph, and the encoded-bytes passthrough (BYTES input); "
    "CPU of the gateway and of Triton (server + Python stubs) from /proc.",
    "- **kserve** (`make bench-full` only; `python -m bench --full --suite kserve`): the gateway next "
    "to a KServe 0.21 transformer (`bench/kserve_transformer.py` under KServe's ModelServer, PyPI "
    "`kserve` in `.tools/kserve`) doing the same job against the same backend (Triton and the numpy "
    "test backend) at 1/4/8 connections, 3 interleaved rounds, the same malloc settings; req/s and "
    "server CPU per request as ratios. Skipped with the reason when the KServe venv is missing.",
    "",
    "Measurements of scripts that are not suites (the gateway's CPU per stage, `python -m bench.stages`; "
    "its memory under large and slow bodies, `python -m bench.abuse_bodies`) and notes on the "
    "fleet-scale runs are in [benchmarks-notes.md](benchmarks-notes.md).",
    "",
]


def render_markdown(docs: list[dict[str, Any]], docs_dir: Path = DOC_PATH.parent) -> str:
    order = {s: i for i, s in enumerate(SUITE_ORDER)}
    docs = sorted(docs, key=lambda d: (order.get(d["suite"], 99), d["suite"]))
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench` from `bench/results/*.json` (do not edit by hand: "
        "`make bench` rewrites this file; `make bench-full` runs the longer variant).",
        "The paper's numbers (KubEVC-Agent, Raspberry Pi 4B nodes on 1 GbE, "
        "`../shared/paper/tables.json`) are printed beside ours in every row; "
        '"— (not in paper)" marks paths the paper did not measure. Every ratio compares numbers '
        "measured in the same run on the same machine. The paper measured on Raspberry Pis; absolute "
        "times here come from the machine named under each section.",
        "",
    ]
    lines += METHOD
    if not docs:
        lines += ["No results yet: run `make bench`.", ""]
    lines += targets_summary(docs)
    for doc in docs:
        lines += render_suite(doc, docs_dir)
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(results_dir: Path = RESULTS_DIR, doc_path: Path = DOC_PATH) -> Path:
    docs = load_results(results_dir)
    doc_path.parent.mkdir(parents=True, exist_ok=True)
    doc_path.write_text(render_markdown(docs, doc_path.parent), encoding="utf-8")
    return doc_path


def regenerate(results_dir: Path = RESULTS_DIR, doc_path: Path = DOC_PATH, img_dir: Path = IMG_DIR) -> Path:
    from bench import plots

    for doc in load_results(results_dir):
        plots.plot_suite(doc, img_dir)
    return write_markdown(results_dir, doc_path)
