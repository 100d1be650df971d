"""Whisper's own checks on a transcript, as faster-whisper's `transcribe()` applies them (mean
log-probability, compression ratio, no-speech probability, the temperature fallback), and the
clean-up of what it wrote: loops and segments placed after the end of the audio. A mixin of
`whisper_engine.WhisperEngine`, whose model, tokenizer, thresholds and token budget it uses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import ctranslate2
import numpy as np
from faster_whisper.transcribe import get_compression_ratio
from whisper_text import HOP, LOOP_REPEATS, SAMPLE_RATE, canon, generate_max_length, log_softmax, trim_loop

LATE_SEGMENT_S = 0.5  # a timestamped segment starting this long after the audio's end is invented
FALLBACK_TEMPERATURES = (0.2, 0.4, 0.6, 0.8, 1.0)  # Whisper's own fallback, as transcribe() runs it
FALLBACK_BEST_OF = 5
COMPRESSION_RATIO_THRESHOLD = 2.4


@dataclass
class _Decoded:
    """A decoding result in CTranslate2's shape (sequences, scores; no logits) with the no-speech
    probability of the first decoding."""

    sequences_ids: list[list[int]]
    scores: list[float]
    no_speech_prob: float
    logits: list = field(default_factory=list)


class TranscriptChecks:
    """Whisper's checks and the clean-up of its transcripts (see the module)."""

    def _trim_spoken_loop(self, tokens: list[int], min_repeats: int) -> list[int]:
        """`trim_loop` over the words the tokens spell, whatever their case and punctuation ("See
        you next time, see you next time, see you next time."): the tokens up to the second copy."""
        words = [(i, w) for i, t in enumerate(tokens) if (w := canon(self.tokenizer.decode([t])))]
        kept = trim_loop([w for _, w in words], min_repeats)
        return tokens if len(kept) == len(words) else tokens[: words[len(kept)][0]]

    def _spoken_tokens(self, raw: list[int], frames: int) -> list[int]:
        """The text tokens of a (timestamped) transcript, without the segments Whisper placed after
        the end of the audio (the padding of the window is silence: what it writes there is invented)."""
        begin = self.tokenizer.timestamp_begin
        clip_end = frames * HOP / SAMPLE_RATE
        tokens, opening = [], True
        for token in raw:
            if token >= begin:
                if opening and (token - begin) * 0.02 > clip_end + LATE_SEGMENT_S:
                    break
                opening = not opening
            elif token < self.tokenizer.eot:
                tokens.append(token)
        return tokens

    def _needs_whole_window(self, result, unlikely_counts: bool = True) -> bool:
        """Whether a transcript decoded in a cut window fails Whisper's own checks (cut off without
        its end token, compression ratio over 2.4, or mean log-probability under -1 on what is not
        silence). Below its 30 s window Whisper starts looping ("S-A-F-F-R-O-N-R-O-B-L-E-S-S-R-O-N-
        R-O-B...", "No. No. No. No.") and its temperature fallback samples nonsense ("4 3 4 3 4 2 4"
        for "four"): such a clip is decoded again in the whole window, so the cut window costs speed
        only where it works. A hinted request's n-best is only the phrases' competition: an unlikely
        one (a short answer often is) is no reason to decode again, a looping one is."""
        if not result.sequences_ids or not result.sequences_ids[0]:
            return False
        avg, ratio = self._quality(result)
        if self._silent(result.no_speech_prob, avg):
            return False  # likely silence: dropped as it is
        cut_off = len(result.sequences_ids[0]) >= self._max_length
        unlikely = unlikely_counts and avg < self.logprob_threshold
        return cut_off or ratio > COMPRESSION_RATIO_THRESHOLD or unlikely

    @cached_property
    def _spells_word(self) -> np.ndarray:
        """For each text token (below the end token), whether it spells a word or a digit (not only
        punctuation)."""
        return np.array([bool(canon(self.tokenizer.decode([t]))) for t in range(self.tokenizer.eot)])

    def _words_before_punctuation(
        self, encoded: np.ndarray, result, frames: int, prompt: list[int]
    ) -> _Decoded | None:
        """A timestamped transcript cut off while Whisper wrote punctuation after its words ("What time
        is it?" and then "." until the token budget ran out; a synthetic voice's first request in the
        browser, louder while the page's auto gain settled) whose words are complete: the words, the
        first mark and Whisper's closing timestamp, scored exactly (one decoder call: the kept tokens
        forced, the next step's distribution after them). Complete means Whisper's own timestamp rule
        at that step (a timestamp when the timestamps' total probability beats the likeliest token)
        holds against every token that spells a word; the closing timestamp is the likeliest one
        inside the clip. Else None: the clip is decoded again in the whole window, as any cut-off
        transcript (there this clip cost 350-600 ms more at one stream, 2.5-3.4 s in a batch of three)."""
        raw = list(result.sequences_ids[0]) if result.sequences_ids else []
        begin, eot = self.tokenizer.timestamp_begin, self.tokenizer.eot
        if prompt[-1] == self.tokenizer.no_timestamps or not raw or len(raw) < self._max_length:
            return None  # untimed (no closing timestamp to ask for), or not cut off
        tail = 0
        while tail < len(raw) and raw[-1 - tail] < eot and not self._spells_word[raw[-1 - tail]]:
            tail += 1
        kept = raw[: len(raw) - tail + 1]
        opened = [t for t in kept if t >= begin]
        if tail < LOOP_REPEATS or tail == len(raw) or raw[-1 - tail] >= eot or len(opened) % 2 != 1:
            return None  # not a punctuation loop after a word inside an open segment
        view = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded))
        [forced] = self.model.generate(
            view, [[*prompt, *kept]], beam_size=1, max_length=generate_max_length(len(kept) + 1),
            return_logits_vocab=True, suppress_blank=False, suppress_tokens=[],
        )  # fmt: skip
        steps = [log_softmax(np.asarray(step)) for step in forced.logits[0]]
        if len(steps) <= len(kept):
            return None
        after = steps[len(kept)]
        if np.logaddexp.reduce(after[opened[-1] :]) <= after[:eot][self._spells_word].max():
            return None  # Whisper would rather go on with words: some are missing
        # the closing timestamp: not before the segment's opening one (Whisper's rule), nor after the
        # clip's end
        last = min(begin + round(frames * HOP / SAMPLE_RATE / 0.02), len(after) - 1)
        end = opened[-1] + int(np.argmax(after[opened[-1] : max(last, opened[-1]) + 1]))
        tokens = [*kept, end]
        logprob = sum(float(step[t]) for step, t in zip(steps, tokens, strict=False))
        return _Decoded([tokens], [logprob / (len(tokens) + 1)], result.no_speech_prob)

    def _silent(self, no_speech_prob: float, avg_logprob: float) -> bool:
        """Whisper's own no-speech rule: likely silence when the no-speech probability is over its
        threshold while the transcript is unlikely (mean log-probability under the threshold)."""
        return no_speech_prob > self.no_speech_threshold and avg_logprob < self.logprob_threshold

    def _quality(self, result) -> tuple[float, float]:
        """Mean log-probability (per token, the end included) and compression ratio of a result's
        first hypothesis, as faster-whisper's transcribe() measures them."""
        tokens = result.sequences_ids[0]
        avg = float(result.scores[0]) * len(tokens) / (len(tokens) + 1) if tokens else -math.inf
        return avg, get_compression_ratio(self.tokenizer.decode(tokens).strip())

    def _with_fallback(self, encoded: np.ndarray, result, prompt: list[int]):
        """Whisper's temperature fallback (transcribe()'s rule): a transcript too unlikely (mean
        log-probability under -1) or too repetitive (compression ratio over 2.4) is decoded again by
        sampling at rising temperatures, best of 5, until one passes; else the likeliest of them all.
        Likely silence (no-speech probability over the threshold) is left for `_finish` to drop."""
        avg, ratio = self._quality(result)
        silence = self._silent(result.no_speech_prob, avg)
        if silence or (avg >= self.logprob_threshold and ratio <= COMPRESSION_RATIO_THRESHOLD):
            return result
        tried = [(avg, ratio, result)]
        view = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded))
        for temperature in FALLBACK_TEMPERATURES:
            [sampled] = self.model.generate(
                view, [prompt], beam_size=1, num_hypotheses=FALLBACK_BEST_OF, sampling_topk=0,
                sampling_temperature=temperature, return_scores=True,
                max_length=generate_max_length(self._max_length),
            )  # fmt: skip
            avg, ratio = self._quality(sampled)
            tried.append((avg, ratio, sampled))
            if avg >= self.logprob_threshold and ratio <= COMPRESSION_RATIO_THRESHOLD:
                break
        else:
            pool = [t for t in tried if t[1] <= COMPRESSION_RATIO_THRESHOLD] or tried
            avg, ratio, sampled = max(pool, key=lambda t: t[0])
        return _Decoded(sampled.sequences_ids[:1], sampled.scores[:1], result.no_speech_prob)
