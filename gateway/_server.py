"""Running the gateway: JSON logging, uvicorn with graceful drain, and a threaded runner for tests."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import uvicorn

from kubevc.gateway._app import create_app
from kubevc.gateway._config import GatewayConfig

__all__ = ["GatewayServer", "JsonFormatter", "configure_logging", "run", "serve"]

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


def _uvicorn_config(config: GatewayConfig) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(config),
        host=config.server.host,
        port=config.server.port,
        log_config=None,
        log_level=config.server.log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(config.server.drain_seconds) or None,
        server_header=False,
        loop="asyncio",
        http="auto",  # httptools when installed, else h11
    )


def run(config: GatewayConfig) -> None:
    """Serve until SIGTERM/SIGINT; then stop accepting and drain in-flight requests."""
    configure_logging(config.server.log_level)
    logging.getLogger("kubevc.gateway").info(
        "starting",
        extra={
            "host": config.server.host,
            "port": config.server.port,
            "models": [m.name for m in config.models],
        },
    )
    uvicorn.Server(_uvicorn_config(config)).run()


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
        ucfg = _uvicorn_config(config)
        ucfg.host, ucfg.port = host, self.port
        self.server = uvicorn.Server(ucfg)
        self.app = ucfg.app
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
