"""``python -m bench.serve_backend --host H --port P``: the gateway's test PredictionService server
(``kubevc.gateway.testing``, numpy models of the real shapes) bound to one address, in its own
process, so the benchmark client can reach it from another network namespace. Prints ``READY``."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

from bench.procs import serve_main
from kubevc.gateway import testing


async def _start(host: str, port: int) -> tuple[int, Callable[[], Awaitable[None]]]:
    backend = testing.TestBackend(host=host, max_message_bytes=128 << 20)
    await backend.start(port)

    async def stop() -> None:
        await backend.stop(0.2)

    return backend.port, stop


def main(argv: list[str] | None = None) -> int:
    return serve_main("python -m bench.serve_backend", _start, argv)


if __name__ == "__main__":
    sys.exit(main())
