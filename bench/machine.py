"""What the numbers were measured on: CPU model, cores, kernel, Python, numpy and its BLAS."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any


def cpu_model(cpuinfo: str | None = None) -> str:
    """The ``model name`` line of /proc/cpuinfo (first CPU), or the platform's processor string."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("model name", "Model", "Hardware", "cpu model") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    """CPUs this process may run on (affinity), which is what a benchmark can use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def memory_total_mib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


def blas_info() -> list[dict[str, Any]]:
    """numpy's BLAS as threadpoolctl sees it (if installed), else numpy's build configuration."""
    try:
        import numpy  # noqa: F401  (loads the BLAS library so threadpoolctl can see it)
        from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

        return [
            {
                k: v
                for k, v in info.items()
                if k
                in ("user_api", "internal_api", "version", "num_threads", "architecture", "threading_layer")
            }
            for info in threadpool_info()
        ]
    except ImportError:
        pass
    try:
        import numpy as np

        config: Any = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {}) if isinstance(config, dict) else {}
        return [{"internal_api": blas.get("name"), "version": blas.get("version"), "source": "numpy config"}]
    except Exception:  # pragma: no cover - very old numpy
        return []


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def machine_info() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu_model": cpu_model(),
        "cores": usable_cores(),
        "cpu_count": os.cpu_count(),
        "memory_mib": memory_total_mib(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "python": sys.version.split()[0],
        "numpy": _version("numpy"),
        "protobuf": _version("protobuf"),
        "grpcio": _version("grpcio"),
        "orjson": _version("orjson"),
        "blas": blas_info(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }
