"""kubevc.gateway: the edge inference gateway (media/JSON in, protobuf gRPC out, JSON back).

Public API::

    from kubevc.gateway import load_config, create_app, serve
    config = load_config("gateway.yaml")
    app = create_app(config)              # a Litestar app (ASGI)
    with serve(config) as gw:             # uvicorn on a free loopback port, in a thread
        ...

``kubevc.gateway.testing`` holds a real gRPC model server for tests and demos.

The configuration and the errors need only the base install; the app, the backends and the
server need the ``gateway`` extra (litestar, grpcio, numpy, ...) and are imported on first use, so
that ``kubevc-gateway`` can say which extra to install instead of failing on import.
"""

import importlib
import typing

from kubevc.gateway._config import (
    BackendConfig,
    GatewayConfig,
    InputConfig,
    LimitsConfig,
    ModelConfig,
    OutputConfig,
    ServerConfig,
    load_config,
    parse_config,
)
from kubevc.gateway._errors import (
    BackendError,
    BackendUnavailable,
    BadRequest,
    ConfigError,
    GatewayError,
    GatewayTimeout,
    KubevcGatewayError,
    ModelNotFound,
    Overloaded,
    PayloadTooLarge,
    RequestStopped,
    SignatureMismatch,
    UnsupportedMediaType,
    WireError,
)

if typing.TYPE_CHECKING:
    from kubevc.gateway._app import create_app
    from kubevc.gateway._backends import Backend, CircuitBreaker, TFServingBackend, V2Backend
    from kubevc.gateway._gateway import Gateway
    from kubevc.gateway._server import GatewayServer, run, serve

__all__ = [
    "Backend",
    "BackendConfig",
    "BackendError",
    "BackendUnavailable",
    "BadRequest",
    "CircuitBreaker",
    "ConfigError",
    "Gateway",
    "GatewayConfig",
    "GatewayError",
    "GatewayServer",
    "GatewayTimeout",
    "InputConfig",
    "KubevcGatewayError",
    "LimitsConfig",
    "ModelConfig",
    "ModelNotFound",
    "OutputConfig",
    "Overloaded",
    "PayloadTooLarge",
    "RequestStopped",
    "ServerConfig",
    "SignatureMismatch",
    "TFServingBackend",
    "UnsupportedMediaType",
    "V2Backend",
    "WireError",
    "create_app",
    "load_config",
    "parse_config",
    "run",
    "serve",
]

# name -> the private module that defines it, for the names that need the 'gateway' extra
_NEEDS_EXTRA = {
    "create_app": "kubevc.gateway._app",
    "Backend": "kubevc.gateway._backends",
    "CircuitBreaker": "kubevc.gateway._backends",
    "TFServingBackend": "kubevc.gateway._backends",
    "V2Backend": "kubevc.gateway._backends",
    "Gateway": "kubevc.gateway._gateway",
    "GatewayServer": "kubevc.gateway._server",
    "run": "kubevc.gateway._server",
    "serve": "kubevc.gateway._server",
}


def __getattr__(name: str) -> typing.Any:
    module = _NEEDS_EXTRA.get(name)
    if module is None:
        raise AttributeError(f"module 'kubevc.gateway' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups do not come here again
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
