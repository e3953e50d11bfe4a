"""Running the gateway: JSON logging, uvicorn with graceful drain, and a threaded runner for tests."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kubevc.gateway._allocator import tune_malloc
from kubevc.gateway._app import create_app
from kubevc.gateway._config import GatewayConfig, LimitsConfig
from kubevc.gateway._errors import KubevcGatewayError
from kubevc.gateway._gateway import Gateway

__all__ = ["GatewayServer", "JsonFormatter", "configure_logging", "run", "serve"]

log = logging.getLogger("kubevc.gateway")
_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}
_DRAIN_BACKSTOP_SECONDS = 5.0  # after the drain deadline's 503s, how long uvicorn still waits


class _Refused(KubevcGatewayError):
    """Raised from a parser callback to stop parsing a request that broke a header limit."""


_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # the gateway logs each request itself


class GatewayHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits uvicorn lacks: header bytes and count (431),
    a header-read timeout (408, or a silent close when nothing was sent), a keep-alive idle
    timeout in fractions of a second, and a cap on open connections (503). Every refusal is a
    short JSON body with ``Connection: close``, written before any request reaches the app."""

    limits: ClassVar[LimitsConfig]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn types it int; call_later takes any float
        self.timeout_keep_alive = cast(int, self.limits.keep_alive_seconds)
        self._reading_headers = True
        self._bytes_this_request = 0  # raw bytes received while the headers are incomplete
        self._header_size = 0
        self._header_count = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._refusal: tuple[int, str] | None = None

    # -- connection ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "too many open connections: retry shortly")
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        if self._reading_headers:
            self._bytes_this_request += len(data)
        super().data_received(data)  # a refusal in a callback ends in send_400_response
        if self._refusal is not None:
            return
        if self._reading_headers and self._bytes_this_request > self.limits.max_header_bytes:
            self._refuse(431, f"request headers are above {self.limits.max_header_bytes} bytes")

    def send_400_response(self, msg: str) -> None:
        if self._refusal is not None:  # the parser stopped because a callback refused the request
            self._write_refusal()
            return
        super().send_400_response(msg)

    # -- parser callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        self._header_size = 0
        self._header_count = 0
        if self._header_timer is None:
            self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._add_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_header_count:
            self._stop(431, f"more than {self.limits.max_header_count} request headers")
        self._add_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._bytes_this_request = 0
        self._disarm_header_timer()
        super().on_headers_complete()

    # -- helpers --------------------------------------------------------------------------------
    def _add_header_bytes(self, n: int) -> None:
        self._header_size += n
        if self._header_size > self.limits.max_header_bytes:
            self._stop(431, f"request headers are above {self.limits.max_header_bytes} bytes")

    def _stop(self, status: int, message: str) -> None:
        """Refuse from inside a parser callback: httptools turns the exception into a parser
        error, and ``send_400_response`` writes this refusal instead of uvicorn's plain 400."""
        self._refusal = (status, message)
        raise _Refused(message)

    def _refuse(self, status: int, message: str) -> None:
        self._refusal = (status, message)
        self._write_refusal()

    def _write_refusal(self) -> None:
        assert self._refusal is not None
        status, message = self._refusal
        self._disarm_header_timer()
        if self.transport.is_closing():
            return
        body = orjson.dumps({"error": message, "status": status})
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (status, _REASONS[status], len(body))
        )
        self.transport.write(head + body)
        self.transport.close()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.limits.header_timeout_seconds, self._header_timeout)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._reading_headers:
            return
        if self._bytes_this_request:
            self._refuse(408, f"request headers took longer than {self.limits.header_timeout_seconds} s")
        else:  # an idle connection that never sent a byte: just close it
            self.transport.close()


def _protocol_class(limits: LimitsConfig) -> type[GatewayHttpProtocol]:
    return type("GatewayHttpProtocol", (GatewayHttpProtocol,), {"limits": limits})


class _DrainingServer(uvicorn.Server):
    """uvicorn's server with the gateway's drain: at ``drainSeconds`` after SIGTERM every request
    still running answers a JSON 503 (instead of being cancelled into a 500 with a traceback),
    and a clean drain exits 0 (uvicorn would re-raise the signal and die by it)."""

    def __init__(self, config: uvicorn.Config, gateway: Gateway, drain_seconds: float) -> None:
        super().__init__(config)
        self.gateway = gateway
        self.drain_seconds = drain_seconds

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        timer = asyncio.get_running_loop().call_later(self.drain_seconds, self._drain_deadline)
        try:
            await super().shutdown(sockets)
        finally:
            timer.cancel()

    def _drain_deadline(self) -> None:
        stopped = self.gateway.stop_in_flight()
        if stopped:
            log.warning("drain deadline reached", extra={"answered_503": stopped})

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def _make_server(config: GatewayConfig, host: str, port: int) -> _DrainingServer:
    app = create_app(config)
    ucfg = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        log_level=config.server.log_level,
        access_log=False,
        lifespan="on",
        # the drain deadline is the gateway's (_DrainingServer); this is uvicorn's backstop after it
        timeout_graceful_shutdown=cast(int, config.server.drain_seconds + _DRAIN_BACKSTOP_SECONDS),
        server_header=False,
        loop="asyncio",
        http=_protocol_class(config.limits),
    )
    return _DrainingServer(ucfg, cast(Gateway, app.state.gateway), config.server.drain_seconds)


def run(config: GatewayConfig) -> None:
    """Serve until SIGTERM/SIGINT; then stop accepting and drain in-flight requests."""
    malloc = tune_malloc()  # first: before the worker and gRPC threads make their arenas
    configure_logging(config.server.log_level)
    logging.getLogger("kubevc.gateway").info(
        "starting",
        extra={
            "host": config.server.host,
            "port": config.server.port,
            "models": [m.name for m in config.models],
            "malloc": malloc,
        },
    )
    _make_server(config, config.server.host, config.server.port).run()


class GatewayServer:
    """A gateway on a free loopback port in a background thread (tests, demo, benchmarks)."""

    def __init__(self, config: GatewayConfig, host: str = "127.0.0.1") -> None:
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
        # and without it every keep-alive response waits ~40 ms for the client's delayed ACK
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.port: int = self.sock.getsockname()[1]
        self.host = host
        self.server = _make_server(config, host, self.port)
        self.app = self.server.config.app
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        def main() -> None:
            asyncio.run(self.server.serve(sockets=[self.sock]))

        self._thread = threading.Thread(target=main, name="kubevc-gateway", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.01)

    def stop(self, timeout: float = 20.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self.sock.close()


@contextmanager
def serve(config: GatewayConfig) -> Iterator[GatewayServer]:
    """``with serve(config) as gw: httpx.post(gw.url + ...)``"""
    server = GatewayServer(config)
    server.start()
    try:
        yield server
    finally:
        server.stop()
