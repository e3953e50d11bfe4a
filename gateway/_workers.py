"""The decode worker pool: bounded threads, a bounded queue and a bound on pixels in memory.

Every CPU-heavy decode (images, video, large JSON) runs here, never on the event loop and never in
an unbounded number of threads. A job declares its *cost* up front (the decoded pixels it will hold
at its peak, read from the image headers): it starts when a worker is free and the pixels of the
running jobs plus its own stay within ``max_pixels`` (a job larger than that runs alone). When
``queue`` jobs are already waiting the pool refuses at once (:class:`Overloaded`, a JSON 503), so
memory stays bounded however many requests arrive.

A thread cannot be interrupted, so cancellation is cooperative: the job receives a
:class:`threading.Event` that is set when its caller gives up (deadline, client gone, drain) and
checks it between images or frames. Its worker and its pixels stay reserved until the thread
really returns, whatever happened to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from kubevc.gateway._errors import Overloaded, RequestStopped

__all__ = ["DecodePool", "raise_if_cancelled"]

T = TypeVar("T")
# After a job that held this many pixels, free memory goes back to the OS at once: glibc keeps a
# freed 150 MB decode in the worker thread's arena otherwise, one per worker, and the RSS with it.
TRIM_AFTER_PIXELS = 4_000_000


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim this way
        return None
    return trim


_malloc_trim = _load_malloc_trim()


def raise_if_cancelled(cancel: threading.Event) -> None:
    """Checked by jobs between units of work (an image, a frame)."""
    if cancel.is_set():
        raise RequestStopped("request stopped")


def _run_and_trim(job: Callable[[threading.Event], T], cancel: threading.Event, cost: int) -> T:
    try:
        return job(cancel)
    finally:
        if cost >= TRIM_AFTER_PIXELS and _malloc_trim is not None:
            _malloc_trim(0)


@dataclass(eq=False)  # compared by identity: two waiters of the same cost are not the same
class _Waiter:
    cost: int
    ready: asyncio.Future[None] = field(repr=False)


class DecodePool:
    """``await pool.run(job, cost)`` runs ``job(cancel_event)`` in a worker thread, admitted by
    the bounds above. Use from one event loop; ``close`` when the app stops."""

    def __init__(self, workers: int, queue: int, max_pixels: int) -> None:
        self.workers = workers
        self.queue = queue
        self.max_pixels = max_pixels
        self.running = 0
        self.pixels = 0
        self.rejected = 0
        self._waiting: deque[_Waiter] = deque()
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="kubevc-decode")

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _fits(self, cost: int) -> bool:
        if self.running >= self.workers:
            return False
        return self.running == 0 or self.pixels + cost <= self.max_pixels

    def _take(self, cost: int) -> None:
        self.running += 1
        self.pixels += cost

    def _release(self, cost: int) -> None:
        self.running -= 1
        self.pixels -= cost
        # first come, first served: a large job at the head is not overtaken by small ones
        while self._waiting and self._fits(self._waiting[0].cost):
            waiter = self._waiting.popleft()
            if waiter.ready.done():  # its caller gave up while it waited
                continue
            self._take(waiter.cost)
            waiter.ready.set_result(None)

    async def _admit(self, cost: int) -> None:
        if not self._waiting and self._fits(cost):
            self._take(cost)
            return
        if len(self._waiting) >= self.queue:
            self.rejected += 1
            raise Overloaded("the gateway is busy decoding other requests: retry shortly")
        waiter = _Waiter(cost, asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        try:
            await waiter.ready
        except asyncio.CancelledError:
            if waiter.ready.done() and not waiter.ready.cancelled():
                self._release(cost)  # admitted in the same instant it was cancelled
            elif waiter in self._waiting:  # (a release may have dropped it already)
                self._waiting.remove(waiter)
            raise

    async def run(self, job: Callable[[threading.Event], T], cost: int) -> T:
        """``job(cancel)`` in a worker once admitted; 503 :class:`Overloaded` when the queue is full."""
        await self._admit(cost)
        loop = asyncio.get_running_loop()
        cancel = threading.Event()
        try:
            future: Future[T] = self._executor.submit(_run_and_trim, job, cancel, cost)
        except BaseException:
            self._release(cost)
            raise
        # the worker and its pixels are held until the thread returns, not until the caller leaves
        future.add_done_callback(lambda _: self._release_from_thread(loop, cost))
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancel.set()
            raise

    def _release_from_thread(self, loop: asyncio.AbstractEventLoop, cost: int) -> None:
        # a closed loop (RuntimeError): the app stopped and nothing waits any more
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._release, cost)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
