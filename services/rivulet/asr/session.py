"""One StreamingRecognize stream: audio in, Riva results out, cleaned up in one place.

Audio of any encoding, rate and message size is decoded and resampled to the model's rate
(`core.audio.PcmDecoder`), re-cut into the model's chunks (160 ms) and sent, one request per
chunk, as the stream's Triton sequence. Each chunk's frames go through the `Recognizer`
(endpointing, interim and final decoding). Limits on duration and bytes are checked as audio
arrives. `close()` is the single cleanup point: it frees the Triton sequence if the stream did not
finish (client gone, error), and always runs (the servicer calls it in `finally`).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from riva.proto import riva_asr_pb2 as asr

from rivulet.asr.catalog import AsrModel
from rivulet.asr.decoding import Hypothesis, words_of
from rivulet.asr.language_model import FusionWeights
from rivulet.asr.lexicon_decoding import LexiconSearch
from rivulet.asr.metrics import AUDIO_SECONDS, CHUNK_LATENCY, FINAL_LATENCY
from rivulet.asr.options import RecognitionOptions
from rivulet.asr.recognizer import Recognizer, Result
from rivulet.asr.sequence import SequenceReleaser, TritonSequence
from rivulet.asr.settings import AsrSettings
from rivulet.core import audio
from rivulet.core.errors import invalid_argument, resource_exhausted
from rivulet.core.triton import TritonClient

CHANNEL_TAG = 1  # mono: results come from the first (only) channel


def make_recognizer(options: RecognitionOptions, settings: AsrSettings) -> Recognizer:
    model = options.model
    lexicon_search = None
    if model.lexicon is not None and lm_search(model, settings, options.lm_search) == "lexicon":
        lexicon_search = LexiconSearch(
            model.lexicon,
            fusion_weights(model.lexicon_fusion, settings),
            settings.asr_lexicon_beam_size,
            settings.asr_lexicon_beam_threshold,
        )
        if options.word_boosts:  # speech_contexts: the stream's words boosted (None: it cannot,
            lexicon_search = lexicon_search.boosted(  # the open search boosts the phrases)
                options.word_boosts, settings.asr_boost_floor_per_unit, settings.asr_boost_scale
            )
    return Recognizer(
        options.model.vocabulary,
        options.endpointing,
        options.model.frame_shift_ms,
        beam_size=settings.asr_beam_size,
        context=options.context,
        max_alternatives=options.max_alternatives,
        interim_results=options.interim_results,
        use_beam=settings.asr_final_decoding == "beam",
        lm=options.model.language_model,
        weights=fusion_weights(options.model.fusion, settings),
        lexicon_search=lexicon_search,
    )


def lm_search(model: AsrModel, settings: AsrSettings, requested: str | None = None) -> str:
    """Which search decodes this model's finals with its LM: lexicon (C++), open (Python) or none;
    `requested` is a request's custom_configuration lm_search, else the service's setting."""
    if model.language_model is None:
        return "none"
    return "lexicon" if (requested or settings.asr_lm_search) == "lexicon" and model.lexicon else "open"


def fusion_weights(tuned: FusionWeights, settings: AsrSettings) -> FusionWeights:
    """The model's tuned LM weights, with any set in the service's settings instead."""
    overrides = {
        "alpha": settings.asr_lm_alpha,
        "beta": settings.asr_lm_beta,
        "oov_penalty": settings.asr_lm_oov_penalty,
    }
    return dataclasses.replace(tuned, **{k: v for k, v in overrides.items() if v is not None})


def alternative(
    hypothesis: Hypothesis, options: RecognitionOptions, with_words: bool, audio_ms: float
) -> asr.SpeechRecognitionAlternative:
    """A Riva alternative; word times in ms from the start of the audio, clamped inside it."""
    model = options.model
    alt = asr.SpeechRecognitionAlternative(
        transcript=hypothesis.text, confidence=hypothesis.confidence, language_code=[model.language_code]
    )
    if with_words:
        for word in words_of(hypothesis, model.vocabulary):
            start = min(word.start_frame * model.frame_shift_ms, audio_ms)
            end = min(max(word.end_frame * model.frame_shift_ms, start), audio_ms)
            alt.words.add(
                start_time=round(start),
                end_time=round(end),
                word=word.word,
                confidence=word.confidence,
                language_code=model.language_code,
            )
    return alt


def check_limits(settings: AsrSettings, seconds: float, nbytes: int) -> None:
    if nbytes > settings.asr_max_stream_bytes:
        raise resource_exhausted(
            f"the audio has passed {settings.asr_max_stream_bytes} bytes, the limit per stream: "
            "split it into shorter streams (or raise RIVULET_ASR_MAX_STREAM_BYTES)"
        )
    if seconds > settings.asr_max_stream_seconds:
        raise resource_exhausted(
            f"the audio has passed {settings.asr_max_stream_seconds:g} s, the limit per stream: "
            "split it into shorter streams (or raise RIVULET_ASR_MAX_STREAM_SECONDS)"
        )


class StreamSession:
    def __init__(
        self,
        options: RecognitionOptions,
        settings: AsrSettings,
        triton: TritonClient,
        releaser: SequenceReleaser,
        request_id: str = "",
    ) -> None:
        self.options = options
        self.settings = settings
        self.model = options.model
        self.releaser = releaser
        try:
            rate = options.sample_rate_hz or self.model.sample_rate_hz  # FLAC/OGG: the file says
            self.decoder = audio.PcmDecoder(options.encoding, rate, self.model.sample_rate_hz)
        except audio.AudioFormatError as exc:
            raise invalid_argument(str(exc)) from exc
        self.sequence = TritonSequence(triton, self.model.name, request_id)
        self.recognizer = make_recognizer(options, settings)
        self._buffer = np.zeros(0, dtype=np.float32)
        self._received = 0  # samples decoded so far (model rate)
        self._sent = 0  # samples sent to the model

    @property
    def audio_processed_s(self) -> float:
        return self._sent / self.model.sample_rate_hz

    def _responses(self, results: list[Result]) -> list[asr.StreamingRecognizeResponse]:
        audio_ms = self.audio_processed_s * 1000
        words = self.options.word_time_offsets
        return [
            asr.StreamingRecognizeResponse(
                results=[
                    asr.StreamingRecognitionResult(
                        alternatives=[
                            alternative(h, self.options, r.is_final and words, audio_ms)
                            for h in r.alternatives
                        ],
                        is_final=r.is_final,
                        stability=0.0 if r.is_final else r.stability,
                        channel_tag=CHANNEL_TAG,
                        audio_processed=self.audio_processed_s,
                    )
                ]
            )
            for r in results
        ]

    def _take(self, samples: np.ndarray) -> None:
        self._received += len(samples)
        check_limits(self.settings, self._received / self.model.sample_rate_hz, self.decoder.bytes_in)
        if len(samples):
            self._buffer = np.concatenate([self._buffer, samples]) if len(self._buffer) else samples

    async def _send(self, samples: np.ndarray, end: bool) -> list[Result]:
        logprobs, frame_start = await self.sequence.send(samples, end=end)
        self._sent += len(samples)
        AUDIO_SECONDS.labels(self.model.name).inc(len(samples) / self.model.sample_rate_hz)
        return self.recognizer.process(logprobs, frame_start)

    async def feed(self, data: bytes) -> list[asr.StreamingRecognizeResponse]:
        """One audio message: every complete chunk goes to the model; returns the responses."""
        if self.decoder.bytes_in + len(data) > self.settings.asr_max_stream_bytes:
            check_limits(self.settings, 0.0, self.decoder.bytes_in + len(data))
        try:
            self._take(self.decoder.feed(data))
        except audio.AudioFormatError as exc:
            raise invalid_argument(str(exc)) from exc
        results: list[Result] = []
        size = self.model.chunk_samples
        while len(self._buffer) >= size:
            chunk, self._buffer = self._buffer[:size], self._buffer[size:]
            started = time.perf_counter()
            results += await self._send(chunk, end=False)
            CHUNK_LATENCY.labels(self.model.name).observe(time.perf_counter() - started)
        return self._responses(results)

    async def finish(self) -> list[asr.StreamingRecognizeResponse]:
        """End of audio: the rest goes with END (the model flushes), then the last final."""
        started = time.perf_counter()
        try:
            self._take(self.decoder.finish())
        except audio.AudioFormatError as exc:
            raise invalid_argument(str(exc)) from exc
        results: list[Result] = []
        size = self.model.chunk_samples
        while len(self._buffer) > size:  # FLAC/OGG arrive whole at the end: still chunk by chunk
            chunk, self._buffer = self._buffer[:size], self._buffer[size:]
            results += await self._send(chunk, end=False)
        if self.sequence.started or len(self._buffer):
            results += await self._send(self._buffer, end=True)
            self._buffer = np.zeros(0, dtype=np.float32)
        results += self.recognizer.finish()
        FINAL_LATENCY.labels(self.model.name).observe(time.perf_counter() - started)
        return self._responses(results)

    def close(self) -> None:
        """Free the Triton sequence unless the stream ended normally (idempotent)."""
        self.releaser.release(self.sequence)
