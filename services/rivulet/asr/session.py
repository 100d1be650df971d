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
import logging
import time
from dataclasses import dataclass

import numpy as np
from riva.proto import riva_asr_pb2 as asr

from rivulet.asr.catalog import AsrModel
from rivulet.asr.decoding import Hypothesis, words_of
from rivulet.asr.endpointing import EndpointingParams
from rivulet.asr.language_model import FusionWeights
from rivulet.asr.lexicon_decoding import LexiconSearch
from rivulet.asr.live_captions import CAPTION_STABILITY, LiveCaptions, caption_pass
from rivulet.asr.metrics import AUDIO_SECONDS, CHUNK_LATENCY, FINAL_LATENCY, FINALS, SPECULATIVE_PASSES
from rivulet.asr.options import RecognitionOptions
from rivulet.asr.pass_admission import PassAdmission
from rivulet.asr.recognizer import Recognizer, Result
from rivulet.asr.second_pass import SecondPass, SpeculativePass, WhisperResult
from rivulet.asr.sequence import SequenceReleaser, TritonSequence
from rivulet.asr.settings import AsrSettings
from rivulet.asr.transcript_forms import format_transcript
from rivulet.core import audio
from rivulet.core.errors import RivuletError, invalid_argument, resource_exhausted
from rivulet.core.punctuation import punctuate
from rivulet.core.triton import TritonClient
from rivulet.core.vad import SilenceTracker

log = logging.getLogger(__name__)

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


def whisper_alternatives(
    result: WhisperResult, options: RecognitionOptions, with_words: bool, audio_ms: float
) -> list[asr.SpeechRecognitionAlternative]:
    """Riva alternatives from a second-pass result, in the form the request asked for (spoken or
    written, with or without punctuation); word times in ms from the start of the stream."""
    model = options.model
    alternatives, seen = [], set()
    for hypothesis in result.hypotheses:
        text = format_transcript(hypothesis.text, verbatim=options.verbatim, punctuation=options.punctuation)
        if not text or text in seen or len(alternatives) >= options.max_alternatives:
            continue  # written forms that read the same ("371", "371.") are one alternative
        seen.add(text)
        alt = asr.SpeechRecognitionAlternative(
            transcript=text, confidence=hypothesis.confidence, language_code=[model.language_code]
        )
        if with_words and not alternatives:
            for word in result.words:  # a written word may be several spoken ones ("371"): share its time
                pieces = format_transcript(
                    word.word, verbatim=options.verbatim, punctuation=options.punctuation, sentence=False
                )
                pieces = pieces.split()
                step = (word.end_s - word.start_s) / max(len(pieces), 1)
                for k, piece in enumerate(pieces):
                    start = min((result.offset_s + word.start_s + k * step) * 1000, audio_ms)
                    end = min(max((result.offset_s + word.start_s + (k + 1) * step) * 1000, start), audio_ms)
                    alt.words.add(start_time=round(start), end_time=round(end), word=piece,
                                  confidence=word.probability, language_code=model.language_code)  # fmt: skip
        alternatives.append(alt)
    return alternatives


class AudioHistory:
    """The stream's audio as sent to the model, addressed by absolute sample index; older audio
    than an utterance can reach is dropped."""

    def __init__(self) -> None:
        self.start = 0
        self._samples = np.zeros(0, dtype=np.float32)

    @property
    def end(self) -> int:
        return self.start + len(self._samples)

    def append(self, samples: np.ndarray) -> None:
        self._samples = np.concatenate([self._samples, samples]) if len(self._samples) else samples.copy()

    def slice(self, begin: int, end: int) -> np.ndarray:
        begin, end = max(begin, self.start), min(end, self.end)
        return self._samples[begin - self.start : max(end, begin) - self.start]

    def forget_before(self, index: int) -> None:
        if index > self.start:
            cut = min(index, self.end) - self.start
            self._samples, self.start = self._samples[cut:], self.start + cut


@dataclass(frozen=True)
class SecondPassFinal:
    """A result written by the second pass: the final, or (is_final False) the intermediate final
    that Riva's `stop_history_eou` asks for, stability 1.0, or a live caption (`live_captions.py`),
    stability `CAPTION_STABILITY`."""

    result: WhisperResult
    is_final: bool = True
    interim_stability: float = 1.0

    @property
    def stability(self) -> float:
        return 0.0 if self.is_final else self.interim_stability


PASS_DEADLINE_SLACK_S = 1.0  # a pass's deadline beyond the second-pass timeout (it may start early)
PASS_HEAD_START_MS = 60  # a busy Whisper's pass still starts this long before the early final/endpoint
MAX_UTTERANCE_S = 30.0  # Whisper's window: longer utterances are cut to their last 30 s


