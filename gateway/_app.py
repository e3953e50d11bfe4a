"""The app factory: one Litestar app with every route registered in one place."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException

from kubevc.gateway._config import GatewayConfig
from kubevc.gateway._errors import GatewayError
from kubevc.gateway._gateway import Gateway
from kubevc.gateway._responses import error_response
from kubevc.gateway._routes_health import HEALTH_HANDLERS
from kubevc.gateway._routes_v1 import V1_HANDLERS
from kubevc.gateway._routes_v2 import V2_MODEL_HANDLERS

__all__ = ["create_app"]

log = logging.getLogger("kubevc.gateway")


def create_app(config: GatewayConfig) -> Litestar:
    """The Litestar app for ``config``; gRPC channels open at startup and close at shutdown.

    The routes find the :class:`Gateway` in ``app.state.gateway``."""
    gw = Gateway(config)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await gw.startup()
        try:
            yield
        finally:
            await gw.shutdown()

    app = Litestar(
        route_handlers=[*HEALTH_HANDLERS, *V1_HANDLERS, *V2_MODEL_HANDLERS],
        lifespan=[lifespan],
        exception_handlers={HTTPException: _http_exception, Exception: _internal},
        request_max_body_size=None,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
    app.state.gateway = gw
    return app


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else "error"
    return error_response(GatewayError(message, exc.status_code))


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
    return error_response(GatewayError("internal error", 500))
