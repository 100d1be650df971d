"""`nvidia.riva.asr.RivaSpeechRecognition` on a Triton-hosted streaming CTC model.

- StreamingRecognize: the first message carries `streaming_config`, the rest audio. Interim
  results (greedy decoding, `stability`) after every 160 ms chunk when `interim_results`; a final
  result (beam search with `speech_contexts` boosting, up to `max_alternatives`, word times with
  `enable_word_time_offsets`) at every endpoint and at the end of audio.
- Recognize: a whole file (WAV/FLAC/OGG bytes, or raw audio in the config's encoding and rate);
  one result per utterance found by endpointing.
- GetRivaSpeechRecognitionConfig: every ASR model on Triton, listed as `type=online` and
  `type=offline` (the streaming model serves both), with `language_code`; then each alias of it
  (the names Riva clients send by default), with `alias_of` naming the model.
Bad input → INVALID_ARGUMENT; over the stream limits or the concurrent-stream limit →
RESOURCE_EXHAUSTED; unknown model or language → NOT_FOUND; Triton down → UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

import grpc
import numpy as np
from riva.proto import riva_asr_pb2 as asr
from riva.proto import riva_asr_pb2_grpc

from rivulet.asr.catalog import ModelCatalog
from rivulet.asr.metrics import ACTIVE_STREAMS, AUDIO_SECONDS, FINALS
from rivulet.asr.options import RecognitionOptions, recognition_options
from rivulet.asr.pass_admission import PassAdmission
from rivulet.asr.recognizer import Result
from rivulet.asr.second_pass import SecondPass, split_for_second_pass
from rivulet.asr.sequence import SequenceReleaser, TritonSequence
from rivulet.asr.session import (
    CHANNEL_TAG,
    StreamSession,
    alternative,
    check_limits,
    lm_search,
    make_recognizer,
    punctuated_finals,
    whisper_alternatives,
)
from rivulet.asr.settings import AsrSettings
from rivulet.core import audio, audio_header
from rivulet.core.errors import RivuletError, invalid_argument, not_found, resource_exhausted
from rivulet.core.logs import request_id_var
from rivulet.core.triton import TritonClient

log = logging.getLogger(__name__)

HIDDEN_PARAMETERS = ("vocabulary",)  # long; clients do not need it


def decode_whole(data: bytes, options: RecognitionOptions) -> np.ndarray:
    """A whole file or raw buffer → mono float32 at the model's rate."""
    target = options.model.sample_rate_hz
    try:
        if audio_header.container_of(data):
            samples, rate = audio.decode_file(data)
            audio.check_sample_rate(rate, field="the file's sample rate")
            return audio.resample(samples, rate, target)
        if options.encoding in (audio.FLAC, audio.OGGOPUS):
            raise audio.AudioFormatError(
                f"audio is not a {audio.encoding_name(options.encoding)} file (no header found): "
                "send the whole file, or raw samples with encoding LINEAR_PCM"
            )
        if options.encoding == audio.ENCODING_UNSPECIFIED:  # no rate declared, and no header says it
            raise audio.AudioFormatError(
                "sample_rate_hertz is missing and the audio has no header to read it from: raw audio "
                f"needs its rate ({audio.MIN_SAMPLE_RATE_HZ}-{audio.MAX_SAMPLE_RATE_HZ} Hz), or send a "
                "WAV, FLAC or Ogg file"
            )
        samples = audio.decode(data, options.encoding, options.sample_rate_hz)
        return audio.resample(samples, options.sample_rate_hz, target)
    except audio.AudioFormatError as exc:
        raise invalid_argument(str(exc)) from exc


