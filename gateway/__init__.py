"""kubevc.gateway: the edge inference gateway (media/JSON in, protobuf gRPC out, JSON back).

Public API::

    from kubevc.gateway import load_config, create_app, serve
    config = load_config("gateway.yaml")
    app = create_app(config)              # a Litestar app (ASGI)
    with serve(config) as gw:             # uvicorn on a free loopback port, in a thread
        ...

``kubevc.gateway.testing`` holds a real gRPC model server for tests and demos.
"""

from kubevc.gateway._app import create_app
from kubevc.gateway._backends import Backend, CircuitBreaker, TFServingBackend, V2Backend
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
    PayloadTooLarge,
    UnsupportedMediaType,
    WireError,
)
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
    "PayloadTooLarge",
    "ServerConfig",
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
