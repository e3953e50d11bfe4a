"""glibc malloc settings for the gateway's own process (issue 18: page faults per request).

A request handles buffers of a few MiB each: the request body, the decoded image, the batch
tensor, numpy's temporaries, and the 8.5 MB raw YOLO answer grpcio receives. glibc serves every
allocation above its mmap threshold (128 KiB at start, adapted up to 32 MiB only as freed blocks
teach it) with a fresh ``mmap`` and gives it back with ``munmap`` when freed: every page of such a
buffer is a page fault again on the next request. Measured on the integer JSON reader (numpy
temporaries of 0.3-2.4 MB): 500,000 minor faults and 30 ms/MiB by default, 14,000 and 13 ms/MiB
with these settings, in the same process.

So the gateway sets, at start, unless the environment already sets them (glibc reads
``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` itself, and those win):
blocks below 32 MiB come from the heap and are reused; up to 64 MiB of free heap top is kept
before it is returned to the system; two arenas (the event loop and the decode workers share
them, instead of one per thread). The decode pool still trims after large decodes
(``_workers.TRIM_AFTER_PIXELS``), so an image bomb's memory does not stay.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Mapping

__all__ = ["MALLOC_DEFAULTS", "tune_malloc"]

# glibc's environment variable for each setting, its mallopt() parameter and the gateway's value
MALLOC_DEFAULTS = {
    "MALLOC_ARENA_MAX": (-8, 2),  # M_ARENA_MAX
    "MALLOC_MMAP_THRESHOLD_": (-3, 32 << 20),  # M_MMAP_THRESHOLD
    "MALLOC_TRIM_THRESHOLD_": (-1, 64 << 20),  # M_TRIM_THRESHOLD
}


def tune_malloc(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Apply each of ``MALLOC_DEFAULTS`` that ``environ`` does not set; returns what was applied
    (empty where the C library is not glibc: musl and others have no such knobs)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return {}
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = {}
    for name, (param, value) in MALLOC_DEFAULTS.items():
        if name in environ:
            continue
        if mallopt(param, value) == 1:  # mallopt returns 1 on success
            applied[name] = value
    return applied
