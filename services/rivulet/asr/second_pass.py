"""The second ASR pass: each endpointed utterance transcribed by Whisper on Triton (`asr_whisper`).

The streaming model keeps writing interim results and finding endpoints; the final result of an
utterance is Whisper's transcript of its audio (from `asr_second_pass_context_ms` before its first
frame to 60 ms after the last speech the VAD heard: the same audio however early the pass started).
`SpeculativePass` starts that transcription at the first silent frame after speech, so that when
the endpoint fires (160 ms of silence in a voice dialog) the transcript is usually ready; if speech
resumes first, the pass is dropped and a new one starts at the next silence. A pass that fails or
is later than `asr_second_pass_timeout_ms`, or is refused because Whisper has as many passes as it
answers in time (`pass_admission.py`), leaves the final to the streaming model's hypothesis;
`rivulet_asr_finals_total{pass}` counts which pass wrote each final, and the stream's trailing
metadata `rivulet-final-passes` lists them in order (Riva's result messages have no field for it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from rivulet.asr.metrics import PASSES_REFUSED, SECOND_PASS_LATENCY, SPECULATIVE_PASSES, WHISPER_DECODINGS
from rivulet.asr.pass_admission import PassAdmission
from rivulet.core.errors import RivuletError
from rivulet.core.triton import TritonClient

log = logging.getLogger(__name__)

CLOSED_SET = "closed"  # custom_configuration speech_contexts_mode=closed: only the phrases may be heard


@dataclass(frozen=True)
class WhisperWord:
    word: str
    start_s: float
    end_s: float
    probability: float


@dataclass(frozen=True)
class WhisperHypothesis:
    text: str  # the written form, as Whisper wrote it
    logprob: float
    tokens: int

    @property
    def confidence(self) -> float:
        return math.exp(self.logprob / max(self.tokens, 1))


@dataclass(frozen=True)
class WhisperResult:
    hypotheses: list[WhisperHypothesis]
    words: list[WhisperWord] = field(default_factory=list)
    offset_s: float = 0.0  # where the transcribed audio starts in the stream
    no_speech_prob: float = 0.0

    @classmethod
    def from_json(cls, raw: dict, offset_s: float) -> WhisperResult:
        return cls(
            hypotheses=[
                WhisperHypothesis(h["text"], float(h["logprob"]), int(h["tokens"])) for h in raw["hypotheses"]
            ],
            words=[WhisperWord(w[0], float(w[1]), float(w[2]), float(w[3])) for w in raw.get("words", [])],
            offset_s=offset_s,
            no_speech_prob=float(raw.get("no_speech_prob", 0.0)),
        )


@dataclass(frozen=True)
class PassOptions:
    """Decoding options sent with every utterance of a stream."""

    beam_size: int = 1
    num_hypotheses: int = 1
    word_timestamps: bool = False
    phrases: tuple[tuple[str, float], ...] = ()
    closed: bool = False
    window_s: float = 0.0  # the least Whisper encoder window (s); 0: the model's min_window_s

    def as_json(self) -> bytes:
        return json.dumps(
            {"beam_size": self.beam_size, "num_hypotheses": self.num_hypotheses,
             "word_timestamps": self.word_timestamps, "phrases": list(self.phrases), "closed": self.closed,
             "window_s": self.window_s}
        ).encode()  # fmt: skip


SEGMENT_S = 30.0  # Whisper's window
SEARCH_FROM_S = 20.0  # a long recording is cut at its quietest 100 ms between 20 and 30 s


def split_for_second_pass(samples: np.ndarray, rate: int) -> list[tuple[int, int]]:
    """[start, end) sample ranges of at most 30 s covering the audio, cut where it is quietest."""
    segments, start, n = [], 0, len(samples)
    window, step = int(SEGMENT_S * rate), rate // 10
    while n - start > window:
        lo, hi = start + int(SEARCH_FROM_S * rate), start + window - step
        frames = samples[lo:hi][: (hi - lo) // step * step].reshape(-1, step)
        cut = lo + int(np.argmin((frames.astype(np.float64) ** 2).mean(axis=1))) * step + step // 2
        segments.append((start, cut))
        start = cut
    segments.append((start, n))
    return segments


class SecondPass:
    """Client of the second-pass model: one Triton request per utterance (batched there)."""

    def __init__(
        self,
        triton: TritonClient,
        model: str,
        options: PassOptions,
        request_id: str = "",
        timeout_s: float | None = None,
    ) -> None:
        self.triton, self.model, self.options, self.request_id = triton, model, options, request_id
        self.timeout_s = timeout_s  # each request's deadline (None: the Triton client's)

    async def transcribe(self, samples: np.ndarray, offset_s: float) -> WhisperResult:
        outputs = await self.triton.infer(
            self.model,
            {"AUDIO": samples.astype(np.float32, copy=False).reshape(1, -1),
             "OPTIONS": np.array([[self.options.as_json()]], dtype=object)},
            ("RESULT",),
            request_id=self.request_id,
            timeout_s=self.timeout_s,
        )  # fmt: skip
        decoded = json.loads(outputs["RESULT"].reshape(-1)[0])
        WHISPER_DECODINGS.labels(
            str(decoded.get("decoding", "unknown")), "true" if decoded.get("fallback") else "false"
        ).inc()
        return WhisperResult.from_json(decoded, offset_s)


class SpeculativePass:
    """At most one second pass awaited per stream, keyed by the audio span it transcribes. Passes go
    through the service's `PassAdmission`; one that is dropped (speech resumed) or given up on (later
    than the timeout) is never cancelled, only no longer awaited: it ends by its answer or deadline."""

    def __init__(self, second_pass: SecondPass, admission: PassAdmission) -> None:
        self.second_pass, self.admission = second_pass, admission
        self.key: tuple[int, int] | None = None
        self.task: asyncio.Task | None = None

    def start(self, key: tuple[int, int], samples: np.ndarray, offset_s: float) -> bool:
        """Start transcribing `key`'s span unless that pass is in flight already; False when the
        admission refused it (nothing started)."""
        if self.key == key and self.task is not None:
            return True
        self.drop()
        task = self.admission.start(self.second_pass.transcribe(samples, offset_s))
        if task is not None:
            self.key, self.task = key, task
        return task is not None

    def drop(self) -> None:
        self.task, self.key = None, None

    async def result(
        self, key: tuple[int, int], samples: np.ndarray, offset_s: float, timeout_s: float
    ) -> WhisperResult | None:
        """The transcript of `key`'s span (reusing the speculative pass when it covers the same span);
        None when the pass is refused at the admission limit, fails or is later than `timeout_s`."""
        speculative = self.key == key and self.task is not None
        if not speculative and not self.start(key, samples, offset_s):
            log.debug("second pass refused at the limit: the streaming hypothesis is the final")
            PASSES_REFUSED.inc()
            return None
        task = self.task
        self.drop()
        started = time.perf_counter()
        waited: float | None = None  # stays None when the pass fails or is late
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout_s)
            if not done:
                log.warning(
                    "second pass later than %.0f ms: the streaming hypothesis is the final", timeout_s * 1000
                )
                return None
            result = task.result()
            waited = time.perf_counter() - started
            return result
        except RivuletError as exc:
            log.warning("second pass failed (%s): the streaming hypothesis is the final", exc.message)
        finally:
            SECOND_PASS_LATENCY.observe(time.perf_counter() - started)
            self.admission.judge(waited)
            if speculative:
                SPECULATIVE_PASSES.labels("used").inc()
        return None

    def close(self) -> None:
        self.drop()
