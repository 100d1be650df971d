"""Live captions by Whisper: while an utterance goes on, its transcript so far as the interim results.

The streaming model writes interim results on every chunk, but on real voices they are poor (it has
heard few real people: bench/reports/asr_first_pass.md). A request may ask instead
(custom_configuration `whisper_interims_ms`) for Whisper's greedy transcript of the utterance so far,
every that many ms of speech: one pass in flight per stream at a time, started only while the VAD
hears speech and only when the second-pass admission has room (`pass_admission.py`), so captions
never stand in the way of finals under load (they wait, and the streaming model's interims are
shown meanwhile). Once a caption of an utterance has been shown, the streaming model's interims of
that utterance are not (the text would jump between the two); the final is Whisper's as always.
A caption's stability is `CAPTION_STABILITY` (< 0.9: never taken for Riva's early final). A pass
still in flight when the utterance ends is dropped, not cancelled (`rivulet.core.grpc_calls`).
"""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np

from rivulet.asr.metrics import LIVE_CAPTIONS
from rivulet.asr.pass_admission import PassAdmission
from rivulet.asr.second_pass import SecondPass, WhisperResult

CAPTION_STABILITY = 0.5


def caption_pass(second_pass: SecondPass) -> SecondPass:
    """The stream's second pass as a caption's: greedy, one hypothesis, no hints, no word times."""
    options = dataclasses.replace(
        second_pass.options, beam_size=1, num_hypotheses=1, word_timestamps=False, phrases=(), closed=False
    )
    return SecondPass(
        second_pass.triton, second_pass.model, options, second_pass.request_id, second_pass.timeout_s
    )


class LiveCaptions:
    """The captions of one stream: which utterance they are of, the pass in flight, what was shown."""

    def __init__(self, second_pass: SecondPass, admission: PassAdmission, every_samples: int) -> None:
        self.second_pass, self.admission, self.every = second_pass, admission, every_samples
        self.utterance: int | None = None  # where the captioned utterance's audio starts (sample)
        self.task: asyncio.Task | None = None
        self.covered = 0  # where the audio of the last caption pass ended (sample)
        self.shown = False  # a caption of this utterance was sent

    def reset(self) -> None:
        """The utterance ended (its final is on its way): a pass in flight is dropped."""
        self.utterance, self.task, self.covered, self.shown = None, None, 0, False

    def ready(self, utterance: int) -> WhisperResult | None:
        """The caption pass's transcript of `utterance`, once it is back and heard words; None
        otherwise (a failed pass shows nothing: the next one may)."""
        task = self.task
        if task is None or not task.done() or self.utterance != utterance:
            return None
        self.task = None
        if task.cancelled() or task.exception() is not None:
            return None
        result = task.result()
        if not result.hypotheses:
            return None
        self.shown = True
        LIVE_CAPTIONS.labels("shown").inc()
        return result

    def due(self, utterance: int, end: int) -> bool:
        """Whether a caption pass of `utterance` (its audio up to `end`) is due: none in flight and
        `every` samples of new audio since the last one."""
        if self.utterance != utterance:
            self.reset()
            self.utterance = utterance
        return self.task is None and end - max(self.covered, utterance) >= self.every

    def start(self, samples: np.ndarray, offset_s: float, end: int) -> None:
        """Start the due caption pass over `samples` (the utterance up to `end`) if the admission has
        room."""
        task = self.admission.start(self.second_pass.transcribe(samples, offset_s))
        if task is None:
            LIVE_CAPTIONS.labels("refused").inc()
        else:
            self.task, self.covered = task, end