def speculate_after_ms(endpointing: EndpointingParams, busy_ms: int, idle_ms: int) -> int:
    """The VAD silence at which an utterance's second pass starts: `idle_ms`, or `busy_ms` while
    Whisper is busy (pauses inside an utterance then drop fewer passes), but never later than
    PASS_HEAD_START_MS before the stream's early final (stop_history_eou) or endpoint (stop_history)."""
    if busy_ms <= idle_ms:
        return idle_ms
    eou_ms = endpointing.stop_history_eou_ms
    ends = eou_ms if eou_ms > 0 else endpointing.stop_history_ms
    return max(idle_ms, min(busy_ms, ends - PASS_HEAD_START_MS))


async def punctuated_finals(
    results: list, options: RecognitionOptions, settings: AsrSettings, triton: TritonClient, request_id: str
) -> list:
    """The streaming model's finals (lower-case words), punctuated and capitalized by the
    punctuation model when the request asks for it, as Riva does; Whisper's finals carry their
    own. Without the model (or when it fails) the words stay as they are."""
    model = settings.asr_punctuation_model
    if not (options.punctuation and model):
        return results
    out = []
    for r in results:
        if isinstance(r, Result) and r.is_final:
            try:
                texts = await punctuate(triton, [h.text for h in r.alternatives], model, request_id)
            except RivuletError as exc:
                log.warning("punctuation model %s failed, final left unpunctuated: %s", model, exc)
            else:
                alternatives = [
                    dataclasses.replace(h, text=t) for h, t in zip(r.alternatives, texts, strict=True)
                ]
                r = dataclasses.replace(r, alternatives=alternatives)
        out.append(r)
    return out


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
        admission: PassAdmission,
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
        self.sequence = TritonSequence(triton, self.model.name, request_id, self.model.frame_samples)
        self.triton, self.request_id = triton, request_id
        self.recognizer = make_recognizer(options, settings)
        self._buffer = np.zeros(0, dtype=np.float32)
        self._received = 0  # samples decoded so far (model rate)
        self._sent = 0  # samples sent to the model
        self.final_passes: list[str] = []  # which pass wrote each final, in order
        self.second: SpeculativePass | None = None
        self.captions: LiveCaptions | None = None  # Whisper's interim results, when asked for
        if options.second_pass is not None:
            # a pass nobody waits for any more (dropped, or later than the timeout) ends at its
            # deadline: it is not cancelled (rivulet.core.triton)
            deadline_s = settings.asr_second_pass_timeout_ms / 1000 + PASS_DEADLINE_SLACK_S
            second_pass = SecondPass(
                triton, options.second_pass, options.pass_options, request_id, deadline_s
            )
            self.second = SpeculativePass(second_pass, admission)
            every = options.whisper_interims_ms * self.model.sample_rate_hz // 1000
            if every:
                self.captions = LiveCaptions(caption_pass(second_pass), admission, every)
            self.history = AudioHistory()
            self.silence = SilenceTracker(audio.LINEAR_PCM, self.model.sample_rate_hz)
            self._voiced_end = 0  # sample index just after the last audio the VAD called speech
            self._consumed = 0  # sample index where the last final's audio ended
            self._told_early: tuple[int, int] | None = None  # the pass the last early final came from

    @property
    def audio_processed_s(self) -> float:
        return self._sent / self.model.sample_rate_hz

    def _alternatives(self, r: Result | SecondPassFinal, audio_ms: float) -> list:
        words = self.options.word_time_offsets
        if isinstance(r, SecondPassFinal):
            return whisper_alternatives(r.result, self.options, words and r.is_final, audio_ms)
        return [alternative(h, self.options, r.is_final and words, audio_ms) for h in r.alternatives]

    def _responses(self, results: list[Result | SecondPassFinal]) -> list[asr.StreamingRecognizeResponse]:
        audio_ms = self.audio_processed_s * 1000
        return [
            asr.StreamingRecognizeResponse(
                results=[
                    asr.StreamingRecognitionResult(
                        alternatives=self._alternatives(r, audio_ms),
                        is_final=r.is_final,
                        stability=r.stability if not r.is_final else 0.0,
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
            if self.second is not None:  # the VAD hears the audio as it arrives, not chunk by chunk
                self.history.append(samples)
                silence_ms = self.silence.feed_samples(samples)
                if self.silence.speech_ms:  # where the last speech ended, however the audio was cut
                    examined = self._received - self.silence.pending_samples
                    self._voiced_end = examined - silence_ms * self.model.sample_rate_hz // 1000

    async def _send(self, samples: np.ndarray, end: bool) -> list[Result | SecondPassFinal]:
        logprobs, frame_start = await self.sequence.send(samples, end=end)
        self._sent += len(samples)
        AUDIO_SECONDS.labels(self.model.name).inc(len(samples) / self.model.sample_rate_hz)
        return await self._second_pass(self.recognizer.process(logprobs, frame_start))

    # -- the second pass -------------------------------------------------------------------------
    def _utterance_audio(self, span: tuple[int, int]) -> tuple[tuple[int, int], np.ndarray, float, int]:
        """The key, samples and start time (s) of the audio of an utterance whose frames are `span`:
        from its first frame (less the context) to the end of the speech the VAD heard (plus the
        context), never before the previous final's audio."""
        rate, frame = self.model.sample_rate_hz, self.model.frame_samples
        # the end of the speech the VAD heard plus the first silence that starts a speculation: the
        # same audio whether the pass started then or at the endpoint (the transcript does not depend
        # on when it ran)
        start = self._utterance_start(span)
        voiced = self._voiced_end if self._voiced_end > start else span[1] * frame
        end = min(voiced + self.settings.asr_second_pass_speculate_after_ms * rate // 1000, self._received)
        begin = max(start, end - int(MAX_UTTERANCE_S * rate))
        return (begin, self._voiced_end), self.history.slice(begin, end), begin / rate, end

    def _utterance_start(self, span: tuple[int, int]) -> int:
        """Where the audio of the utterance whose frames are `span` starts (sample): its first frame
        less the context, never before the previous final's audio."""
        context = self.settings.asr_second_pass_context_ms * self.model.sample_rate_hz // 1000
        return max(span[0] * self.model.frame_samples - context, self._consumed, 0)

    async def _transcribe(self, span: tuple[int, int]) -> WhisperResult | None:
        key, samples, offset, end = self._utterance_audio(span)
        self._consumed = end
        if self.captions is not None:
            self.captions.reset()
        self.history.forget_before(end - int(MAX_UTTERANCE_S * self.model.sample_rate_hz))
        return await self.second.result(key, samples, offset, self.settings.asr_second_pass_timeout_ms / 1000)

    async def _punctuated(self, results: list) -> list:
        return await punctuated_finals(results, self.options, self.settings, self.triton, self.request_id)

    async def _second_pass(self, results: list[Result]) -> list[Result | SecondPassFinal]:
        if self.second is None:
            self.final_passes += ["streaming" for r in results if r.is_final]
            FINALS.labels("streaming").inc(sum(r.is_final for r in results))
            return await self._punctuated(list(results))
        out: list[Result | SecondPassFinal] = []
        for r in results:
            if not r.is_final:
                # the early final is Whisper's (`_early_final`), not the first pass's; so are the
                # utterance's interims once a live caption of it was shown
                if r.stability < 1.0 and not (self.captions is not None and self.captions.shown):
                    out.append(r)
                continue
            out += self._final_from(r, await self._transcribe(r.span))
        return await self._punctuated(out)

    def _early_final(self) -> list[SecondPassFinal]:
        """Riva's intermediate final (`stop_history_eou` > 0): once the VAD has heard that much
        silence and the speculative pass is back, its transcript as an interim result with stability
        1.0 — the words of the final unless speech resumes (a client may answer on them ahead of the
        endpoint). Once per pass; none when the pass heard no speech or failed."""
        eou_ms = self.options.endpointing.stop_history_eou_ms
        second, task = self.second, self.second.task
        if (
            eou_ms <= 0
            or task is None
            or not task.done()
            or second.key == self._told_early
            or self.silence.silence_ms < eou_ms
        ):
            return []
        self._told_early = second.key
        if task.cancelled() or task.exception() is not None:
            return []  # the final's own wait reports it
        result = task.result()
        return [SecondPassFinal(result, is_final=False)] if result.hypotheses else []

    def _final_from(self, streaming: Result | None, whisper: WhisperResult | None) -> list:
        if whisper is not None and whisper.hypotheses:
            self.final_passes.append("whisper")
            FINALS.labels("whisper").inc()
            return [SecondPassFinal(whisper)]
        if whisper is not None:  # Whisper heard no speech: no final (rather than noise as words)
            FINALS.labels("empty").inc()
            return []
        if streaming is not None:
            self.final_passes.append("streaming")
            FINALS.labels("streaming").inc()
            return [streaming]
        return []

    def _speculate(self) -> None:
        """At the first silence after speech in an utterance, start its second pass; speech resuming
        (the VAD heard voice after the pass's audio) drops it."""
        second = self.second
        if second.key is not None and second.key[1] != self._voiced_end:
            second.drop()
            SPECULATIVE_PASSES.labels("dropped").inc()
        if (
            second.key is None
            and second.admission.has_room
            and self.recognizer.active
            and self.silence.silence_ms
            >= speculate_after_ms(
                self.options.endpointing,
                self.settings.asr_second_pass_busy_speculate_after_ms
                if second.admission.busy(self.settings.asr_second_pass_busy_passes)
                else 0,
                self.settings.asr_second_pass_speculate_after_ms,
            )
            and self._voiced_end > self._consumed
        ):
            key, samples, offset, _ = self._utterance_audio(self.recognizer.span())
            second.start(key, samples, offset)

    async def feed(self, data: bytes) -> list[asr.StreamingRecognizeResponse]:
        """One audio message: every complete chunk goes to the model; returns the responses."""
        if self.decoder.bytes_in + len(data) > self.settings.asr_max_stream_bytes:
            check_limits(self.settings, 0.0, self.decoder.bytes_in + len(data))
        try:
            self._take(self.decoder.feed(data))
        except audio.AudioFormatError as exc:
            raise invalid_argument(str(exc)) from exc
        results: list[Result | SecondPassFinal] = []
        size = self.model.chunk_samples
        while len(self._buffer) >= size:
            chunk, self._buffer = self._buffer[:size], self._buffer[size:]
            started = time.perf_counter()
            results += await self._send(chunk, end=False)
            CHUNK_LATENCY.labels(self.model.name).observe(time.perf_counter() - started)
        if self.second is not None:
            self._speculate()
            results += self._early_final()
            if self.captions is not None:
                results += self._live_caption()
        return self._responses(results)

    def _live_caption(self) -> list[SecondPassFinal]:
        """The caption pass's transcript once it is back; a new pass while speech goes on."""
        if not self.recognizer.active:
            return []
        utterance = self._utterance_start(self.recognizer.span())
        out = []
        result = self.captions.ready(utterance)
        if result is not None:
            out.append(SecondPassFinal(result, is_final=False, interim_stability=CAPTION_STABILITY))
        # while the VAD hears speech the caption may grow
        speaking = self.silence.silence_ms < self.settings.asr_second_pass_speculate_after_ms
        if speaking and self.captions.due(utterance, self._received):
            rate = self.model.sample_rate_hz
            begin = max(utterance, self._received - int(MAX_UTTERANCE_S * rate))
            self.captions.start(self.history.slice(begin, self._received), begin / rate, self._received)
        return out

    async def finish(self) -> list[asr.StreamingRecognizeResponse]:
        """End of audio: the rest goes with END (the model flushes), then the last final."""
        started = time.perf_counter()
        try:
            self._take(self.decoder.finish())
        except audio.AudioFormatError as exc:
            raise invalid_argument(str(exc)) from exc
        results: list[Result | SecondPassFinal] = []
        size = self.model.chunk_samples
        while len(self._buffer) > size:  # FLAC/OGG arrive whole at the end: still chunk by chunk
            chunk, self._buffer = self._buffer[:size], self._buffer[size:]
            results += await self._send(chunk, end=False)
        if self.sequence.started or len(self._buffer):
            results += await self._send(self._buffer, end=True)
            self._buffer = np.zeros(0, dtype=np.float32)
        results += await self._last_final()
        FINAL_LATENCY.labels(self.model.name).observe(time.perf_counter() - started)
        return self._responses(results)

    async def _last_final(self) -> list[Result | SecondPassFinal]:
        """The end of the audio: the utterance in progress is final. With the second pass, speech the
        streaming model heard but could not start an utterance with (a faint short word) is
        transcribed too: the VAD and Whisper decide whether it was speech."""
        heard = self.recognizer.heard_speech or self.recognizer.active
        span = self.recognizer.span() if self.recognizer.active else None
        streaming = self.recognizer.finish()
        if self.second is None:
            return await self._second_pass(streaming)
        if not heard and not streaming and self._voiced_end <= self._consumed:
            return []
        if span is None:
            frame = self.model.frame_samples
            span = streaming[0].span if streaming else (self._consumed // frame, self._received // frame)
        return await self._punctuated(
            self._final_from(streaming[0] if streaming else None, await self._transcribe(span))
        )

    def close(self) -> None:
        """Free the Triton sequence unless the stream ended normally (idempotent)."""
        self.releaser.release(self.sequence)
        if self.second is not None:
            self.second.close()
