"""``python -m bench.serve_sink --host H --port P``: a TCP sink for wire-only timing.

Each request is a 16-byte header (request length, reply length; little-endian u64) followed by the
request bytes; the sink reads them all, then answers with that many reply bytes. No parsing, no
compute: the round trip is the link's transfer time for those byte counts. Prints ``READY``.
"""

from __future__ import annotations

import asyncio
import struct
import sys
from collections.abc import Awaitable, Callable

from bench.procs import serve_main

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


async def _start(host: str, port: int) -> tuple[int, Callable[[], Awaitable[None]]]:
    server = await asyncio.start_server(_serve, host, port)

    async def stop() -> None:
        server.close()

    return server.sockets[0].getsockname()[1], stop


def main(argv: list[str] | None = None) -> int:
    return serve_main("python -m bench.serve_sink", _start, argv)


if __name__ == "__main__":
    sys.exit(main())
