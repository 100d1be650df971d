"""Streams one script through a decoupled synthesizer model on Triton.

``TritonSynthesizer.stream(voice, script)`` opens a gRPC ``ModelStreamInfer`` stream, sends one
request (and half-closes) and yields each audio piece as Triton returns it, until the response
flagged ``FINAL``; then it waits for Triton to end the stream itself (status OK), which takes no
more than a round trip. Only a consumer that stops early (the client cancelled, barge-in) cancels
the gRPC stream; Triton then marks the request cancelled and the model drops its remaining pieces.

Why a finished stream is not cancelled: tritonserver 2.51 keeps memory for every
``ModelStreamInfer`` stream that the client cancels once its responses are complete (about 5-9
KiB each; a stream per reply grew the server's RSS without bound, issue #18). A stream that ends
normally leaves nothing behind (``bench/triton_stream_memory.py`` measures both).

Error mapping: Triton unreachable → UNAVAILABLE; the model rejecting the request → INVALID_ARGUMENT;
no piece within ``timeout_s`` → DEADLINE_EXCEEDED; a synthesis failure → INTERNAL with its message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import numpy as np
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.utils import InferenceServerException

from rivulet.core.errors import RivuletError, invalid_argument, unavailable
from rivulet.core.metrics import TRITON_ERRORS, TRITON_LATENCY
from rivulet.tts.catalog import TtsVoice

OUTPUTS = ("AUDIO", "SAMPLE_RATE", "FINAL")


def _string_input(name: str, value: str) -> InferInput:
    tensor = InferInput(name, [1], "BYTES")
    tensor.set_data_from_numpy(np.array([value.encode("utf-8")], dtype=object))
    return tensor


class TritonSynthesizer:
    """One gRPC channel to Triton for streaming synthesis (made lazily inside the event loop)."""

    def __init__(self, url: str, timeout_s: float = 10.0, tls_options: dict | None = None) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.tls_options = tls_options or {}  # rivulet.core.tls.triton_tls_options
        self._aio: triton_aio.InferenceServerClient | None = None

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
        if self._aio is not None:
            await self._aio.close()
            self._aio = None

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
        ended = False
        try:
            while True:
                try:
                    result, error = await asyncio.wait_for(anext(responses), self.timeout_s)
                except StopAsyncIteration:
                    raise unavailable(
                        f"Triton at {self.url} closed the stream before {voice.model} finished"
                    ) from None
                except TimeoutError:
                    raise RivuletError(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"{voice.model} produced no audio for {self.timeout_s}s",
                    ) from None
                except grpc.aio.AioRpcError as exc:
                    raise unavailable(
                        f"Triton at {self.url} is unavailable ({exc.code().name}: {exc.details()})"
                    ) from exc
                except InferenceServerException as exc:
                    raise self._error(voice, exc.message() or str(exc)) from exc
                if error is not None:
                    raise self._error(voice, error.message() or str(error))
                audio = result.as_numpy("AUDIO")
                rate = int(result.as_numpy("SAMPLE_RATE").reshape(-1)[0])
                final = bool(result.as_numpy("FINAL").reshape(-1)[0])
                TRITON_LATENCY.labels(voice.model).observe(time.perf_counter() - start)
                start = time.perf_counter()
                yield (audio.reshape(-1) if audio is not None else np.zeros(0, np.float32)), rate
                if final:
                    ended = await self._await_end(responses)
                    return
        finally:
            if not ended:  # stopped early (barge-in, client gone, an error): Triton drops the rest
                responses.cancel()

    async def _await_end(self, responses: AsyncIterator) -> bool:
        """After the FINAL piece: True once Triton has closed the stream with status OK (nothing
        more may come); False if it did not within the deadline (the caller then cancels it)."""
        try:
            await asyncio.wait_for(anext(responses), min(self.timeout_s, 5.0))
        except StopAsyncIteration:
            return True
        except (TimeoutError, grpc.aio.AioRpcError, InferenceServerException):
            return False
        return False  # a response after FINAL: not a stream that ended cleanly
