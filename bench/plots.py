"""PNG plots (matplotlib, Agg) from a result document.

Rows that want plotting carry ``extra["plot"] = {"group": ..., "series": ..., "x": <number?>}``;
one figure per suite: grouped bars (log scale when values span > 2 decades) or, when every
plotted row has a numeric ``x``, lines per series.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.results import IMG_DIR, REPO_ROOT


def plot_path(suite: str, img_dir: Path = IMG_DIR) -> Path:
    return img_dir / f"bench-{suite}.png"


def repo_relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def plot_suite(doc: dict[str, Any], img_dir: Path = IMG_DIR) -> Path | None:
    rows = [
        r for r in doc["rows"] if isinstance(r.get("extra", {}).get("plot"), dict) and r["value"] is not None
    ]
    if not rows:
        return None
    img_dir.mkdir(parents=True, exist_ok=True)
    out = plot_path(doc["suite"], img_dir)
    units = sorted({r["unit"] for r in rows})
    numeric_x = all(isinstance(r["extra"]["plot"].get("x"), int | float) for r in rows)
    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=110)
    series: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        series.setdefault(str(r["extra"]["plot"]["series"]), []).append(r)
    if numeric_x:
        for name, rs in series.items():
            rs = sorted(rs, key=lambda r: r["extra"]["plot"]["x"])
            ax.plot([r["extra"]["plot"]["x"] for r in rs], [r["value"] for r in rs], marker="o", label=name)
        ax.set_xlabel(str(rows[0]["extra"]["plot"].get("xlabel", "x")))
        ax.set_xscale("log")
    else:
        groups: list[str] = []
        for r in rows:
            g = str(r["extra"]["plot"]["group"])
            if g not in groups:
                groups.append(g)
        width = 0.8 / max(1, len(series))
        paper_labelled = False
        for i, (name, rs) in enumerate(series.items()):
            by_group = {str(r["extra"]["plot"]["group"]): r for r in rs}
            xs, ys, errs = [], [], []
            for gi, g in enumerate(groups):
                if g in by_group:
                    xs.append(gi + (i - (len(series) - 1) / 2) * width)
                    ys.append(by_group[g]["value"])
                    hi = by_group[g]["extra"]["plot"].get("high")
                    errs.append(max(0.0, hi - by_group[g]["value"]) if isinstance(hi, int | float) else 0.0)
            ax.bar(xs, ys, width=width, label=name, yerr=errs if any(errs) else None, capsize=2)
            px = [
                x
                for x, g in zip(xs, [g for g in groups if g in by_group], strict=True)
                if by_group[g].get("paper") is not None and by_group[g]["unit"] == by_group[g]["unit"]
            ]
            py = [
                by_group[g]["paper"] for g in groups if g in by_group and by_group[g].get("paper") is not None
            ]
            if px:
                ax.scatter(
                    px,
                    py,
                    marker="_",
                    s=300,
                    color="black",
                    zorder=3,
                    label="paper" if not paper_labelled else None,
                )
                paper_labelled = True
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(
            groups, rotation=0 if len(groups) < 6 else 20, ha="center" if len(groups) < 6 else "right"
        )
    values = [r["value"] for r in rows if r["value"] > 0]
    if values and max(values) / min(values) > 100:
        ax.set_yscale("log")
    ax.set_ylabel(" / ".join(units))
    ax.set_title(
        f"{doc['title']}\n{doc['machine'].get('cpu_model')} × {doc['machine'].get('cores')} cores, "
        f"{doc['date']}",
        fontsize=10,
    )
    ax.grid(axis="y", alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
