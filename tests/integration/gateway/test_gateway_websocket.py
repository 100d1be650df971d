"""The gateway's WebSocket and API with a real client (aiohttp) against the real dialog service:
typed turns end to end, each bad message closing only its own connection with its code, origin
checks, the conversation cap, the dialog going away, and the session API."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest

from bench.gateway_support import GatewayProcess
from rivulet.core.processes import free_port
from rivulet.gateway.protocol import Close

pytestmark = pytest.mark.integration


def new_session() -> str:
    return f"gw-test-{uuid.uuid4().hex[:12]}"


async def receive_until(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout_s: float = 30.0) -> list:
    """JSON messages up to and including the first of type `kind`."""
    got = []
    async with asyncio.timeout(timeout_s):
        while True:
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, (message, got)
            got.append(message.json())
            if got[-1]["type"] == kind:
                return got


async def closed_with(ws: aiohttp.ClientWebSocketResponse, timeout_s: float = 10.0) -> tuple[int, str]:
    async with asyncio.timeout(timeout_s):
        while True:
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                return ws.close_code, message.extra or ""


async def start(http: aiohttp.ClientSession, gateway: GatewayProcess, **fields):
    ws = await http.ws_connect(f"{gateway.url}/ws", origin=gateway.url)
    await ws.send_json({"type": "start", "session_id": new_session(), "reply_audio": False, **fields})
    ready = await ws.receive_json(timeout=10)
    assert ready["type"] == "ready"
    return ws


async def test_typed_turn_through_the_gateway(typed_gateway):
    async with aiohttp.ClientSession() as http:
        ws = await start(http, typed_gateway)
        await ws.send_json({"type": "ping", "t": 12.5})
        assert (await ws.receive_json(timeout=5)) == {"type": "pong", "t": 12.5}
        await ws.send_json({"type": "text", "text": "set a timer for ten minutes"})
        messages = await receive_until(ws, "latency")
        kinds = [m["type"] for m in messages]
        assert kinds.index("transcript") < kinds.index("understanding") < kinds.index("reply")
        transcript = next(m for m in messages if m["type"] == "transcript")
        assert transcript == {
            **transcript,
            "text": "set a timer for ten minutes",
            "is_final": True,
            "typed": True,
        }
        understanding = next(m for m in messages if m["type"] == "understanding")
        assert understanding["intent"] == "SetTimer"
        assert any(s["name"] == "duration" for s in understanding["slots"])
        assert next(m for m in messages if m["type"] == "reply")["text"]
        assert messages[-1]["total_ms"] > 0 and messages[-1]["nlu_ms"] > 0
        await ws.close()
    assert "rivulet_gateway_turn_overhead_seconds_count" in typed_gateway.metrics()


async def test_session_api_reads_and_resets_the_session(typed_gateway):
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{typed_gateway.url}/ws")
        session_id = new_session()
        await ws.send_json({"type": "start", "session_id": session_id, "reply_audio": False})
        await ws.receive_json(timeout=10)
        await ws.send_json({"type": "text", "text": "what time is it"})
        await receive_until(ws, "latency")
        await ws.close()
        async with http.get(f"{typed_gateway.url}/api/session/{session_id}") as reply:
            assert reply.status == 200
            assert reply.headers["Content-Security-Policy"].startswith("default-src 'self'")
            session = await reply.json()
        assert session["session_id"] == session_id and session["turns"] == 1
        assert session["history"][0]["user_text"] == "what time is it"
        async with http.post(f"{typed_gateway.url}/api/session/{session_id}/reset") as reply:
            assert (await reply.json()) == {"existed": True}
        async with http.get(f"{typed_gateway.url}/api/session/{session_id}") as reply:
            assert reply.status == 404 and (await reply.json())["code"] == "NOT_FOUND"
        async with http.get(f"{typed_gateway.url}/api/session/bad%20id") as reply:
            assert reply.status == 400
        async with http.get(f"{typed_gateway.url}/readyz") as reply:
            assert reply.status == 200


@pytest.mark.parametrize(
    "send, code, says",
    [
        (lambda ws: ws.send_bytes(b"\x00\x00" * 320), Close.OUT_OF_ORDER, "before 'start'"),
        (lambda ws: ws.send_str("{not json"), Close.BAD_MESSAGE, "JSON"),
        (
            lambda ws: ws.send_json({"type": "start", "session_id": "no spaces"}),
            Close.BAD_MESSAGE,
            "session_id",
        ),
        (lambda ws: ws.send_json({"type": "text", "text": "hi"}), Close.OUT_OF_ORDER, "before 'start'"),
    ],
)
async def test_a_bad_first_message_closes_with_its_code(typed_gateway, send, code, says):
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{typed_gateway.url}/ws")
        await send(ws)
        got, reason = await closed_with(ws)
        assert got == code and says in reason


async def test_bad_messages_after_start_close_only_that_connection(typed_gateway):
    async with aiohttp.ClientSession() as http:
        bystander = await start(http, typed_gateway)
        cases = [
            (
                lambda ws: ws.send_json({"type": "start", "session_id": "again"}),
                Close.OUT_OF_ORDER,
                "already",
            ),
            (lambda ws: ws.send_bytes(b"\x00" * 20000), Close.TOO_LARGE, "bytes"),
            (lambda ws: ws.send_bytes(b"\x00" * 641), Close.BAD_MESSAGE, "even"),
            (lambda ws: ws.send_json({"type": "playback", "turn_id": 3}), Close.BAD_MESSAGE, "turn_id"),
        ]
        for send, code, says in cases:
            ws = await start(http, typed_gateway)
            await send(ws)
            got, reason = await closed_with(ws)
            assert (got, says in reason) == (code, True), reason
        # too fast: the gateway allows 60 messages a second here; a flood of 20 ms frames is refused
        ws = await start(http, typed_gateway)
        for _ in range(200):
            if ws.closed:
                break
            await ws.send_bytes(b"\x00\x00" * 320)
        got, reason = await closed_with(ws)
        assert got == Close.TOO_FAST and "per second" in reason
        # the other conversation is untouched
        await bystander.send_json({"type": "text", "text": "what time is it"})
        assert (await receive_until(bystander, "latency"))[-1]["type"] == "latency"
        await bystander.close()


async def test_foreign_origins_are_refused(typed_gateway):
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{typed_gateway.url}/ws", origin="https://evil.example")
        assert refused.value.status == 403
        ws = await http.ws_connect(f"{typed_gateway.url}/ws", origin=typed_gateway.url)
        await ws.close()


async def test_start_timeout_cap_and_dialog_unavailable(dialog_service, tmp_path):
    dead = f"127.0.0.1:{free_port()}"
    with (
        GatewayProcess(
            dialog_service.address,
            tmp_path / "capped.log",
            gateway_max_conversations=1,
            gateway_start_timeout_s=0.5,
        ) as capped,
        GatewayProcess(dead, tmp_path / "orphan.log") as orphan,
    ):
        async with aiohttp.ClientSession() as http:
            first = await http.ws_connect(f"{capped.url}/ws")
            second = await http.ws_connect(f"{capped.url}/ws")
            code, reason = await closed_with(second)
            assert code == Close.BUSY and "busy, try again" in reason
            code, reason = await closed_with(first)  # it never sent `start`
            assert code == Close.START_TIMEOUT
            ws = await http.ws_connect(f"{orphan.url}/ws")
            await ws.send_json({"type": "start", "session_id": new_session()})
            code, reason = await closed_with(ws)
            assert code == Close.DIALOG_UNAVAILABLE and "unavailable" in reason
            async with http.get(f"{orphan.url}/readyz") as reply:
                assert reply.status == 503
        assert 'rivulet_gateway_conversations_total{code="4508"} 1.0' in capped.metrics()


async def test_a_dialog_at_its_stream_limit_is_shown_as_busy(redis_url, nlu_service, tmp_path):
    from tests.integration.dialog.conftest import dialog_env, start_dialog

    dialog = start_dialog(
        tmp_path / "dialog.log", dialog_env(redis_url, nlu_service.address, dialog_max_streams=1)
    )
    try:
        with GatewayProcess(dialog.address, tmp_path / "gateway.log") as gateway:
            async with aiohttp.ClientSession() as http:
                first = await start(http, gateway)
                await first.send_json({"type": "text", "text": "what time is it"})
                await receive_until(first, "latency")  # its stream is open at the dialog
                second = await http.ws_connect(f"{gateway.url}/ws")
                await second.send_json({"type": "start", "session_id": new_session()})
                assert await closed_with(second) == (Close.BUSY, "busy, try again")
                await first.close()
    finally:
        dialog.stop()
