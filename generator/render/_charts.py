"""``charts/``: the project's Helm charts, vendored into the fleet repo with a VERSIONS.yaml.

The chart files are read from the installed package (:func:`kubevc.generator.charts_dir`) by
:func:`read_chart_files`, which is what :func:`~kubevc.generator.render.read_inputs` calls.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..repo import load_roundtrip, to_plain
from ._apps import APPS
from ._common import generated

CHART_EXCLUDE = {"__pycache__", "__init__.py"}


def read_chart_files(source: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for app in APPS:
        chart = source / app
        if not (chart / "Chart.yaml").is_file():
            raise SpecError(f"chart {app} not found in {source} (kubevc installation incomplete)")
        for path in sorted(chart.rglob("*")):
            rel = path.relative_to(source)
            if path.is_file() and not (set(rel.parts) & CHART_EXCLUDE) and path.suffix != ".pyc":
                files[f"charts/{rel.as_posix()}"] = path.read_bytes()
    versions: dict[str, Any] = {}
    for app in APPS:
        meta = to_plain(load_roundtrip((source / app / "Chart.yaml").read_text(), "Chart.yaml"))
        digest = hashlib.sha256()
        for name, content in sorted(files.items()):
            if name.startswith(f"charts/{app}/"):
                digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
        versions[app] = {
            "version": str(meta.get("version")),
            "appVersion": str(meta.get("appVersion", "")),
            "sha256": digest.hexdigest(),
        }
    try:
        kubevc_version = version("kubevc")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        kubevc_version = "0+unknown"
    files["charts/VERSIONS.yaml"] = generated({"vendoredBy": f"kubevc {kubevc_version}", "charts": versions})
    return files
