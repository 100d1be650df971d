"""gRPC clients for the Riva services the dialog manager calls: NLU AnalyzeIntent, ASR
StreamingRecognize, TTS SynthesizeOnline. Each failure becomes a `DependencyError` naming the stage,
so a turn can report it to the client as an error event and the session carries on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from riva.proto import riva_asr_pb2 as asr
from riva.proto import riva_asr_pb2_grpc, riva_nlp_pb2_grpc, riva_tts_pb2_grpc
from riva.proto import riva_audio_pb2 as audio
from riva.proto import riva_nlp_pb2 as nlp
from riva.proto import riva_tts_pb2 as tts

from rivulet.core.grpc_calls import CallsInFlight
from rivulet.core.tls import ChannelSecurity, open_channel
from rivulet.dialog.understanding import NluResult, NluSlot

log = logging.getLogger(__name__)

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.enable_retries", 0),
]
CLOSE_WAIT_S = 5.0  # how long closing a client waits for calls still in flight
# What grpc.aio reports, in place of the server's own status, when it could not write a request
# because the server had already ended the call (grpc/aio/_call.py `_write`: set_internal_error).
# The service never said INTERNAL: it ended the call (with Triton killed under a dialog, its status
# was UNAVAILABLE), and the status it sent is lost.
LOST_STATUS = (grpc.StatusCode.INTERNAL, "Internal error from Core")


class DependencyError(Exception):
    """A dependency (asr, nlu, tts) failed; `code` is its gRPC status name."""

    def __init__(self, stage: str, code: str, message: str) -> None:
        super().__init__(f"{stage}: {code}: {message}")
        self.stage, self.code, self.message = stage, code, message

    @classmethod
    def from_rpc(cls, stage: str, exc: grpc.RpcError, address: str) -> DependencyError:
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        details = exc.details() if hasattr(exc, "details") else str(exc)
        if (code, details) == LOST_STATUS:
            return cls(
                stage,
                grpc.StatusCode.UNAVAILABLE.name,
                f"the {stage.upper()} service at {address} ended the call while the dialog was still "
                "sending to it (grpc lost the status it sent); retry when it is back",
            )
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        return cls(stage, name, f"the {stage.upper()} service at {address} failed: {details}")


class _Channel:
    """One lazily made aio channel (made inside the running loop, shared by every request); TLS and
    an API key when `security` says so."""

    def __init__(self, address: str, security: ChannelSecurity | None = None) -> None:
        self.address = address
        self.security = security
        self._channel: grpc.aio.Channel | None = None
        self.calls = CallsInFlight()  # unary calls in flight, awaited or not (rivulet.core.grpc_calls)

    @property
    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            self._channel = open_channel(self.address, self.security, CHANNEL_OPTIONS)
        return self._channel

    async def close(self) -> None:
        await self.calls.wait(CLOSE_WAIT_S)  # calls whose callers stopped waiting end by their deadlines
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


class NluClient(_Channel):
    def __init__(
        self, address: str, domain: str, timeout_s: float, security: ChannelSecurity | None = None
    ) -> None:
        super().__init__(address, security)
        self.domain, self.timeout_s = domain, timeout_s

    async def analyze(self, text: str, language_code: str = "en-US") -> NluResult:
        stub = riva_nlp_pb2_grpc.RivaLanguageUnderstandingStub(self.channel)
        request = nlp.AnalyzeIntentRequest(
            query=text, options=nlp.AnalyzeIntentOptions(domain=self.domain, lang=language_code)
        )
        try:
            # a speculative turn dropped mid-call leaves the call to its answer or deadline
            response = await self.calls.uncancelled(stub.AnalyzeIntent(request, timeout=self.timeout_s))
        except grpc.RpcError as exc:
            raise DependencyError.from_rpc("nlu", exc, self.address) from exc
        return NluResult(
            intent=response.intent.class_name,
            score=response.intent.score,
            slots=[
                NluSlot(
                    s.label[0].class_name if s.label else "", s.token, s.label[0].score if s.label else 0.0
                )
                for s in response.slots
            ],
        )


@dataclass
class Voice:
    voice_name: str
    sample_rate_hz: int
    encoding: int = audio.LINEAR_PCM
    language_code: str = "en-US"


class TtsClient(_Channel):
    def __init__(self, address: str, timeout_s: float, security: ChannelSecurity | None = None) -> None:
        super().__init__(address, security)
        self.timeout_s = timeout_s
        self._native_rates: dict[str, int] = {}

    async def native_rate(self, voice_name: str) -> int:
        """The sample rate the TTS reports for a voice (GetRivaSynthesisConfig), cached per voice."""
        if voice_name in self._native_rates:
            return self._native_rates[voice_name]
        stub = riva_tts_pb2_grpc.RivaSpeechSynthesisStub(self.channel)
        try:
            config = await stub.GetRivaSynthesisConfig(
                tts.RivaSynthesisConfigRequest(), timeout=self.timeout_s
            )
        except grpc.RpcError as exc:
            raise DependencyError.from_rpc("tts", exc, self.address) from exc
        rate = 0
        for model in config.model_config:
            params = model.parameters
            try:  # Rivulet's TTS: {"<subvoice>": {"sample_rate_hz": ...}} per model
                details = json.loads(params.get("voice_details", "{}") or "{}")
            except ValueError:
                details = {}
            subvoice = voice_name.rpartition(".")[2] if voice_name else params.get("default_subvoice", "")
            if isinstance(details.get(subvoice), dict) and details[subvoice].get("sample_rate_hz"):
                rate = int(details[subvoice]["sample_rate_hz"])
            elif params.get("sample_rate_hz", "").isdigit():
                rate = int(params["sample_rate_hz"])
            if rate:
                break
        self._native_rates[voice_name] = rate or 22050
        return self._native_rates[voice_name]

    async def synthesize(self, text: str, voice: Voice) -> AsyncIterator[bytes]:
        """Audio chunks of `text` as SynthesizeOnline streams them. Closing the iterator (or
        cancelling the task iterating it) cancels the RPC, which stops the synthesis upstream."""
        stub = riva_tts_pb2_grpc.RivaSpeechSynthesisStub(self.channel)
        request = tts.SynthesizeSpeechRequest(
            text=text,
            language_code=voice.language_code,
            encoding=voice.encoding,
            sample_rate_hz=voice.sample_rate_hz,
            voice_name=voice.voice_name,
        )

        async def requests() -> AsyncIterator[tts.SynthesizeSpeechRequest]:
            yield request

        call = stub.SynthesizeOnline(requests())
        try:
            async for response in call:
                if response.audio:
                    yield response.audio
        except grpc.RpcError as exc:
            raise DependencyError.from_rpc("tts", exc, self.address) from exc
        finally:
            call.cancel()


class AsrStream:
    """One StreamingRecognize call: `send` audio, iterate `responses()`; `close` half-closes."""

    def __init__(
        self,
        stub: riva_asr_pb2_grpc.RivaSpeechRecognitionStub,
        config: asr.StreamingRecognitionConfig,
        address: str,
    ) -> None:
        self.address, self.config = address, config
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._call = stub.StreamingRecognize(self._requests(config))

    async def _requests(
        self, config: asr.StreamingRecognitionConfig
    ) -> AsyncIterator[asr.StreamingRecognizeRequest]:
        yield asr.StreamingRecognizeRequest(streaming_config=config)
        while True:
            chunk = await self._queue.get()
            if chunk is None:
                return
            yield asr.StreamingRecognizeRequest(audio_content=chunk)

    def send(self, chunk: bytes) -> None:
        self._queue.put_nowait(chunk)

    def close(self) -> None:
        self._queue.put_nowait(None)

    def cancel(self) -> None:
        self._call.cancel()

    async def responses(self) -> AsyncIterator[asr.StreamingRecognizeResponse]:
        try:
            async for response in self._call:
                yield response
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:
                return
            raise DependencyError.from_rpc("asr", exc, self.address) from exc


class AsrClient(_Channel):
    def __init__(
        self,
        address: str,
        model: str,
        security: ChannelSecurity | None = None,
        window_s: float = 0.0,
        captions_ms: int = 0,
    ) -> None:
        super().__init__(address, security)
        self.model = model
        self.window_s = window_s  # the Whisper pass's least window (custom_configuration); 0: the ASR's
        self.captions_ms = captions_ms  # Whisper's live captions every that many ms of speech; 0: none

    def open(
        self,
        encoding: int,
        sample_rate_hz: int,
        language_code: str,
        stop_silence_ms: int,
        start_speech_ms: int,
        hints: tuple[str, ...] = (),
        boost: float = 0.0,
        word_times: bool = True,
        early_final_ms: int = 0,
    ) -> AsrStream:
        """A recognition call for one user turn; `hints` (words and phrases the turn is likely to
        hold) are sent as speech_contexts with `boost`; `word_times` asks for word time offsets;
        `early_final_ms` > 0 asks for an early final (stability 1.0) after that much silence."""
        endpointing = asr.EndpointingConfig(stop_history=stop_silence_ms)
        if start_speech_ms:
            endpointing.start_history = start_speech_ms
        if 0 < early_final_ms < stop_silence_ms:
            endpointing.stop_history_eou = early_final_ms
        config = asr.StreamingRecognitionConfig(
            config=asr.RecognitionConfig(
                encoding=encoding,
                sample_rate_hertz=sample_rate_hz,
                language_code=language_code,
                max_alternatives=1,
                enable_word_time_offsets=word_times,
                verbatim_transcripts=True,  # the spoken form: what the intent model was trained on
                model=self.model,
                endpointing_config=endpointing,
            ),
            interim_results=True,
        )
        if hints and boost:
            config.config.speech_contexts.add(phrases=list(hints), boost=boost)
        if self.window_s:
            config.config.custom_configuration["second_pass_window_s"] = f"{self.window_s:g}"
        if self.captions_ms:
            config.config.custom_configuration["whisper_interims_ms"] = str(self.captions_ms)
        return AsrStream(riva_asr_pb2_grpc.RivaSpeechRecognitionStub(self.channel), config, self.address)


async def close_all(*clients: _Channel) -> None:
    for client in clients:
        with contextlib.suppress(Exception):
            await client.close()
