"""Streams one script through a decoupled synthesizer model on Triton.

``TritonSynthesizer.stream(voice, script)`` opens a gRPC ``ModelStreamInfer`` stream, sends one
request (and half-closes) and yields each audio piece as Triton returns it, until the response
flagged ``FINAL``. One task per stream (its reader) reads every response into a queue until Triton
ends the stream itself (status OK); the generator only takes pieces from that queue.

The client never cancels a stream in the normal course, not even mid-reply. A consumer that stops
early (barge-in, a client gone, an error) gets nothing more at once; the reader goes on reading the
rest of the reply and drops it (draining: the rest of one reply is at most a few hundred ms of
synthesis) until Triton ends the stream. Only a stream not ended within ``drain_s`` (after a
FINAL piece: 5 s), a stopped reply beyond ``max_draining`` draining at once, or a reader cancelled
(the event loop closing) cancels the gRPC call, with a warning. ``close()`` waits for the readers.
``rivulet_tts_triton_streams_total{ending}`` counts how streams ended.

Why: tritonserver 2.51 keeps memory for every stream the client cancels once its responses are
complete (about 5-9 KiB each, issue #18), and client cancels mid-reply trip its gRPC cancellation
races: back-to-back barge-ins aborted it (heap corruption), stalled it, or segfaulted it
(triton-inference-server/server#7840, #8078; ``bench/triton_stream_memory.py`` measures both).
A consumer's own cancellation must not reach the call either: a cancelled pending read makes
grpc.aio cancel the call, which is why only the reader reads.

Error mapping: Triton unreachable → UNAVAILABLE; the model rejecting the request → INVALID_ARGUMENT;
no piece within ``timeout_s`` → DEADLINE_EXCEEDED; a synthesis failure → INTERNAL with its message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.utils import InferenceServerException

from rivulet.core.errors import RivuletError, invalid_argument, unavailable
from rivulet.core.metrics import TRITON_ERRORS, TRITON_LATENCY, TTS_STREAM_ENDINGS
from rivulet.tts.catalog import TtsVoice

OUTPUTS = ("AUDIO", "SAMPLE_RATE", "FINAL")
_END = object()  # the reader's mark: Triton ended the stream
log = logging.getLogger(__name__)


def _string_input(name: str, value: str) -> InferInput:
    tensor = InferInput(name, [1], "BYTES")
    tensor.set_data_from_numpy(np.array([value.encode("utf-8")], dtype=object))
    return tensor


class TritonSynthesizer:
    """One gRPC channel to Triton for streaming synthesis (made lazily inside the event loop)."""

    def __init__(
        self,
        url: str,
        timeout_s: float = 10.0,
        tls_options: dict | None = None,
        drain_s: float = 10.0,
        max_draining: int = 64,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.tls_options = tls_options or {}  # rivulet.core.tls.triton_tls_options
        self.drain_s = drain_s  # a stopped reply's stream is cancelled if not ended by then
        self.max_draining = max_draining  # beyond this many stopped replies at once: cancel
        self._aio: triton_aio.InferenceServerClient | None = None
        self._streams: set[_Stream] = set()  # open streams (their readers remove them)

    @property
    def _client(self) -> triton_aio.InferenceServerClient:
        if self._aio is None:
            self._aio = triton_aio.InferenceServerClient(
                self.url,
                channel_args=[
                    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                    ("grpc.initial_reconnect_backoff_ms", 200),
                    ("grpc.max_reconnect_backoff_ms", 2000),
                ],
                **self.tls_options,
            )
        return self._aio

    async def close(self) -> None:
        """Let every open stream end (each within its deadline), then close the channel."""
        for stream in list(self._streams):
            self._let_go(stream, finished=stream.finished)
        readers = [s.reader for s in self._streams if s.reader is not None]
        await asyncio.gather(*readers, return_exceptions=True)
        if self._aio is not None:
            await self._aio.close()
            self._aio = None

    async def wait_open_below(self, count: int = 1) -> None:
        """Return once fewer than `count` streams are open (draining ones included)."""
        while len(self._streams) >= max(1, count):
            readers = [s.reader for s in self._streams if s.reader is not None]
            await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)

    def _error(self, voice: TtsVoice, message: str) -> RivuletError:
        TRITON_ERRORS.labels(voice.model, "stream").inc()
        if "bad request" in message:
            return invalid_argument(f"{voice.model} rejected the request: {message}")
        if "synthesis failed" in message:
            return RivuletError(grpc.StatusCode.INTERNAL, f"{voice.name}: {message}")
        return unavailable(f"Triton at {self.url} failed to synthesize with {voice.model}: {message}")

    async def stream(
        self, voice: TtsVoice, script_json: str, request_id: str = ""
    ) -> AsyncIterator[tuple[np.ndarray, int]]:
        """Yield (float32 audio piece, its sample rate) in order until the model's final piece."""
        request = {
            "model_name": voice.model,
            "inputs": [_string_input("VOICE", voice.subvoice), _string_input("SCRIPT", script_json)],
            "outputs": [InferRequestedOutput(name) for name in OUTPUTS],
            "request_id": request_id,
        }

        async def requests() -> AsyncIterator[dict]:
            yield request

        start = time.perf_counter()
        try:
            responses = self._client.stream_infer(requests())
        except InferenceServerException as exc:
            raise unavailable(f"Triton at {self.url} is unreachable: {exc.message()}") from exc
        stream = _Stream(voice.model, responses)
        stream.reader = asyncio.create_task(
            self._read(stream), name=f"tts-stream-{request_id or voice.model}"
        )
        self._streams.add(stream)
        final = False
        try:
            while True:
                try:
                    item = await asyncio.wait_for(stream.queue.get(), self.timeout_s)
                except TimeoutError:
                    raise RivuletError(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"{voice.model} produced no audio for {self.timeout_s}s",
                    ) from None
                if item is _END:
                    raise unavailable(f"Triton at {self.url} closed the stream before {voice.model} finished")
                if isinstance(item, grpc.aio.AioRpcError):
                    raise unavailable(
                        f"Triton at {self.url} is unavailable ({item.code().name}: {item.details()})"
                    ) from item
                if isinstance(item, InferenceServerException):
                    raise self._error(voice, item.message() or str(item)) from item
                result, error = item
                if error is not None:
                    raise self._error(voice, error.message() or str(error))
                audio = result.as_numpy("AUDIO")
                rate = int(result.as_numpy("SAMPLE_RATE").reshape(-1)[0])
                final = bool(result.as_numpy("FINAL").reshape(-1)[0])
                TRITON_LATENCY.labels(voice.model).observe(time.perf_counter() - start)
                start = time.perf_counter()
                yield (audio.reshape(-1) if audio is not None else np.zeros(0, np.float32)), rate
                if final:
                    return
        finally:
            # From here on nothing reaches the consumer. The reader goes on to the end of the stream.
            self._let_go(stream, finished=final)

    async def _read(self, stream: _Stream) -> None:
        """Read every response of one stream until Triton ends it (status OK) or it fails; the
        only task that reads it, so a consumer that stops or is cancelled never cancels the call."""
        try:
            async for item in stream.responses:
                if not stream.released:  # after that, drained: dropped
                    stream.queue.put_nowait(item)
            stream.queue.put_nowait(_END)
            stream.ended = "drained" if stream.released and not stream.finished else "finished"
        except asyncio.CancelledError:
            if stream.ended != "cancelled":  # not our own fallback cancel: the task itself
                stream.responses.cancel()
                stream.ended = "cancelled"
                raise
        except (grpc.aio.AioRpcError, InferenceServerException) as exc:
            stream.queue.put_nowait(exc)
            stream.ended = "failed"
        finally:
            if stream.deadline is not None:
                stream.deadline.cancel()
            self._streams.discard(stream)
            TTS_STREAM_ENDINGS.labels(stream.model, stream.ended or "failed").inc()

    def _let_go(self, stream: _Stream, finished: bool) -> None:
        """The consumer is done with `stream`: let Triton end it; cancel it only if it has not
        ended within the drain deadline, or if too many streams are draining already."""
        if stream.released or stream.reader is None or stream.reader.done():
            return
        stream.released, stream.finished = True, finished
        if not finished:
            draining = sum(1 for s in self._streams if s.released and not s.finished)
            if draining > self.max_draining:
                self._cancel(stream, f"{draining} streams already draining (at most {self.max_draining})")
                return
        limit = min(self.timeout_s, 5.0) if finished else self.drain_s
        stream.deadline = asyncio.get_running_loop().call_later(
            limit, self._cancel, stream, f"Triton did not end it within {limit:g}s"
        )

    def _cancel(self, stream: _Stream, why: str) -> None:
        if stream.reader is None or stream.reader.done():
            return
        log.warning("cancelling a %s stream to Triton: %s", stream.model, why)
        stream.ended = "cancelled"
        stream.responses.cancel()


@dataclass(eq=False)  # kept in a set by identity
class _Stream:
    """One ``ModelStreamInfer`` stream: its responses, the task that reads them, how it ended."""

    model: str
    responses: Any
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    reader: asyncio.Task | None = None
    released: bool = False  # the consumer is done with it
    finished: bool = False  # ... after the FINAL piece
    deadline: asyncio.TimerHandle | None = None
    ended: str = ""  # finished | drained | cancelled | failed
