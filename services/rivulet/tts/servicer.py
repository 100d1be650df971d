"""`nvidia.riva.tts.RivaSpeechSynthesis` on Triton-hosted decoupled synthesizer models.

- Synthesize: the whole utterance in one response (meta.text / meta.processed_text filled).
- SynthesizeOnline (bidirectional): requests are read as they arrive; their text is buffered up to
  a sentence end (SSML documents and the text left at half-close go as they are), and every
  complete unit is synthesized and streamed back in order, piece by piece, as soon as Triton
  returns each piece. The settings (voice, language, encoding, rate) come from the first request.
  When the client cancels, the generator is closed: the Triton stream is cancelled and the model
  stops synthesizing at its next piece (barge-in).
- GetRivaSynthesisConfig: one entry per Triton synthesizer model with ``language_code``,
  ``voice_name``, ``subvoices`` (what riva's ``talk.py --list-voices`` reads) and more; then one
  entry per group of voice aliases (``Magpie-Multilingual.EN-US``: ``Aria``, ``Leo``, …) with
  ``alias_of`` naming the voice each one gets.

Errors: empty text, text over ``tts_max_text_chars``, bad SSML/dictionary, unsupported encoding or
rate → INVALID_ARGUMENT; unknown voice or language → NOT_FOUND; a stream over
``tts_max_stream_chars`` → RESOURCE_EXHAUSTED; Triton down → UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator

import grpc
from riva.proto import riva_tts_pb2 as tts
from riva.proto import riva_tts_pb2_grpc

from rivulet.core import audio as core_audio
from rivulet.core.errors import RivuletError, invalid_argument, not_found, resource_exhausted
from rivulet.core.logs import request_id_var
from rivulet.tts.audio_out import AudioOutput, check_output_format
from rivulet.tts.catalog import TtsVoice, VoiceCatalog
from rivulet.tts.chunking import SENTENCE_PAUSE_MS
from rivulet.tts.frontend import FrontEndError, Script, build_script
from rivulet.tts.settings import TtsSettings
from rivulet.tts.ssml import is_ssml
from rivulet.tts.synthesis import TritonSynthesizer

_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?:\s+|$)")


class TextBuffer:
    """Collects SynthesizeOnline text chunks and releases whole sentences."""

    def __init__(self) -> None:
        self.pending = ""

    def add(self, text: str) -> list[str]:
        if is_ssml(text):
            units = [self.pending] if self.pending.strip() else []
            self.pending = ""
            return [*units, text]
        self.pending += text
        last_end = None
        for m in _SENTENCE_END.finditer(self.pending):
            last_end = m.end()
        if last_end is None:
            return []
        ready, self.pending = self.pending[:last_end], self.pending[last_end:]
        return [ready] if ready.strip() else []

    def flush(self) -> list[str]:
        rest, self.pending = self.pending, ""
        return [rest] if rest.strip() else []


class TtsServicer(riva_tts_pb2_grpc.RivaSpeechSynthesisServicer):
    def __init__(self, settings: TtsSettings, synthesizer: TritonSynthesizer, catalog: VoiceCatalog) -> None:
        self.settings = settings
        self.synthesizer = synthesizer
        self.catalog = catalog

    # -- validation ---------------------------------------------------------------------------
    def _check_text(self, text: str, field: str = "text", allow_empty: bool = False) -> str:
        if not text.strip() and not allow_empty:
            raise invalid_argument(f"{field} is empty: send the text to speak")
        if len(text) > self.settings.tts_max_text_chars:
            raise invalid_argument(
                f"{field} has {len(text)} characters; the limit is {self.settings.tts_max_text_chars} "
                "(split it into several requests, or SynthesizeOnline messages, or raise "
                "RIVULET_TTS_MAX_TEXT_CHARS)"
            )
        return text

    def _voice(self, request: tts.SynthesizeSpeechRequest) -> TtsVoice:
        if request.HasField("zero_shot_data") and request.zero_shot_data.audio_prompt:
            raise invalid_argument(
                "zero_shot_data: no zero-shot (voice cloning) model is deployed in Rivulet"
            )
        voice = self.catalog.resolve(request.voice_name, request.language_code)
        try:
            check_output_format(request.encoding, request.sample_rate_hz)
        except core_audio.AudioFormatError as exc:
            raise invalid_argument(str(exc)) from exc
        return voice

    def _script(self, text: str, request: tts.SynthesizeSpeechRequest, voice: TtsVoice) -> Script:
        try:
            script = build_script(text, request.custom_dictionary, voice.phoneme_input)
        except FrontEndError as exc:
            raise invalid_argument(str(exc)) from exc
        return script

    async def _speak(self, voice: TtsVoice, script: Script, out: AudioOutput) -> AsyncIterator[bytes]:
        if script.empty:
            return
        async for samples, rate in self.synthesizer.stream(voice, script.to_json(), request_id_var.get()):
            if rate != voice.sample_rate_hz:
                raise RivuletError(
                    grpc.StatusCode.INTERNAL,
                    f"{voice.model} returned {rate} Hz audio but declares {voice.sample_rate_hz} Hz",
                )
            data = out.add(samples)
            if data:
                yield data

    # -- RPCs ---------------------------------------------------------------------------------
    async def Synthesize(self, request: tts.SynthesizeSpeechRequest, context) -> tts.SynthesizeSpeechResponse:
        text = self._check_text(request.text)
        voice = self._voice(request)
        script = self._script(text, request, voice)
        if script.empty:
            raise invalid_argument("text has nothing to speak (only markup or whitespace)")
        out = AudioOutput(request.encoding, voice.sample_rate_hz, request.sample_rate_hz)
        chunks = [data async for data in self._speak(voice, script, out)]
        chunks.append(out.finish())
        return tts.SynthesizeSpeechResponse(
            audio=b"".join(chunks),
            meta=tts.SynthesizeSpeechResponseMetadata(text=text, processed_text=script.processed_text),
        )

    async def SynthesizeOnline(
        self, request_iterator: AsyncIterator[tts.SynthesizeSpeechRequest], context
    ) -> AsyncIterator[tts.SynthesizeSpeechResponse]:
        """Reader task → queue of text units → synthesis in order; one place cleans up."""
        units: asyncio.Queue[tuple[str, tts.SynthesizeSpeechRequest] | None] = asyncio.Queue()
        # (first request, its request id): the interceptor adopts the id while the reader task reads
        # the first message, so the id is taken from the reader's context.
        first: asyncio.Future[tuple[tts.SynthesizeSpeechRequest, str] | None] = (
            asyncio.get_running_loop().create_future()
        )

        async def read() -> None:
            buffer = TextBuffer()
            total = 0
            last = None
            async for message in request_iterator:
                if not first.done():
                    first.set_result((message, request_id_var.get()))
                last = message
                self._check_text(message.text, "text", allow_empty=True)
                total += len(message.text)
                if total > self.settings.tts_max_stream_chars:
                    raise resource_exhausted(
                        f"this SynthesizeOnline stream sent over {self.settings.tts_max_stream_chars} "
                        "characters of text; open a new stream (RIVULET_TTS_MAX_STREAM_CHARS)"
                    )
                for unit in buffer.add(message.text):
                    await units.put((unit, message))
            if not first.done():
                first.set_result(None)
            for unit in buffer.flush():
                await units.put((unit, last))
            await units.put(None)

        reader = asyncio.create_task(read(), name="tts-online-reader")
        try:
            opened = await _first_or_error(first, reader)
            if opened is None:
                raise invalid_argument("SynthesizeOnline received no request: send at least one text")
            opening, request_id = opened
            request_id_var.set(request_id)
            voice = self._voice(opening)
            out = AudioOutput(opening.encoding, voice.sample_rate_hz, opening.sample_rate_hz)
            spoken = False
            while True:
                unit = await _next_or_error(units, reader)
                if unit is None:
                    break
                text, message = unit
                script = self._script(text, opening if message is None else message, voice)
                if spoken and not script.empty:  # units join like sentences of one text
                    script = Script([{"break_ms": SENTENCE_PAUSE_MS}, *script.entries], script.processed_text)
                meta = tts.SynthesizeSpeechResponseMetadata(text=text, processed_text=script.processed_text)
                async for data in self._speak(voice, script, out):
                    spoken = True
                    yield tts.SynthesizeSpeechResponse(audio=data, meta=meta)
                    meta = None
            if not spoken:
                raise invalid_argument("text is empty: the stream carried nothing to speak")
            tail = out.finish()
            if tail:
                yield tts.SynthesizeSpeechResponse(audio=tail)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def GetRivaSynthesisConfig(
        self, request: tts.RivaSynthesisConfigRequest, context
    ) -> tts.RivaSynthesisConfigResponse:
        groups = self.catalog.alias_groups()
        models = self.catalog.models
        if request.model_name:
            models = [m for m in models if m.name == request.model_name]
            groups = {g: v for g, v in groups.items() if g.lower() == request.model_name.lower()}
            if not models and not groups:
                raise not_found(
                    f"unknown TTS model {request.model_name!r}; available: "
                    + (", ".join([m.name for m in self.catalog.models] + list(groups)) or "none")
                )
        configs = []
        for model in models:
            voices = [v for v in self.catalog.voices if v.model == model.name]
            parameters = {k: v for k, v in model.parameters.items() if k != "voices"}
            parameters.update(
                {
                    "voice_details": model.parameters.get("voices", "{}"),
                    "type": "online",
                    "default_voice": str(any(v.name == self.catalog.default_voice for v in voices)).lower(),
                    "sample_rate_hz": ",".join(sorted({str(v.sample_rate_hz) for v in voices})),
                    "voices": ",".join(v.name for v in voices),
                }
            )
            configs.append(
                tts.RivaSynthesisConfigResponse.Config(model_name=model.name, parameters=parameters)
            )
        for group, members in groups.items():  # the names Riva clients send by default
            configs.append(
                tts.RivaSynthesisConfigResponse.Config(
                    model_name=group,
                    parameters={
                        "language_code": members[0][1].language_code,
                        "voice_name": group,
                        "subvoices": ",".join(f"{sub}:{i}" for i, (sub, _) in enumerate(members)),
                        "alias_of": json.dumps({f"{group}.{sub}": voice.name for sub, voice in members}),
                        "type": "online",
                        "default_voice": "false",
                        "sample_rate_hz": ",".join(sorted({str(v.sample_rate_hz) for _, v in members})),
                    },
                )
            )
        return tts.RivaSynthesisConfigResponse(model_config=configs)


async def _first_or_error(first: asyncio.Future, reader: asyncio.Task):
    """The first request, or the reader's error if it failed before one arrived."""
    done, _ = await asyncio.wait({first, reader}, return_when=asyncio.FIRST_COMPLETED)
    if first in done:
        return first.result()
    reader.result()  # raises the reader's error
    return first.result() if first.done() else None


async def _next_or_error(units: asyncio.Queue, reader: asyncio.Task):
    """The next text unit; if the reader failed (bad text, limits) its error is raised here, in order."""
    if not units.empty():
        return units.get_nowait()
    getter = asyncio.ensure_future(units.get())
    try:
        done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        reader.result()
        return await getter
    finally:
        if not getter.done():
            getter.cancel()


def register(server: grpc.aio.Server, servicer: TtsServicer) -> None:
    riva_tts_pb2_grpc.add_RivaSpeechSynthesisServicer_to_server(servicer, server)
