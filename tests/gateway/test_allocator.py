"""The gateway's glibc malloc settings (``_allocator``): buffers of a few MiB are reused from the
heap instead of being mapped and faulted in again on every request; the environment wins."""

from __future__ import annotations

import os
import subprocess
import sys

from kubevc.gateway._allocator import MALLOC_DEFAULTS, tune_malloc

# what a request does many times: numpy temporaries of 1-12 MiB, made and freed
SCRIPT = """
import resource, sys
import numpy as np
from kubevc.gateway._allocator import tune_malloc

applied = tune_malloc() if sys.argv[1] == "tune" else {}
text = np.random.default_rng(0).integers(0, 256, 3 << 20, dtype=np.uint8)

def work():
    positions = np.flatnonzero(text < 100)
    return int((positions + 1).astype(np.int32)[:10].sum())

work()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    work()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, ",".join(sorted(applied)))
"""


def _faults(mode: str, **env: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], env={**clean, **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]), out[1] if len(out) > 1 else ""


def test_buffers_of_a_few_mib_are_reused_without_page_faults() -> None:
    plain, _ = _faults("plain")
    tuned, applied = _faults("tune")
    assert applied == ",".join(sorted(MALLOC_DEFAULTS))
    # 20 rounds of ~24 MiB of temporaries: thousands of faults per round by default, ~none tuned
    assert plain > 20_000, plain
    assert tuned < plain // 20, (tuned, plain)


def test_a_setting_in_the_environment_wins() -> None:
    faults, applied = _faults("tune", MALLOC_MMAP_THRESHOLD_="1000000")
    assert applied == "MALLOC_ARENA_MAX,MALLOC_TRIM_THRESHOLD_"
    assert faults > 20_000  # the environment's 1 MB mmap threshold stayed in force
    assert set(tune_malloc({name: "1" for name in MALLOC_DEFAULTS})) == set()
