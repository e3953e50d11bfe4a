"""``python -m bench.serve_sink --host H --port P``: a TCP sink for wire-only timing.

Each request is a 16-byte header (request length, reply length; little-endian u64) followed by the
request bytes; the sink reads them all, then answers with that many reply bytes. No parsing, no
compute: the round trip is the link's transfer time for those byte counts. Prints ``READY``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import struct
import sys

HEADER = struct.Struct("<QQ")
CHUNK = 1 << 20


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readexactly(HEADER.size)
            except asyncio.IncompleteReadError:
                break
            n_in, n_out = HEADER.unpack(head)
            while n_in:
                chunk = await reader.read(min(CHUNK, n_in))
                if not chunk:
                    return
                n_in -= len(chunk)
            block = b"\0" * min(CHUNK, max(n_out, 1))
            while n_out:
                take = min(n_out, len(block))
                writer.write(block[:take])
                n_out -= take
            await writer.drain()
    finally:
        writer.close()


async def _main(host: str, port: int) -> None:
    server = await asyncio.start_server(_serve, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {host}:{server.sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(_main(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
