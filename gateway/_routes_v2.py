"""``/v2/models/...``: the Open Inference Protocol (KServe v2) REST API: metadata, readiness, infer."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from kubevc.gateway._decode import decode_v2
from kubevc.gateway._errors import BadRequest, GatewayError, ModelNotFound
from kubevc.gateway._gateway import Gateway, gateway_of
from kubevc.gateway._metadata import v2_metadata
from kubevc.gateway._profile import Profile
from kubevc.gateway._responses import JSON, REQUEST_ID, error_response, json_response, version_headers
from kubevc.gateway._v2json import HEADER_LENGTH, format_v2

__all__ = ["V2_MODEL_HANDLERS"]


@get("/v2/models/{name:str}")
async def v2_model(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    return await _metadata_route(request, name, None)


@get("/v2/models/{name:str}/versions/{version:str}")
async def v2_model_version(
    request: Request[Any, Any, Any], name: FromPath[str], version: FromPath[str]
) -> Response[bytes]:
    return await _metadata_route(request, name, version)


@get("/v2/models/{name:str}/ready")
async def v2_model_ready(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    return await _ready_route(request, name, None)


@get("/v2/models/{name:str}/versions/{version:str}/ready")
async def v2_model_version_ready(
    request: Request[Any, Any, Any], name: FromPath[str], version: FromPath[str]
) -> Response[bytes]:
    return await _ready_route(request, name, version)


def _version(version: str | None) -> int | None:
    if version is None:
        return None
    try:
        return int(version)
    except ValueError:
        raise BadRequest(f"version {version!r} is not an integer") from None


async def _metadata_route(request: Request[Any, Any, Any], name: str, version: str | None) -> Response[bytes]:
    """``GET /v2/models/{name}[/versions/{v}]``: the backend's metadata (TF Serving's signature_def
    or the v2 server's own) under the gateway's model name; the profile's when the backend has none."""
    gw = gateway_of(request)
    profile = gw.profiles.get(name)
    if profile is None:
        return error_response(ModelNotFound(f"model {name!r} is not configured"))
    cfg = profile.configured or profile.cfg
    try:
        signature = await gw.backend_for(profile).signature(
            cfg.remote_name, cfg.signature, version=_version(version), budget=gw.backend_budget(profile)
        )
    except GatewayError as exc:
        if version is not None or exc.status_code not in (502, 503, 504):
            return error_response(exc)
        signature = None  # the backend is down: what the gateway knows
    doc = signature.to_v2(name, profile.output_names) if signature is not None else v2_metadata(profile)
    # extension fields: how the gateway feeds the model, and where it learnt its signature
    doc["kubevc"] = {
        "wire_form": profile.wire_form,
        "signature": profile.signature.source if profile.signature is not None else None,
        "ready_error": profile.signature_error,
    }
    return json_response(doc)


async def _ready_route(request: Request[Any, Any, Any], name: str, version: str | None) -> Response[bytes]:
    gw = gateway_of(request)
    profile = gw.profiles.get(name)
    if profile is None:
        return error_response(ModelNotFound(f"model {name!r} is not configured"))
    try:
        v = _version(version)
    except GatewayError as exc:
        return error_response(exc)
    backend = gw.backend_for(profile)
    if v is None:
        ok = await backend.model_ready(profile.cfg.remote_name, budget=2.0)
    else:
        ok = await backend.version_ready(profile.cfg.remote_name, v, budget=2.0)
    ok = ok and not profile.signature_error
    doc: dict[str, Any] = {"name": name, "ready": ok}
    if version is not None:
        doc["version"] = version
    return json_response(doc, 200 if ok else 503)


@post("/v2/models/{name:str}/infer", status_code=200)
async def v2_infer(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    return await _v2_infer_route(request, name, None)


@post("/v2/models/{name:str}/versions/{version:str}/infer", status_code=200)
async def v2_infer_version(
    request: Request[Any, Any, Any], name: FromPath[str], version: FromPath[str]
) -> Response[bytes]:
    return await _v2_infer_route(request, name, version)


V2_MODEL_HANDLERS = [
    v2_model,
    v2_model_version,
    v2_model_ready,
    v2_model_version_ready,
    v2_infer,
    v2_infer_version,
]


async def _v2_infer_route(request: Request[Any, Any, Any], name: str, version: str | None) -> Response[bytes]:
    gw = gateway_of(request)
    profile = gw.profiles.get(name)
    if profile is None:
        return await gw.fail(request, name, "v2", ModelNotFound(f"model {name!r} is not configured"))
    return await gw.handle(request, name, "v2", lambda t0: infer(gw, request, profile, version, t0))


async def infer(
    gw: Gateway, request: Request[Any, Any, Any], profile: Profile, version: str | None, started: float
) -> Response[bytes]:
    """``POST /v2/models/{name}[/versions/{v}]/infer``: v2 JSON or binary tensors both ways."""
    model = profile.cfg.name
    gw.fail_fast(profile)
    await gw.ensure_signature(profile)
    body = await gw.read_body(request, model)
    req = await decode_v2(profile, body, request.headers.get(HEADER_LENGTH), gw.stages(model), gw.pool)
    v = None
    if version:
        try:
            v = int(version)
        except ValueError:
            raise BadRequest(f"version {version!r} is not an integer") from None
    info: dict[str, Any] = {}
    outputs = await gw.call_backend(
        profile,
        req.inputs,
        started,
        version=v,
        output_filter=req.outputs or None,
        request_id=request.headers.get(REQUEST_ID),
        info=info,
    )
    with gw.stage(model, "postprocess"):
        data, header_len = format_v2(model, version or "", req, outputs)
    headers = version_headers(info)
    if header_len is None:
        return Response(data, media_type=JSON, headers=headers)
    headers["Inference-Header-Content-Length"] = str(header_len)
    return Response(data, media_type="application/octet-stream", headers=headers)