class AsrServicer(riva_asr_pb2_grpc.RivaSpeechRecognitionServicer):
    def __init__(
        self, settings: AsrSettings, triton: TritonClient, catalog: ModelCatalog, releaser: SequenceReleaser
    ) -> None:
        self.settings = settings
        self.triton = triton
        self.catalog = catalog
        self.releaser = releaser
        self.active = 0
        self.passes = PassAdmission(
            settings.asr_second_pass_max_in_flight,
            settings.asr_second_pass_target_ms / 1000,
            settings.asr_second_pass_timeout_ms / 1000,
        )

    @contextlib.contextmanager
    def _admit(self) -> Iterator[None]:
        if self.active >= self.settings.asr_max_streams:
            raise resource_exhausted(
                f"{self.active} recognitions are in progress, the limit of this server: retry later, "
                "use another replica, or raise RIVULET_ASR_MAX_STREAMS"
            )
        self.active += 1
        ACTIVE_STREAMS.inc()
        try:
            yield
        finally:
            self.active -= 1
            ACTIVE_STREAMS.dec()

    # -- StreamingRecognize ------------------------------------------------------------------------
    async def StreamingRecognize(
        self, request_iterator: AsyncIterator[asr.StreamingRecognizeRequest], context
    ) -> AsyncIterator[asr.StreamingRecognizeResponse]:
        first = await anext(aiter(request_iterator), None)
        if first is None:
            raise invalid_argument("the stream was empty: send a streaming_config message, then audio")
        if not first.HasField("streaming_config"):
            raise invalid_argument(
                "the first message must carry streaming_config (encoding, sample_rate_hertz, ...); "
                "audio_content may only follow it"
            )
        config = first.streaming_config
        options = recognition_options(
            config.config, self.catalog, self.settings, streaming=True, interim_results=config.interim_results
        )
        with self._admit():
            # in a thread: a stream boosting words no stream boosted before builds their lexicon
            # (hundreds of ms) without holding up the other streams
            session = await asyncio.to_thread(
                StreamSession,
                options,
                self.settings,
                self.triton,
                self.releaser,
                self.passes,
                request_id_var.get(),
            )
            try:
                async for message in request_iterator:
                    if message.HasField("streaming_config"):
                        raise invalid_argument(
                            "streaming_config was sent again: send it once, in the first message only"
                        )
                    for response in await session.feed(message.audio_content):
                        yield response
                for response in await session.finish():
                    yield response
                context.set_trailing_metadata((("rivulet-final-passes", ",".join(session.final_passes)),))
            finally:
                session.close()

    # -- Recognize ---------------------------------------------------------------------------------
    async def Recognize(self, request: asr.RecognizeRequest, context) -> asr.RecognizeResponse:
        if not request.audio:
            raise invalid_argument("audio is empty: send the audio file (or raw samples) to recognize")
        check_limits(self.settings, 0.0, len(request.audio))
        options = recognition_options(request.config, self.catalog, self.settings, streaming=False)
        samples = await asyncio.to_thread(decode_whole, request.audio, options)
        seconds = len(samples) / options.model.sample_rate_hz
        check_limits(self.settings, seconds, len(request.audio))
        with self._admit():
            if options.second_pass is not None:
                response = await self._recognize_second_pass(options, samples)
                if response is not None:
                    AUDIO_SECONDS.labels(options.model.name).inc(seconds)
                    return response
            results = await self._recognize_samples(options, samples)
            AUDIO_SECONDS.labels(options.model.name).inc(seconds)
        audio_ms = seconds * 1000
        return asr.RecognizeResponse(
            results=[
                asr.SpeechRecognitionResult(
                    alternatives=[
                        alternative(h, options, options.word_time_offsets, audio_ms) for h in r.alternatives
                    ],
                    channel_tag=CHANNEL_TAG,
                    audio_processed=seconds,
                )
                for r in results
            ]
        )

    async def _recognize_second_pass(
        self, options: RecognitionOptions, samples: np.ndarray
    ) -> asr.RecognizeResponse | None:
        """Whisper on the whole audio, cut into segments of at most 30 s at its quietest moments
        (all sent at once: Triton batches them); None when the pass fails (the streaming model then
        transcribes the file)."""
        rate = options.model.sample_rate_hz
        second = SecondPass(self.triton, options.second_pass, options.pass_options, request_id_var.get())
        segments = split_for_second_pass(samples, rate)
        try:
            # counted with the streams' passes, never refused: a file has no streaming final to take
            transcripts = await asyncio.gather(
                *(
                    asyncio.shield(self.passes.start(second.transcribe(samples[a:b], a / rate), force=True))
                    for a, b in segments
                )
            )
        except RivuletError as exc:
            log.warning("second pass failed (%s): Recognize falls back to the streaming model", exc.message)
            FINALS.labels("streaming").inc()
            return None
        seconds = len(samples) / rate
        results = []
        for (_, end), transcript in zip(segments, transcripts, strict=True):
            alternatives = whisper_alternatives(
                transcript, options, options.word_time_offsets, seconds * 1000
            )
            FINALS.labels("whisper" if alternatives else "empty").inc()
            if alternatives:
                results.append(
                    asr.SpeechRecognitionResult(
                        alternatives=alternatives, channel_tag=CHANNEL_TAG, audio_processed=end / rate
                    )
                )
        return asr.RecognizeResponse(results=results)

    async def _recognize_samples(self, options: RecognitionOptions, samples: np.ndarray) -> list[Result]:
        """The whole audio as one Triton sequence, in requests of `asr_offline_request_seconds`:
        the model runs the same streaming graph (offline and streaming transcripts agree), and a
        long file never holds the model for long, so concurrent streams keep their latency."""
        model = options.model
        piece = max(1, round(self.settings.asr_offline_request_seconds * 1000 / model.chunk_ms))
        piece *= model.chunk_samples
        recognizer = await asyncio.to_thread(make_recognizer, options, self.settings)
        sequence = TritonSequence(self.triton, model.name, request_id_var.get())
        results: list[Result] = []
        try:
            for start in range(0, max(len(samples), 1), piece):
                last = start + piece >= len(samples)
                logprobs, frame_start = await sequence.send(samples[start : start + piece], end=last)
                results += recognizer.process(logprobs, frame_start)
        finally:
            self.releaser.release(sequence)  # no-op unless a request failed half-way
        results += recognizer.finish()
        finals = [r for r in results if r.is_final]
        return await punctuated_finals(finals, options, self.settings, self.triton, request_id_var.get())

    # -- GetRivaSpeechRecognitionConfig ------------------------------------------------------------
    async def GetRivaSpeechRecognitionConfig(
        self, request: asr.RivaSpeechRecognitionConfigRequest, context
    ) -> asr.RivaSpeechRecognitionConfigResponse:
        listed = [
            (name, alias_of, m)
            for m in self.catalog.models
            for name, alias_of in self.catalog.aliases.listing(m.name)
        ]
        if request.model_name:
            listed = [entry for entry in listed if entry[0].lower() == request.model_name.lower()]
            if not listed:
                available = ", ".join(m.name for m in self.catalog.models) or "none"
                raise not_found(f"unknown ASR model {request.model_name!r}; available models: {available}")
        configs = []
        for name, alias_of, model in listed:
            shown = {k: v for k, v in model.parameters.items() if k not in HIDDEN_PARAMETERS}
            if alias_of:
                shown["alias_of"] = alias_of
            for kind in ("online", "offline"):
                configs.append(
                    asr.RivaSpeechRecognitionConfigResponse.Config(
                        model_name=name,
                        parameters={
                            **shown,
                            "type": kind,
                            "streaming": str(kind == "online").lower(),
                            "language_code": model.language_code,
                            "sample_rate_hz": str(model.sample_rate_hz),
                            "chunk_ms": str(model.chunk_ms),
                            "default": str(name == self.catalog.default_model).lower(),
                            "language_model_active": str(model.language_model is not None).lower(),
                            "language_model_search": lm_search(model, self.settings),
                            "second_pass": self.catalog.second_pass_description(
                                self.settings.asr_second_pass_model
                            ),
                        },
                    )
                )
        return asr.RivaSpeechRecognitionConfigResponse(model_config=configs)


def register(server: grpc.aio.Server, servicer: AsrServicer) -> None:
    riva_asr_pb2_grpc.add_RivaSpeechRecognitionServicer_to_server(servicer, server)
