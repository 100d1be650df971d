"""The bridge's message handling and its mapping of the dialog's gRPC status to close codes."""

from __future__ import annotations

import grpc
import pytest
from aiohttp import WSMessage, WSMsgType

from rivulet.gateway.bridge import Conversation, Limits, close_for
from rivulet.gateway.protocol import Close, ProtocolError, Start


def conversation(**limits) -> Conversation:
    return Conversation(
        None,
        None,
        Limits(**{"max_frame_bytes": 1000, "max_frames_per_s": 100, "start_timeout_s": 1, **limits}),
    )


def text(data: str) -> WSMessage:
    return WSMessage(WSMsgType.TEXT, data, None)


def binary(data: bytes) -> WSMessage:
    return WSMessage(WSMsgType.BINARY, data, None)


def refused(bridge: Conversation, message: WSMessage) -> Close:
    with pytest.raises(ProtocolError) as caught:
        bridge.handle(message)
    return caught.value.code


def test_messages_become_requests_in_order():
    bridge = conversation()
    assert refused(bridge, binary(b"\0\0")) == Close.OUT_OF_ORDER
    start = bridge.handle(text('{"type": "start", "session_id": "s1"}'))
    assert isinstance(start, Start) and start.session_id == "s1"
    assert bridge.handle(binary(b"\1\0" * 4)).audio == b"\1\0" * 4
    assert bridge.handle(text('{"type": "text", "text": "hi"}')).text == "hi"
    assert bridge.handle(text('{"type": "ping", "t": 5}')) == {"type": "pong", "t": 5}
    assert refused(bridge, text('{"type": "start", "session_id": "s1"}')) == Close.OUT_OF_ORDER


def test_size_and_rate_limits():
    bridge = conversation()
    bridge.handle(text('{"type": "start", "session_id": "s1"}'))
    assert refused(bridge, binary(b"\0" * 1002)) == Close.TOO_LARGE
    bridge = conversation(max_frames_per_s=3)
    bridge.handle(text('{"type": "start", "session_id": "s1"}'))
    bridge.handle(binary(b"\0\0"))
    bridge.handle(binary(b"\0\0"))
    assert refused(bridge, binary(b"\0\0")) == Close.TOO_FAST
    assert refused(conversation(), WSMessage(WSMsgType.PING, b"", None)) == Close.BAD_MESSAGE


@pytest.mark.parametrize(
    "code, details, close, reason",
    [
        (
            grpc.StatusCode.UNAVAILABLE,
            "connection refused",
            Close.DIALOG_UNAVAILABLE,
            "dialog service unavailable",
        ),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "256 streams", Close.BUSY, "busy, try again"),
        (grpc.StatusCode.INVALID_ARGUMENT, "unknown voice 'x'", Close.BAD_MESSAGE, "unknown voice 'x'"),
        (grpc.StatusCode.INTERNAL, "boom", Close.DIALOG_ERROR, "dialog error INTERNAL: boom"),
    ],
)
def test_dialog_status_to_close_code(code, details, close, reason):
    error = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)
    got, text_ = close_for(error)
    assert got == close and reason in text_ and len(text_.encode()) <= 123
