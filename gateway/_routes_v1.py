"""``/v1/models/...``: TF Serving's REST API (``:predict``, status, metadata) and the gateway's
own ``/infer`` (media in, post-processed JSON out)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from kubevc.gateway._decode import accepted_media_type, decode_infer, decode_predict
from kubevc.gateway._errors import BadRequest, GatewayError, ModelNotFound
from kubevc.gateway._gateway import Gateway, RouteBody, gateway_of
from kubevc.gateway._metadata import pb_json, tf_metadata
from kubevc.gateway._profile import Profile
from kubevc.gateway._proto.tensorflow_serving import get_model_metadata_pb2
from kubevc.gateway._responses import JSON, REQUEST_ID, dumps, is_big, version_headers
from kubevc.gateway._rest import format_predict
from kubevc.gateway._results import infer_result

__all__ = ["V1_HANDLERS", "parse_v1_get", "parse_v1_post"]

V1Path = tuple[str, str, int | None, str | None]  # model name, route, version, label
# what a parsed path asks for -> the route's work, given its start time
Work = Callable[[Gateway, Request[Any, Any, Any], Profile, V1Path], RouteBody]


@post("/v1/models/{rest:path}", status_code=200)
async def v1_post(request: Request[Any, Any, Any], rest: FromPath[str]) -> Response[bytes]:
    return await _dispatch(request, rest, parse_v1_post, _post_work)


@get("/v1/models/{rest:path}")
async def v1_get(request: Request[Any, Any, Any], rest: FromPath[str]) -> Response[bytes]:
    return await _dispatch(request, rest, parse_v1_get, _get_work)


V1_HANDLERS = [v1_post, v1_get]


async def _dispatch(
    request: Request[Any, Any, Any], rest: str, parse: Callable[[str], V1Path], work: Work
) -> Response[bytes]:
    """Path -> (model, route, version, label) -> the route's work under ``Gateway.handle``; a path
    that names no route or an unknown model is answered (and counted) as an error."""
    gw = gateway_of(request)
    try:
        name, route, version, label = parse(rest)
    except GatewayError as exc:
        return await gw.fail(request, "unknown", "v1", exc)
    profile = gw.profiles.get(name)
    if profile is None:
        return await gw.fail(request, name, route, ModelNotFound(f"model {name!r} is not configured"))
    return await gw.handle(request, name, route, work(gw, request, profile, (name, route, version, label)))


def _post_work(gw: Gateway, request: Request[Any, Any, Any], profile: Profile, path: V1Path) -> RouteBody:
    _, route, version, label = path
    if route == "infer":
        return lambda t0: infer(gw, request, profile, t0)
    return lambda t0: predict(gw, request, profile, version, label, t0)


def _get_work(gw: Gateway, request: Request[Any, Any, Any], profile: Profile, path: V1Path) -> RouteBody:
    _, route, version, label = path
    if route == "metadata":
        return lambda t0: model_metadata(gw, profile, version, label)
    return lambda t0: model_status(gw, profile, version, label)


def parse_v1_post(rest: str) -> V1Path:
    """``name[:predict]``, ``name/versions/3:predict``, ``name/labels/x:predict``, ``name/infer``."""
    rest = rest.lstrip("/")
    if rest.endswith("/infer"):
        name = rest[: -len("/infer")]
        if "/" in name or not name:
            raise ModelNotFound(f"no route /v1/models/{rest}")
        return name, "infer", None, None
    if not rest.endswith(":predict"):
        raise ModelNotFound(f"no route /v1/models/{rest} (use :predict or /infer)")
    path = rest[: -len(":predict")]
    parts = path.split("/")
    if len(parts) == 1 and parts[0]:
        return parts[0], "predict", None, None
    if len(parts) == 3 and parts[1] == "versions":
        try:
            return parts[0], "predict", int(parts[2]), None
        except ValueError:
            raise BadRequest(f"version {parts[2]!r} is not an integer") from None
    if len(parts) == 3 and parts[1] == "labels" and parts[2]:
        return parts[0], "predict", None, parts[2]
    raise ModelNotFound(f"no route /v1/models/{rest}")


def parse_v1_get(rest: str) -> V1Path:
    """``name``, ``name/versions/3``, ``name/labels/x``, each optionally with ``/metadata``."""
    if rest.endswith(("/infer", ":predict", ":classify", ":regress")):
        raise GatewayError(f"/v1/models/{rest.lstrip('/')} takes POST", 405)
    parts = rest.strip("/").split("/")
    route = "status"
    if len(parts) in (2, 4) and parts[-1] == "metadata":
        route, parts = "metadata", parts[:-1]
    if len(parts) == 1 and parts[0]:
        return parts[0], route, None, None
    if len(parts) == 3 and parts[1] == "versions":
        try:
            return parts[0], route, int(parts[2]), None
        except ValueError:
            raise BadRequest(f"version {parts[2]!r} is not an integer") from None
    if len(parts) == 3 and parts[1] == "labels" and parts[2]:
        return parts[0], route, None, parts[2]
    raise ModelNotFound(f"no route GET /v1/models/{rest}")


async def infer(
    gw: Gateway, request: Request[Any, Any, Any], profile: Profile, started: float
) -> Response[bytes]:
    """``POST /v1/models/{name}/infer``: media -> tensors -> backend -> post-processed JSON."""
    cfg = profile.cfg
    content_type = request.headers.get("content-type", "")
    accepted_media_type(profile, content_type)
    gw.fail_fast(profile)
    await gw.ensure_signature(profile)
    body = await gw.read_body(request, cfg.name)
    decoded = await decode_infer(
        profile, body, content_type, request.headers, gw.config.limits, gw.stages(cfg.name), gw.pool
    )
    info: dict[str, Any] = {}
    outputs = await gw.call_backend(
        profile,
        decoded.inputs,
        started,
        output_filter=profile.output_filter,
        request_id=request.headers.get(REQUEST_ID),
        info=info,
    )
    with gw.stage(cfg.name, "postprocess"):
        data = dumps(infer_result(profile, outputs, decoded.geometries, decoded.times))
    return Response(data, media_type=JSON, headers=version_headers(info))


async def predict(
    gw: Gateway,
    request: Request[Any, Any, Any],
    profile: Profile,
    version: int | None,
    label: str | None,
    started: float,
) -> Response[bytes]:
    """``POST /v1/models/{name}[/versions/N|/labels/L]:predict``: TF Serving REST JSON both ways."""
    model = profile.cfg.name
    gw.fail_fast(profile)
    await gw.ensure_signature(profile)
    body = await gw.read_body(request, model)
    inputs, columnar, signature = await decode_predict(profile, body, gw.stages(model), gw.pool)
    info: dict[str, Any] = {}
    outputs = await gw.call_backend(
        profile,
        inputs,
        started,
        version=version,
        label=label,
        signature=signature,
        request_id=request.headers.get(REQUEST_ID),
        info=info,
    )
    with gw.stage(model, "postprocess"):
        payload = format_predict(outputs, columnar)
        data = await asyncio.to_thread(dumps, payload) if is_big(outputs) else dumps(payload)
    return Response(data, media_type=JSON, headers=version_headers(info))


async def model_status(
    gw: Gateway, profile: Profile, version: int | None, label: str | None
) -> Response[bytes]:
    """``GET /v1/models/{name}[/versions/N|/labels/L]``: TF Serving's GetModelStatus as its REST
    API shows it (``model_version_status`` with versions as strings and enum names)."""
    status = await gw.backend_for(profile).model_status(
        profile.cfg.remote_name, version=version, label=label, budget=gw.backend_budget(profile)
    )
    return Response(dumps(pb_json(status)), media_type=JSON)


async def model_metadata(
    gw: Gateway, profile: Profile, version: int | None, label: str | None
) -> Response[bytes]:
    """``GET /v1/models/{name}[/versions/N|/labels/L]/metadata``: the backend's signature_def
    (TF Serving GetModelMetadata); from the gateway profile when the backend has no such call."""
    backend = gw.backend_for(profile)
    response: get_model_metadata_pb2.GetModelMetadataResponse | None
    try:
        response = await backend.model_metadata(
            profile.cfg.remote_name, version=version, label=label, budget=gw.backend_budget(profile)
        )
    except GatewayError as exc:
        if exc.grpc_code != "UNIMPLEMENTED":
            raise
        response = None
    doc = tf_metadata(profile, response, version, label, backend.cfg.name)
    return Response(dumps(doc), media_type=JSON)
