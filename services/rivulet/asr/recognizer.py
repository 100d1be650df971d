"""From frames of CTC log-probabilities to interim and final results (pure logic, no I/O).

One `Recognizer` per stream (and per `Recognize` call). It endpoints the frames, keeps a greedy
decoder for interim results and a biased beam decoder for finals, and resets both at each
endpoint so every utterance gets its own final result.

`use_beam=False` makes finals greedy too: without a language model, a CTC prefix beam search
almost never changes the best transcript, so the service runs the beam only when it matters
(a language model, `speech_contexts` to boost, or more than one alternative asked for) and saves
its CPU otherwise. With a `LexiconSearch` (a model's LM in flashlight-text, with the stream's
boosted words if any), finals come from the C++ lexicon search instead of the Python one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from rivulet.asr.biasing import ContextGraph
from rivulet.asr.decoding import BeamDecoder, GreedyDecoder, Hypothesis
from rivulet.asr.endpointing import Endpointer, EndpointingParams, Event
from rivulet.asr.language_model import DEFAULT_WEIGHTS, FusionWeights, LanguageModel
from rivulet.asr.lexicon_decoding import LexiconBeamDecoder, LexiconSearch
from rivulet.asr.vocabulary import Vocabulary

PREROLL_MS = 1000  # audio before an utterance starts (or before the end) that its decoding sees
# A partial's stability at most: 1.0 is Riva's mark of the intermediate final (stop_history_eou),
# on which clients answer speculatively (the dialog, NVIDIA's Pipecat), so a partial that merely did
# not change since the last one must not carry it.
PARTIAL_STABILITY_MAX = 0.9


@dataclass(frozen=True)
class Result:
    is_final: bool
    alternatives: list[Hypothesis]
    stability: float = 0.0
    span: tuple[int, int] = (0, 0)  # finals: [first frame, last speech frame + 1) of the utterance


def _stability(previous: str, current: str) -> float:
    """Share of `current` already the same in the previous interim result, scaled to 0.0–0.9."""
    if not current:
        return 0.0
    same = 0
    for a, b in zip(previous, current, strict=False):
        if a != b:
            break
        same += 1
    return PARTIAL_STABILITY_MAX * same / len(current)


class Recognizer:
    def __init__(
        self,
        vocabulary: Vocabulary,
        endpointing: EndpointingParams,
        frame_ms: float,
        *,
        beam_size: int = 8,
        context: ContextGraph | None = None,
        max_alternatives: int = 1,
        interim_results: bool = False,
        use_beam: bool = True,
        lm: LanguageModel | None = None,
        weights: FusionWeights = DEFAULT_WEIGHTS,
        lexicon_search: LexiconSearch | None = None,
    ) -> None:
        self.vocabulary = vocabulary
        self.endpointer = Endpointer(endpointing, frame_ms)
        self.greedy = GreedyDecoder(vocabulary)
        use_beam = use_beam or lm is not None or context is not None or max_alternatives > 1
        self.beam: BeamDecoder | LexiconBeamDecoder | None = None
        if lexicon_search is not None:
            self.beam = lexicon_search.decoder()
        elif use_beam:
            self.beam = BeamDecoder(vocabulary, beam_size=beam_size, context=context, lm=lm, weights=weights)
        self.max_alternatives = max(1, max_alternatives)
        self.interim_results = interim_results
        # frames seen while no utterance is active: decoded once speech starts (the first word), or
        # at the end of the audio when speech too faint to start an utterance ("yes") came last
        preroll = max(self.endpointer.start_frames, round(PREROLL_MS / frame_ms))
        self._pending: deque[tuple[int, np.ndarray]] = deque(maxlen=preroll)
        self._previous_interim = ""
        self._utterance_start = 0  # first frame of the utterance in progress (its pre-roll included)
        self._last_speech = -1  # last speech frame seen while an utterance is active
        self._last_frame = -1  # last frame seen
        self._heard_speech = False  # any speech frame since the last final (active or not)

    def span(self) -> tuple[int, int]:
        """The current utterance's frames: [start, last speech frame + 1)."""
        return self._utterance_start, max(self._last_speech + 1, self._utterance_start)

    def in_pause(self) -> bool:
        """An utterance is active and its latest frame is not speech: the endpoint may be near."""
        return self.endpointer.active and self._last_frame > self._last_speech >= 0

    @property
    def active(self) -> bool:
        return self.endpointer.active

    def _decode(self, logprobs: np.ndarray, frame_start: int) -> None:
        if len(logprobs):
            self.greedy.advance(logprobs, frame_start)
            if self.beam:
                self.beam.advance(logprobs, frame_start)

    def _decode_pending(self) -> None:
        if self._pending:
            first = self._pending[0][0]
            self._decode(np.stack([row for _, row in self._pending]), first)
            self._pending.clear()

    def _best(self) -> list[Hypothesis]:
        """The best transcripts. Where the acoustic model wrote characters, an empty transcript
        (the LM found every word too unlikely: a short "yes" it cannot make out) gives way to the
        best one with words: a reply the dialog can question beats hearing nothing."""
        if not self.beam:
            return [self.greedy.hypothesis()]
        hypotheses = self.beam.best(self.max_alternatives + 1)
        if hypotheses and not hypotheses[0].text and not self.greedy.hypothesis().text:
            return hypotheses[:1]  # nothing heard, nothing said
        return [h for h in hypotheses if h.text][: self.max_alternatives] or hypotheses[:1]

    def _final(self, span: tuple[int, int]) -> Result | None:
        hypotheses = self._best()
        self.greedy.reset()
        if self.beam:
            self.beam.reset()
        self._previous_interim = ""
        self._last_speech = -1
        self._heard_speech = False
        if not hypotheses or not hypotheses[0].text:
            return None
        return Result(True, hypotheses, span=span)

    def process(self, logprobs: np.ndarray, frame_start: int) -> list[Result]:
        """Feed a block of frames [T, V] whose first frame has absolute index `frame_start`."""
        results: list[Result] = []
        speech = (logprobs.argmax(axis=1) != self.vocabulary.blank).tolist() if len(logprobs) else []
        run = 0  # first row of the active run not yet decoded
        for i, is_speech in enumerate(speech):
            frame = self._last_frame = frame_start + i
            self._heard_speech = self._heard_speech or is_speech
            if not self.endpointer.active:
                self._pending.append((frame, logprobs[i]))
                if self.endpointer.push(is_speech) is Event.START:
                    self._utterance_start = self._pending[0][0]
                    self._last_speech = frame
                    self._decode_pending()
                    run = i + 1
                continue
            if is_speech:
                self._last_speech = frame
            event = self.endpointer.push(is_speech)
            if event is Event.END:
                self._decode(logprobs[run : i + 1], frame_start + run)
                run = i + 1
                final = self._final(self.span())
                if final:
                    results.append(final)
            elif event is Event.EOU:
                self._decode(logprobs[run : i + 1], frame_start + run)
                run = i + 1
                early = self._best()
                if early and early[0].text:
                    results.append(Result(False, early, stability=1.0))
        if self.endpointer.active:
            self._decode(logprobs[run:], frame_start + run)
            if self.interim_results:
                hypothesis = self.beam.leading() if self.beam else self.greedy.hypothesis()
                if hypothesis.text:
                    stability = _stability(self._previous_interim, hypothesis.text)
                    self._previous_interim = hypothesis.text
                    results.append(Result(False, [hypothesis], stability=stability))
        return results

    def finish(self) -> list[Result]:
        """End of audio: the final of the utterance in progress (or of speech too short to start one)."""
        span = self.span()
        if not self.endpointer.active:
            span = (self._pending[0][0], self._last_frame + 1) if self._pending else (0, 0)
            self._decode_pending()
        final = self._final(span)
        return [final] if final else []

    @property
    def heard_speech(self) -> bool:
        """A speech frame came since the last final (an utterance too faint to start counts)."""
        return self._heard_speech
