"""``python -m bench.serve_backend --host H --port P``: the gateway's test PredictionService server
(``kubevc.gateway.testing``, numpy models of the real shapes) bound to one address, in its own
process, so the benchmark client can reach it from another network namespace. Prints ``READY``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from kubevc.gateway import testing


async def _main(host: str, port: int) -> None:
    backend = testing.TestBackend(host=host, max_message_bytes=128 << 20)
    await backend.start(port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {host}:{backend.port}", flush=True)
    await stop.wait()
    await backend.stop(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_backend")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(_main(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
