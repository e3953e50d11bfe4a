"""The deploy suites' one command timer and the fleet-scale suite's size knobs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bench.suites.deploy import region_add_args, timed, timed_cpu
from bench.suites.deploy_scale import sizes_from_env

BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.2: pass"


def test_timed_cpu_counts_the_command_and_says_why_it_failed(tmp_path: Path) -> None:
    wall, cpu = timed_cpu([sys.executable, "-c", BUSY], tmp_path, dict(os.environ))
    assert cpu >= 0.2 and wall >= 0.2  # the CPU of the child process is counted
    assert timed([sys.executable, "-c", "pass"], tmp_path, dict(os.environ)) > 0
    fail = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    with pytest.raises(RuntimeError, match=r"failed \(3\): boom"):
        timed_cpu(fail, tmp_path, dict(os.environ))
    assert timed_cpu(fail, tmp_path, dict(os.environ), ok=(0, 3))[1] >= 0


def test_region_add_args_name_the_region_and_its_storage() -> None:
    args = region_add_args("r0001", "https://10.8.0.1:6443", "--arch", "arm64")
    i = args.index("add")
    assert args[i - 1] == "region"
    assert args[i + 1 :] == [
        "r0001", "--api-endpoint", "https://10.8.0.1:6443", "--arch", "arm64",
        "--nfs-server", "10.8.0.10", "--nfs-path", "/export/models",
    ]  # fmt: skip


def test_scale_sizes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBEVC_BENCH_SCALE_SIZES", raising=False)
    monkeypatch.delenv("KUBEVC_BENCH_SCALE_VALIDATE_SIZES", raising=False)
    assert sizes_from_env((10, 50), (50,)) == ((10, 50), (50,))
    monkeypatch.setenv("KUBEVC_BENCH_SCALE_SIZES", "10,100,500")
    assert sizes_from_env((10, 50), (50,)) == ((10, 100, 500), (100, 500))
    monkeypatch.setenv("KUBEVC_BENCH_SCALE_VALIDATE_SIZES", "")  # region add at 500, no validate
    assert sizes_from_env((10, 50), (50,)) == ((10, 100, 500), ())
    monkeypatch.setenv("KUBEVC_BENCH_SCALE_VALIDATE_SIZES", "100")
    assert sizes_from_env((10, 50), (50,)) == ((10, 100, 500), (100,))
