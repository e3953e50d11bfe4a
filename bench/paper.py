"""The paper's reported numbers (``../shared/paper/tables.json``; ``KUBEVC_SHARED`` points elsewhere)."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from bench.results import REPO_ROOT


def shared_dir() -> Path:
    return Path(os.environ.get("KUBEVC_SHARED", REPO_ROOT.parent / "shared"))


@cache
def tables() -> dict[str, Any]:
    """The paper's tables, or {} when the file is absent (rows then show no paper number)."""
    path = shared_dir() / "paper" / "tables.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data


def payload_mib(model: str, key: str) -> float | None:
    """Table 5 body size in MiB (the paper's "MB": its PB sizes equal raw float32 tensors in MiB)."""
    value = tables().get("table5_payload_mb", {}).get(model, {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def headline(key: str) -> float | None:
    value = tables().get("headline", {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def deploy_seconds(step: str, distro: str = "k3s") -> float | None:
    table = tables().get("table3_deploy_seconds", {})
    cols = table.get("columns", [])
    values = table.get(step)
    if distro in cols and isinstance(values, list):
        return float(values[cols.index(distro)])
    return None
