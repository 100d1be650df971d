"""The gateway's aiohttp application: the app's static files, the conversation WebSocket, a small
JSON API over the dialog's unary RPCs (session, reset) and Riva TTS's voice list, health and metrics.

    GET  /                               the app (static/index.html; static/ for the rest)
    GET  /ws                             one conversation (PROTOCOL.md)
    GET  /api/voices                     voices from GetRivaSynthesisConfig
    GET  /api/session/{session_id}       GetSession
    POST /api/session/{session_id}/reset ResetSession (clear_data)
    GET  /healthz                        200 while the process serves
    GET  /readyz                         200 when the dialog service's health is SERVING, else 503
    GET  /metrics                        Prometheus
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

import grpc
from aiohttp import web
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from riva.proto import riva_tts_pb2, riva_tts_pb2_grpc

from rivulet.core.tls import ChannelSecurity, open_channel
from rivulet.dialog.v1 import dialog_pb2 as pb
from rivulet.dialog.v1 import dialog_pb2_grpc
from rivulet.gateway import metrics
from rivulet.gateway.bridge import Conversation, Limits
from rivulet.gateway.protocol import SESSION_ID, Close, close_reason
from rivulet.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
SETTINGS = web.AppKey("settings", GatewaySettings)
CHANNELS = web.AppKey("channels", dict)
OPEN = web.AppKey("open", set)
DIALOG_SERVICE = "rivulet.dialog.v1.Dialog"
# The app is one origin and inserts text only as text; the policy makes that a rule.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# grpc status → HTTP status for the JSON API
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def origin_allowed(request: web.Request, allowed: frozenset[str]) -> bool:
    """Browsers always send Origin on a WebSocket upgrade; without one (a non-browser client) there
    is nothing to forge. Allowed: the listed origins, or else the gateway's own origin."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if allowed:
        return origin.rstrip("/") in allowed
    return urlsplit(origin).netloc.lower() == request.host.lower()


@web.middleware
async def security_headers(request: web.Request, handler):
    response = await handler(request)
    if not isinstance(response, web.WebSocketResponse):
        response.headers.update(SECURITY_HEADERS)
    return response


def dialog_stub(app: web.Application) -> dialog_pb2_grpc.DialogStub:
    return dialog_pb2_grpc.DialogStub(app[CHANNELS]["dialog"])


async def conversation(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if not origin_allowed(request, settings.allowed_origins):
        metrics.CONVERSATIONS.labels(str(Close.ORIGIN.value)).inc()
        return web.Response(status=403, text=f"origin {request.headers.get('Origin')} is not allowed")
    # aiohttp's own limit is set above ours, so an oversized message gets our close code and reason
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=max(65536, 4 * settings.gateway_max_frame_bytes))
    await ws.prepare(request)
    opened = request.app[OPEN]
    if len(opened) >= settings.gateway_max_conversations:
        reason = f"busy, try again: {len(opened)} conversations open"
        await ws.close(code=Close.BUSY, message=close_reason(reason).encode())
        metrics.CONVERSATIONS.labels(str(Close.BUSY.value)).inc()
        return ws
    limits = Limits(
        settings.gateway_max_frame_bytes, settings.gateway_max_frames_per_s, settings.gateway_start_timeout_s
    )
    bridge = Conversation(ws, dialog_stub(request.app), limits)
    opened.add(ws)
    metrics.OPEN_CONVERSATIONS.inc()
    with metrics.CONVERSATION_SECONDS.time():
        try:
            code = await bridge.run()
        finally:
            opened.discard(ws)
            metrics.OPEN_CONVERSATIONS.dec()
    metrics.CONVERSATIONS.labels(str(int(code))).inc()
    return ws


def _grpc_error(error: grpc.aio.AioRpcError) -> web.Response:
    status = HTTP_STATUS.get(error.code(), 502)
    return web.json_response({"code": error.code().name, "message": error.details()}, status=status)


def _session_id(request: web.Request) -> str:
    session_id = request.match_info["session_id"]
    if not SESSION_ID.fullmatch(session_id):
        raise web.HTTPBadRequest(text="session id must be 1-128 characters of [A-Za-z0-9._:-]")
    return session_id


async def get_session(request: web.Request) -> web.Response:
    timeout = request.app[SETTINGS].gateway_rpc_timeout_s
    try:
        session = await dialog_stub(request.app).GetSession(
            pb.GetSessionRequest(session_id=_session_id(request)), timeout=timeout
        )
    except grpc.aio.AioRpcError as error:
        return _grpc_error(error)
    body = json_format.MessageToDict(
        session, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return web.json_response(body)


async def reset_session(request: web.Request) -> web.Response:
    timeout = request.app[SETTINGS].gateway_rpc_timeout_s
    try:
        reply = await dialog_stub(request.app).ResetSession(
            pb.ResetSessionRequest(session_id=_session_id(request), clear_data=True), timeout=timeout
        )
    except grpc.aio.AioRpcError as error:
        return _grpc_error(error)
    return web.json_response({"existed": reply.existed})


async def voices(request: web.Request) -> web.Response:
    stub = riva_tts_pb2_grpc.RivaSpeechSynthesisStub(request.app[CHANNELS]["tts"])
    try:
        config = await stub.GetRivaSynthesisConfig(
            riva_tts_pb2.RivaSynthesisConfigRequest(), timeout=request.app[SETTINGS].gateway_rpc_timeout_s
        )
    except grpc.aio.AioRpcError as error:
        return _grpc_error(error)
    found = []
    for model in config.model_config:
        params = model.parameters
        for name in params.get("voice_name", "").split(","):
            if name:
                found.append({"name": name.strip(), "language_code": params.get("language_code", "")})
    return web.json_response({"voices": sorted(found, key=lambda v: v["name"])})


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    stub = health_pb2_grpc.HealthStub(request.app[CHANNELS]["dialog"])
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=DIALOG_SERVICE), timeout=2)
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    except grpc.aio.AioRpcError as error:
        status = error.code().name
    return web.Response(status=200 if status == "SERVING" else 503, text=f"dialog: {status}")


async def prometheus(_request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def index(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def _open_channels(app: web.Application) -> None:
    """Channels to the dialog and TTS services: TLS and an API key when RIVULET_CLIENT_* say so
    (as the dialog calls ASR, NLU and TTS), plain text otherwise."""
    settings = app[SETTINGS]
    security = ChannelSecurity.from_settings(settings)
    dialog = open_channel(settings.gateway_dialog_url, security)
    tts = (
        dialog
        if settings.tts_url == settings.gateway_dialog_url
        else open_channel(settings.tts_url, security)
    )
    app[CHANNELS].update(dialog=dialog, tts=tts)


async def _close(app: web.Application) -> None:
    for ws in list(app[OPEN]):
        await ws.close(code=Close.GOING_AWAY, message=b"gateway shutting down; reconnecting")
    for channel in {id(c): c for c in app[CHANNELS].values()}.values():
        await channel.close()


def create_app(settings: GatewaySettings) -> web.Application:
    app = web.Application(middlewares=[security_headers])
    app[SETTINGS] = settings
    app[CHANNELS] = {}
    app[OPEN] = set()
    app.on_startup.append(_open_channels)
    app.on_shutdown.append(_close)
    app.router.add_get("/", index)
    app.router.add_get("/ws", conversation)
    app.router.add_get("/api/voices", voices)
    app.router.add_get("/api/session/{session_id}", get_session)
    app.router.add_post("/api/session/{session_id}/reset", reset_session)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus)
    app.router.add_static("/static/", STATIC, follow_symlinks=False)
    return app
