"""One conversation: a browser WebSocket bridged to one `Converse` stream.

The browser's messages are checked (order, size, rate, fields) and become `ConverseRequest`s on a
bounded queue that the gRPC call reads; every `ConverseResponse` becomes a JSON message or a binary
audio frame. The bridge owns two tasks (the WebSocket reader and the gRPC reader); whichever ends
first ends the conversation, and `run()` cancels and awaits the other: the one place it is cleaned
up. A bad message closes only this connection, with a close code and a reason the app shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from aiohttp import WSMsgType, web

from rivulet.dialog.v1 import dialog_pb2 as pb
from rivulet.dialog.v1 import dialog_pb2_grpc
from rivulet.gateway import metrics
from rivulet.gateway.protocol import (
    Close,
    MessageOrder,
    ProtocolError,
    RateLimit,
    Start,
    close_reason,
    encode_audio,
    encode_response,
    parse_audio,
    parse_json,
    parse_playback,
    parse_start,
    parse_text,
)

log = logging.getLogger(__name__)

# Requests waiting for the dialog service (about 4 s of 20 ms frames): more means it is not reading.
QUEUE_LIMIT = 200
# Turns whose gateway time is being summed (announcements have no latency message to end them).
TURNS_TRACKED = 16
_END = None


@dataclass(frozen=True)
class Limits:
    max_frame_bytes: int
    max_frames_per_s: int
    start_timeout_s: float


# gRPC status of the Converse call → how the WebSocket closes.
STATUS_CLOSE = {
    grpc.StatusCode.UNAVAILABLE: (Close.DIALOG_UNAVAILABLE, "dialog service unavailable; reconnecting"),
    grpc.StatusCode.CANCELLED: (Close.DIALOG_UNAVAILABLE, "dialog stream cancelled; reconnecting"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (Close.BUSY, "busy, try again"),
    grpc.StatusCode.INVALID_ARGUMENT: (Close.BAD_MESSAGE, "dialog refused the request"),
}


def close_for(error: grpc.RpcError) -> tuple[Close, str]:
    code = error.code() if isinstance(error, grpc.aio.AioRpcError) else grpc.StatusCode.UNKNOWN
    close, reason = STATUS_CLOSE.get(code, (Close.DIALOG_ERROR, f"dialog error {code.name}"))
    details = error.details() if isinstance(error, grpc.aio.AioRpcError) else ""
    if close in (Close.BAD_MESSAGE, Close.DIALOG_ERROR) and details:
        reason = f"{reason}: {details}"
    return close, close_reason(reason)


class Conversation:
    def __init__(self, ws: web.WebSocketResponse, stub: dialog_pb2_grpc.DialogStub, limits: Limits) -> None:
        self.ws, self.stub, self.limits = ws, stub, limits
        self.requests: asyncio.Queue[pb.ConverseRequest | None] = asyncio.Queue(QUEUE_LIMIT)
        self.order = MessageOrder()
        self.rate = RateLimit(limits.max_frames_per_s, time.monotonic())
        self.start: Start | None = None
        self._turn_overhead: dict[str, float] = {}
        self._audio_seen: set[str] = set()

    # ---- browser → dialog ----------------------------------------------------------------------

    def _check_frame(self, size: int) -> None:
        if size > self.limits.max_frame_bytes:
            raise ProtocolError(
                Close.TOO_LARGE, f"message of {size} bytes is over {self.limits.max_frame_bytes}"
            )
        if not self.rate.allow(time.monotonic()):
            raise ProtocolError(Close.TOO_FAST, f"over {self.limits.max_frames_per_s} messages per second")

    def handle(self, message: web.WSMessage) -> pb.ConverseRequest | Start | dict | None:
        """One WebSocket message → a request for the dialog (or the `start`, or a `pong` to send back)."""
        if message.type == WSMsgType.BINARY:
            self._check_frame(len(message.data))
            self.order.check("audio")
            return parse_audio(message.data)
        if message.type != WSMsgType.TEXT:
            raise ProtocolError(Close.BAD_MESSAGE, f"unexpected WebSocket message {message.type.name}")
        self._check_frame(len(message.data.encode()))
        data = parse_json(message.data)
        kind = data["type"]
        self.order.check(kind)
        if kind == "start":
            return parse_start(data)
        if kind == "text":
            return parse_text(data)
        if kind == "playback":
            return parse_playback(data)
        return {"type": "pong", "t": data.get("t") if isinstance(data.get("t"), int | float) else None}

    def _enqueue(self, request: pb.ConverseRequest) -> None:
        try:
            self.requests.put_nowait(request)
        except asyncio.QueueFull:
            raise ProtocolError(Close.TOO_FAST, "the dialog service is not keeping up") from None

    async def _first_message(self) -> Start:
        try:
            message = await self.ws.receive(timeout=self.limits.start_timeout_s)
        except TimeoutError:
            raise ProtocolError(Close.START_TIMEOUT, "no 'start' message in time") from None
        if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            raise ConnectionResetError("the browser closed before 'start'")
        result = self.handle(message)
        if not isinstance(result, Start):
            raise ProtocolError(Close.OUT_OF_ORDER, "the first message must be 'start'")
        return result

    async def _read_browser(self) -> tuple[Close, str]:
        async for message in self.ws:
            started = time.perf_counter()
            if message.type == WSMsgType.ERROR:
                break
            result = self.handle(message)
            if isinstance(result, dict):
                await self.ws.send_json(result)
                continue
            self._enqueue(result)
            kind = result.WhichOneof("request")
            metrics.MESSAGES.labels("in", kind).inc()
            metrics.FORWARD_SECONDS.labels("in").observe(time.perf_counter() - started)
        return Close.NORMAL, "browser closed"

    async def _requests(self) -> AsyncIterator[pb.ConverseRequest]:
        assert self.start is not None
        yield pb.ConverseRequest(config=self.start.config())
        while (request := await self.requests.get()) is not _END:
            yield request

    # ---- dialog → browser ----------------------------------------------------------------------

    async def _send(self, response: pb.ConverseResponse, received: float) -> None:
        kind = response.WhichOneof("response")
        if kind == "audio":
            await self.ws.send_bytes(encode_audio(response))
        else:
            message = encode_response(response)
            if message is None:
                return
            await self.ws.send_json(message)
        spent = time.perf_counter() - received
        metrics.MESSAGES.labels("out", kind).inc()
        metrics.FORWARD_SECONDS.labels("out").observe(spent)
        turn = response.turn_id
        self._turn_overhead[turn] = self._turn_overhead.get(turn, 0.0) + spent
        if len(self._turn_overhead) > TURNS_TRACKED:  # turns that never got a latency message
            self._turn_overhead.pop(next(iter(self._turn_overhead)))
            self._audio_seen.intersection_update(self._turn_overhead)
        if kind == "audio" and turn not in self._audio_seen:
            self._audio_seen.add(turn)
            metrics.FIRST_AUDIO_SECONDS.observe(spent)
        if kind == "latency":
            metrics.TURN_OVERHEAD_SECONDS.observe(self._turn_overhead.pop(turn, spent))
            self._audio_seen.discard(turn)

    async def _read_dialog(self, call: grpc.aio.StreamStreamCall) -> tuple[Close, str]:
        try:
            async for response in call:
                await self._send(response, time.perf_counter())
        except grpc.aio.AioRpcError as error:
            log.info("Converse ended: %s %s", error.code().name, error.details())
            return close_for(error)
        return Close.NORMAL, "conversation ended"

    # ---- the whole conversation -----------------------------------------------------------------

    async def run(self) -> Close:
        """Serve the conversation until either side ends it; closes the WebSocket with a code and a
        reason, and returns the code."""
        code, reason = Close.NORMAL, ""
        call = None
        tasks: list[asyncio.Task] = []
        try:
            self.start = await self._first_message()
            call = self.stub.Converse(self._requests())
            await call.wait_for_connection()  # "ready" means the dialog service took the stream
            await self.ws.send_json({"type": "ready", "session_id": self.start.session_id})
            tasks = [
                asyncio.create_task(self._read_browser(), name="ws-reader"),
                asyncio.create_task(self._read_dialog(call), name="grpc-reader"),
            ]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            code, reason = next(iter(done)).result()
        except ProtocolError as error:
            code, reason = error.code, error.reason
            log.info("closing conversation: %s (%d)", reason, code)
        except ConnectionResetError:
            code, reason = Close.NORMAL, "browser closed"
        except grpc.aio.AioRpcError as error:
            code, reason = close_for(error)
        finally:
            await self._finish(tasks, call)
        if not self.ws.closed:
            await self.ws.close(code=code, message=close_reason(reason).encode())
        return code

    async def _finish(self, tasks: list[asyncio.Task], call: grpc.aio.StreamStreamCall | None) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.requests.put_nowait(_END)  # half-close: the dialog ends the stream cleanly
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        if call is not None:
            call.cancel()
