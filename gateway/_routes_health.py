"""Probes and metrics: ``/healthz``, ``/readyz``, ``/metrics`` and the Open Inference Protocol's
server-level ``/v2``, ``/v2/health/live``, ``/v2/health/ready``."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from kubevc.gateway._gateway import gateway_of
from kubevc.gateway._metrics import CONTENT_TYPE
from kubevc.gateway._responses import JSON, json_response

__all__ = ["HEALTH_HANDLERS"]

SERVER_METADATA = {"name": "kubevc-gateway", "version": "0.1.0", "extensions": ["binary_tensor_data"]}


@get("/healthz", sync_to_thread=False)
def healthz() -> Response[bytes]:
    return Response(b'{"status":"ok"}', media_type=JSON)


@get("/readyz")
async def readyz(request: Request[Any, Any, Any]) -> Response[bytes]:
    gw = gateway_of(request)
    models = await gw.ready()
    ok = all(models.values())
    doc: dict[str, Any] = {"ready": ok, "models": models}
    errors = gw.not_ready_reasons()
    if errors:  # the config contradicts a backend's signature: say which and how
        doc["errors"] = errors
    return json_response(doc, 200 if ok else 503)


@get("/metrics", sync_to_thread=False)
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    return Response(gateway_of(request).render_metrics(), media_type=CONTENT_TYPE)


@get("/v2/health/live", sync_to_thread=False)
def v2_live() -> Response[bytes]:
    return Response(b'{"live":true}', media_type=JSON)


@get("/v2/health/ready")
async def v2_ready(request: Request[Any, Any, Any]) -> Response[bytes]:
    ok = all((await gateway_of(request).ready()).values())
    return json_response({"ready": ok}, 200 if ok else 503)


@get("/v2", sync_to_thread=False)
def v2_server() -> Response[bytes]:
    return json_response(SERVER_METADATA)


HEALTH_HANDLERS = [healthz, readyz, metrics, v2_live, v2_ready, v2_server]
