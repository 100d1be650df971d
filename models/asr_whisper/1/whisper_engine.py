"""Whisper decoding for Rivulet's second ASR pass (CTranslate2 through faster-whisper's helpers).

Used by the Triton python model next to it (`model.py`) and, in-process, by `bench/` to measure the
bare model on the same audio. No I/O, no Triton: a batch of (audio, options) in, one dict per item out.

- The encoder window is max(clip + `tail_pad_s`, `min_window_s`) seconds, capped at 30 s (Whisper's
  window). Whisper was trained on 30 s windows: cut shorter it is faster (the encoder's cost grows
  with the window) but may write worse transcripts, and below about 10 s it loops. A transcript
  decoded in a cut window that fails Whisper's own checks (cut off without its end token, compression
  ratio over 2.4, mean log-probability under -1 on what is not silence) is decoded again in the
  whole 30 s window, and a clip under 2 s (a lone word, where the cut window mishears) gets the whole
  window unless its request asks otherwise: the served model's 10 s floor costs speed only where
  the cut window works (the measured trade-off is in the ASR README). A request may ask for
  another least window (`window_s`, Riva custom_configuration `second_pass_window_s`): a batch is
  encoded with the largest window any of its clips needs. The window after the clip is padded in
  the normalised log-mel domain with 0.0, as faster-whisper's `transcribe()` pads it (padding with
  the log-mel of silence instead made Whisper write "Thank you for watching." on isolated digits).
- Free transcripts are decoded in Whisper's timestamped mode (`timestamps=True`), as its own
  `transcribe()` does: with a beam it is far more accurate on spelled letters and digit strings
  than the untimed mode. Segments that start after the end of the audio (written over the silent
  padding) are dropped. Hinted decoding (below) stays untimed, so that the free n-best and the
  phrases' forced scores are one measure.
- A batch is encoded once; every item is padded to the longest window in the batch.
- `phrases` (Riva speech_contexts: text + boost) bias the choice. Each phrase's written forms
  ("five", "Five", "Five.", "5") are ranked by the first decoding step's distribution (plus their
  bonus); the best `max_phrase_candidates` are scored exactly by forced decoding (one batched
  decoder call per form length gives every forced token's log-probability and the end token's),
  beside the beam's n-best. Unless the set is closed, each forced form is also continued by
  Whisper's greedy decoding, so that an answer that goes on after the phrase ("four people") can be
  heard whole. A candidate gains `boost * boost_scale` nats for each boosted phrase it holds.
  `closed=True` allows only the phrases (the answer is one of them). All candidates are compared by
  one measure: the sum of token log-probabilities, the end token included.
- CTranslate2's `generate` returns at most `max_length // 2` tokens: every budget here is counted in
  tokens and doubled for it (`_max_length`).
- A transcript whose end repeats a unit of 1-12 tokens 4 times or more (twice when cut off by
  `max_length` or when it has more tokens than the audio could hold) is Whisper looping ("five six
  five six five six five six"): one copy is kept.
- A free transcript that is too unlikely or too repetitive is decoded again with Whisper's
  temperature fallback (as `transcribe()` does), except on a clip under `SHORT_CLIP_S`: a lone
  word's fallback samples other words ("All right." for "on") and cost up to 1.4 s, five decodes of
  five samples each in the whole window (dev speakers, 200 one-word commands, beam 5: 85.0 % right
  with it, 85.5 % without, p95 676 vs 350 ms a clip; 266 AN4 utterances: unchanged, 83.8 %).
- Non-speech gives no text: the Silero VAD (shipped in faster-whisper) finds no speech, or Whisper's
  own no-speech probability is high while its transcript is unlikely.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_compression_ratio
from faster_whisper.vad import VadOptions, get_speech_timestamps
from threadpoolctl import ThreadpoolController

SAMPLE_RATE = 16_000
PAD_VALUE = 0.0  # normalised log-mel after the clip, as transcribe() pads
HOP = 160  # samples per feature frame (10 ms)
VAD_EDGE_S = 0.3  # silence the VAD hears around a clip, so a word at its very edge is found
MAX_WINDOW_S = 30.0
# a clip shorter than this is encoded in the whole window unless its request asks otherwise: in a cut
# window Whisper misplaces a lone word's timestamps, raises its no-speech probability and mishears it
# ("Last." for "left", "Top" for "stop"; dev one-word commands, beam 5: 75 % right in 10 s, 85 % in 30 s)
SHORT_CLIP_S = 2.0
HINTED_NBEST = 5  # free hypotheses the hints choose among
LATE_SEGMENT_S = 0.5  # a timestamped segment starting this long after the audio's end is invented
FALLBACK_TEMPERATURES = (0.2, 0.4, 0.6, 0.8, 1.0)  # Whisper's own fallback, as transcribe() runs it
FALLBACK_BEST_OF = 5
COMPRESSION_RATIO_THRESHOLD = 2.4
LOOP_UNIT_MAX = 12  # tokens: "see you in the next video," is 7
LOOP_REPEATS = 4  # a unit of 1-12 tokens said this many times in a row is Whisper looping, not speech
TOKENS_A_SECOND_AT_MOST = 8  # fast spelling: 4 letters a second, 2 tokens each ("S-A")
# CTranslate2's Whisper.generate returns at most max_length // 2 tokens (measured with 4.8.5: 4 → 2,
# 16 → 8, 30 → 15, with or without a forced prefix; Whisper's own sample_len is n_text_ctx // 2)
TOKENS_PER_MAX_LENGTH = 2
# ...except below 6 with a multilingual model's longer prompt (base: 3 → an error, 2 → no token at
# all, 4 → 1): a one-token step asks for 4
LEAST_MAX_LENGTH = 4
_ONES = "zero one two three four five six seven eight nine".split()


@dataclass
class DecodeOptions:
    beam_size: int = 1
    num_hypotheses: int = 1
    word_timestamps: bool = False
    phrases: list[tuple[str, float]] = field(default_factory=list)
    closed: bool = False
    window_s: float = 0.0  # the least encoder window for this clip (s); 0: the engine's min_window_s

    @classmethod
    def from_dict(cls, raw: dict) -> DecodeOptions:
        phrases = [(str(p), float(b)) for p, b in raw.get("phrases", [])]
        beam = max(1, min(int(raw.get("beam_size", 1)), 10))
        hyps = max(1, min(int(raw.get("num_hypotheses", 1)), beam))
        window = max(0.0, min(float(raw.get("window_s", 0.0)), MAX_WINDOW_S))
        return cls(
            beam,
            hyps,
            bool(raw.get("word_timestamps", False)),
            phrases,
            bool(raw.get("closed", False)),
            window,
        )


@dataclass
class Candidate:
    tokens: list[int]
    text: str
    logprob: float  # sum over the tokens and the end token
    bonus: float = 0.0
    source: str = "beam"  # beam | phrase
    scored: int = 0  # tokens the log-probability sums over (timestamps and the end token included)

    def __post_init__(self) -> None:
        self.scored = self.scored or len(self.tokens) + 1

    @property
    def score(self) -> float:
        return self.logprob + self.bonus


@dataclass
class Forced:
    """A token list forced as the transcript's start: its score as the whole transcript, and as
    the start of Whisper's own continuation (`continued`, empty when it ends there)."""

    whole: float
    continued: list[int] = field(default_factory=list)
    continued_logprob: float = -math.inf


@dataclass
class _Decoded:
    """A decoding result in CTranslate2's shape (sequences, scores; no logits) with the no-speech
    probability of the first decoding."""

    sequences_ids: list[list[int]]
    scores: list[float]
    no_speech_prob: float
    logits: list = field(default_factory=list)


def phrase_forms(phrase: str) -> list[str]:
    """Written forms Whisper may use for a spoken phrase: as given, capitalised (with and without a
    full stop: the answer may go on, "Four people."), and with number words as digits ("5")."""
    words = phrase.strip().split()
    if not words:
        return []
    capitalised = " " + " ".join(words).capitalize()
    forms = {" " + " ".join(words), capitalised, capitalised + "."}
    digits = [str(_ONES.index(w.lower())) if w.lower() in _ONES else w for w in words]
    if digits != words:
        forms.add(" " + " ".join(digits))
        forms.add(" " + " ".join(digits) + ".")
    return sorted(forms)


LEAD_INS = tuple(
    line.strip()
    for line in (Path(__file__).with_name("answer_lead_ins.txt")).read_text().splitlines()
    if line.strip() and not line.startswith("#")
)


def lead_in_forms(phrase: str) -> list[str]:
    """The phrase after each lead-in people say before an answer ("the", "in the": "The bedroom"),
    capitalised as Whisper starts a sentence and not; Whisper's continuation adds the full stop."""
    words = " ".join(phrase.strip().split())
    if not words:
        return []
    return [f" {lead.capitalize()} {words}" for lead in LEAD_INS] + [f" {lead} {words}" for lead in LEAD_INS]


def _trim_loop(tokens: list[int], min_repeats: int) -> list[int]:
    """A transcript whose tail is a unit of 1-12 tokens said `min_repeats` times or more (possibly
    cut inside the last one): Whisper looping, "five six five six five six five". One copy stays."""
    n = len(tokens)
    for start in range(n):
        for size in range(1, LOOP_UNIT_MAX + 1):
            rest = n - start
            if rest < size * min_repeats:
                break
            unit = tokens[start : start + size]
            if all(tokens[start + i] == unit[i % size] for i in range(rest)):
                return tokens[: start + size]
    return tokens


def _max_length(tokens: int) -> int:
    """CTranslate2's `max_length` that lets `generate` return up to `tokens` tokens."""
    return max(tokens * TOKENS_PER_MAX_LENGTH, LEAST_MAX_LENGTH)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    top = logits.max()
    return logits - top - np.log(np.exp(logits - top).sum())


def _canon(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def _spoken_canon(text: str) -> str:
    return " ".join(_ONES[int(w)] if w.isdigit() and len(w) == 1 else w for w in _canon(text).split())


class WhisperEngine:
    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "cpu",
        device_index: int = 0,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        min_window_s: float = 30.0,
        tail_pad_s: float = 1.0,
        boost_scale: float = 0.2,
        no_speech_threshold: float = 0.6,
        logprob_threshold: float = -1.0,
        vad_filter: bool = True,
        vad_threshold: float = 0.35,
        max_phrase_candidates: int = 4,
        timestamps: bool = True,
    ) -> None:
        self.max_phrase_candidates = max_phrase_candidates
        self._max_length = 448
        self.whisper = WhisperModel(
            str(model_dir),
            device=device,
            device_index=device_index,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            local_files_only=True,
        )
        self.model = self.whisper.model
        ctranslate2.set_random_seed(0)  # the fallback's sampling repeats itself
        self.tokenizer = Tokenizer(
            self.whisper.hf_tokenizer, self.model.is_multilingual, task="transcribe", language="en"
        )
        self.prompt = [*self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]
        # the hints' written forms (a few hundred with the lead-ins) recur request after request
        self._form_tokens = lru_cache(maxsize=8192)(lambda form: tuple(self.tokenizer.encode(form)))
        # free transcription in Whisper's timestamped mode (how it was mostly trained): far more
        # accurate on spelled letters and digits with a beam; phrase scoring stays untimed
        self.free_prompt = list(self.tokenizer.sot_sequence) if timestamps else self.prompt
        self.min_window_s, self.tail_pad_s = min_window_s, tail_pad_s
        self._blas = ThreadpoolController()  # numpy's BLAS, for the features
        self.boost_scale = boost_scale
        self.no_speech_threshold, self.logprob_threshold = no_speech_threshold, logprob_threshold
        self.vad_options = (
            VadOptions(threshold=vad_threshold, min_speech_duration_ms=90) if vad_filter else None
        )

    def warm_up(self) -> None:
        """Load the VAD and run the model once, so the first user does not pay for it."""
        self.has_speech(np.zeros(SAMPLE_RATE, dtype=np.float32))
        noise = np.random.default_rng(0).normal(0, 0.1, SAMPLE_RATE).astype(np.float32)
        feats, _ = self.features([noise])
        self.model.generate(ctranslate2.StorageView.from_array(feats), [self.prompt], max_length=8)

    # -- features --------------------------------------------------------------------------------
    def window_samples(self, n_samples: int, min_window_s: float = 0.0) -> int:
        """The encoder window for a clip: max(clip + tail, least), capped at 30 s. The least is the
        request's `min_window_s`, else the engine's, which clips under `SHORT_CLIP_S` do not get."""
        short = n_samples < SHORT_CLIP_S * SAMPLE_RATE
        least = min_window_s or (MAX_WINDOW_S if short else self.min_window_s)
        seconds = min(max(n_samples / SAMPLE_RATE + self.tail_pad_s, least), MAX_WINDOW_S)
        return int(seconds * SAMPLE_RATE) // HOP * HOP

    def features(
        self, clips: list[np.ndarray], windows: list[float] | None = None
    ) -> tuple[np.ndarray, list[int]]:
        """[B, n_mels, frames] for clips padded to one window (the largest any of them needs, each with
        its least window from `windows`, 0 for the engine's); the frames each clip really has."""
        window = max(
            self.window_samples(len(c), w) for c, w in zip(clips, windows or [0.0] * len(clips), strict=True)
        )
        batch, frames = [], []
        # on one BLAS thread wherever the engine runs, as in tritonserver's stubs (OMP_NUM_THREADS=1):
        # the features' last bits (1e-7, numpy's mel projection) depend on the BLAS threads and decide
        # some borderline beams (4 of 80 held-out AN4 clips), so served and in-process transcripts
        # are the same words only this way
        with self._blas.limit(limits=1, user_api="blas"):
            for clip in clips:
                clip = clip[:window]
                feats = self.whisper.feature_extractor(clip)[:, : window // HOP]
                # the rest of the window padded as transcribe() pads it
                padded = np.full((feats.shape[0], window // HOP), PAD_VALUE, dtype=np.float32)
                padded[:, : feats.shape[1]] = feats
                batch.append(padded)
                frames.append(min(len(clip) // HOP + 1, window // HOP))
        return np.ascontiguousarray(np.stack(batch).astype(np.float32)), frames

    def has_speech(self, clip: np.ndarray) -> bool:
        """Whether the VAD hears speech anywhere in the clip. The clip is heard between stretches of
        silence: Silero misses a word cut off by the clip's edge (a one-second command clip whose
        "right" runs to its last sample), which it finds once the word has silence around it."""
        if self.vad_options is None or len(clip) == 0:
            return len(clip) > 0
        edge = int(VAD_EDGE_S * SAMPLE_RATE)
        return bool(get_speech_timestamps(np.pad(clip, (edge, edge)), self.vad_options))

    # -- decoding --------------------------------------------------------------------------------
    def _forced(self, encoded: np.ndarray, forms: list[list[int]], budget: int = 0) -> list[Forced]:
        """Each token list forced as the transcript's start, given one clip's encoding (CTranslate2
        returns the distribution at every forced position): the sum of log P(token | what precedes)
        over the list and the end token; with a `budget` of tokens, also Whisper's greedy
        continuation after the list and the sum over the list, the continuation and its end.
        One batched call per list length."""
        out = [Forced(-math.inf)] * len(forms)
        by_length: dict[int, list[int]] = {}
        for i, tokens in enumerate(forms):
            by_length.setdefault(len(tokens), []).append(i)
        eot = self.tokenizer.eot
        for length, members in by_length.items():
            batch = np.ascontiguousarray(np.repeat(encoded, len(members), 0))
            results = self.model.generate(
                ctranslate2.StorageView.from_array(batch), [[*self.prompt, *forms[i]] for i in members],
                beam_size=1, max_length=_max_length(max(length + 2, budget)), return_logits_vocab=True,
                suppress_blank=False, suppress_tokens=[],
            )  # fmt: skip
            for i, result in zip(members, results, strict=True):
                steps = [_log_softmax(np.asarray(st)) for st in result.logits[0]]
                if len(steps) <= length:
                    continue
                forced = sum(float(st[t]) for st, t in zip(steps, forms[i], strict=False))
                said = list(result.sequences_ids[0])
                ended = len(steps) > len(said)  # the end token's step came back: not cut off
                continued = said[length:] if budget and ended and len(said) > length else []
                rest = sum(float(st[t]) for st, t in zip(steps[length:], continued, strict=False))
                out[i] = Forced(
                    forced + float(steps[length][eot]), continued,
                    forced + rest + float(steps[len(said)][eot]) if continued else -math.inf,
                )  # fmt: skip
        return out

    def _first_step(self, encoded: np.ndarray) -> np.ndarray:
        """log P(first token | prompt) (beam search returns no logits)."""
        [result] = self.model.generate(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded)), [self.prompt], beam_size=1,
            max_length=_max_length(1), return_logits_vocab=True,
        )  # fmt: skip
        return _log_softmax(np.asarray(result.logits[0][0]))

    def _candidates(self, encoded: np.ndarray, frames: int, result, opts: DecodeOptions) -> list[Candidate]:
        eot = self.tokenizer.eot
        cands = []
        if not opts.closed:
            for k, raw in enumerate(result.sequences_ids):
                greedy = opts.beam_size == 1 and len(result.logits)
                steps = [np.asarray(x) for x in result.logits[k]] if greedy else []
                looped = len(raw) >= self._max_length  # no end token: cut off (Whisper looping)
                if steps:  # greedy: the exact sum, the end token included
                    pairs = zip(steps, [*raw, eot], strict=False)
                    logprob = sum(float(_log_softmax(step)[t]) for step, t in pairs)
                else:  # beam search returns no logits: its score is the mean log-probability
                    logprob = float(result.scores[k]) * (len(raw) + 1)
                tokens = self._spoken_tokens(list(raw), frames)
                # more tokens than the audio could hold ("see you next time" three times over a
                # 0.2 s "two") is Whisper looping too, though it ended
                crowded = len(tokens) > TOKENS_A_SECOND_AT_MOST * frames * HOP / SAMPLE_RATE + 3
                tokens = self._trim_spoken_loop(tokens, 2 if looped or crowded else LOOP_REPEATS)
                cands.append(Candidate(tokens, self.tokenizer.decode(tokens), logprob, scored=len(raw) + 1))
        boosts: dict[str, float] = {}
        for phrase, boost in opts.phrases:
            key = _spoken_canon(phrase)
            if key:
                boosts[key] = max(boosts.get(key, -math.inf), boost)
        for cand in cands:
            cand.bonus = self._bonus(cand.text, boosts)
        if boosts:
            # a phrase can win only if its first token's log-probability plus its bonus beats the
            # best free transcript's whole score: the others are not worth scoring
            bound = max((c.score for c in cands), default=-math.inf)
            seen = {tuple(c.tokens) for c in cands}
            heard = max(cands, key=lambda c: c.logprob).text if cands else ""
            for cand in self._phrase_candidates(encoded, result, boosts, opts, seen, bound, heard):
                cand.bonus = self._bonus(cand.text, boosts)
                cands.append(cand)
        return sorted(cands, key=lambda c: c.score, reverse=True)

    def _trim_spoken_loop(self, tokens: list[int], min_repeats: int) -> list[int]:
        """`_trim_loop` over the words the tokens spell, whatever their case and punctuation ("See
        you next time, see you next time, see you next time."): the tokens up to the second copy."""
        words = [(i, w) for i, t in enumerate(tokens) if (w := _canon(self.tokenizer.decode([t])))]
        kept = _trim_loop([w for _, w in words], min_repeats)
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

    def _bonus(self, text: str, boosts: dict[str, float]) -> float:
        """The boosts of the phrases a transcript holds: every expected word heard earns its boost."""
        spoken = f" {_spoken_canon(text)} "
        return sum(b * self.boost_scale for p, b in boosts.items() if f" {p} " in spoken)

    def _ranked_forms(self, make_forms, boosts, first, bound: float, seen: set, heard: str) -> list:
        """(upper bound, form, tokens) of every phrase's forms that could beat `bound`, likeliest first
        (the first token's log-probability plus the bonus; forms whose first token is the same are
        ranked by how near they are to what Whisper heard on its own)."""
        ranked = []
        for phrase, boost in boosts.items():
            for form in make_forms(phrase):
                tokens = list(self._form_tokens(form))
                upper = float(first[tokens[0]]) + boost * self.boost_scale if tokens else -math.inf
                if upper > bound and tuple(tokens) not in seen:
                    seen.add(tuple(tokens))
                    near = SequenceMatcher(None, _canon(form), _canon(heard)).ratio()
                    ranked.append((upper, near, form, tokens))
        return [(upper, form, tokens) for upper, _, form, tokens in sorted(ranked, reverse=True)]

    def _phrase_candidates(
        self, encoded, result, boosts, opts, seen, bound: float, heard: str
    ) -> list[Candidate]:
        """The phrases' written forms most likely to start the transcript (by the first step's
        distribution, bonus included), scored exactly: every token's log-probability and the end's."""
        if opts.beam_size == 1:
            first = _log_softmax(np.asarray(result.logits[0][0]))
        else:  # beam search returns no logits: one decoder step for the first token's distribution
            first = self._first_step(encoded)
        limit = self.max_phrase_candidates * (2 if opts.closed else 1)
        plain = self._ranked_forms(phrase_forms, boosts, first, bound, seen, heard)[:limit]
        # unless the set is closed, the answer may also begin with a lead-in ("the bedroom"): those
        # forms compete among themselves for as many places as the phrases alone
        led = (
            []
            if opts.closed
            else self._ranked_forms(lead_in_forms, boosts, first, bound, seen, heard)[:limit]
        )
        forms = sorted(plain + led, key=lambda f: f[0], reverse=True)
        cands: list[Candidate] = []
        best = bound
        # an answer may go on after the phrase ("four people"): unless the set is closed, each form
        # is also scored as the start of Whisper's own continuation
        budget = 0 if opts.closed else self._max_length
        while forms and forms[0][0] > best:  # two at a time, until none left can beat the best
            batch, forms = forms[:2], forms[2:]
            scored = self._forced(encoded, [tokens for _, _, tokens in batch], budget)
            for (upper, form, tokens), forced in zip(batch, scored, strict=True):
                bonus = upper - float(first[tokens[0]])
                cands.append(Candidate(tokens, form, forced.whole, source="phrase"))
                best = max(best, forced.whole + bonus)
                longer = [*tokens, *forced.continued]
                if forced.continued and tuple(longer) not in seen:
                    seen.add(tuple(longer))
                    text = self.tokenizer.decode(longer)
                    cands.append(Candidate(longer, text, forced.continued_logprob, source="phrase"))
                    best = max(best, forced.continued_logprob + bonus)
        return cands

    def decode(self, requests: list[tuple[np.ndarray, DecodeOptions]]) -> list[dict]:
        out: list[dict | None] = [None] * len(requests)
        live = []
        for i, (clip, _) in enumerate(requests):
            if self.has_speech(clip):
                live.append(i)
            else:
                out[i] = {"hypotheses": [], "no_speech_prob": 1.0, "words": [], "reason": "vad"}
        if live:
            feats, frames = self.features(
                [requests[i][0] for i in live], [requests[i][1].window_s for i in live]
            )
            encoded = np.array(self.model.encode(ctranslate2.StorageView.from_array(feats), to_cpu=True))
            groups: dict[tuple[int, int, bool], list[int]] = {}
            redo: list[int] = []  # decoded in a cut window that failed: decoded again in the whole one
            cut = feats.shape[-1] * HOP < MAX_WINDOW_S * SAMPLE_RATE
            for j, i in enumerate(live):
                o = requests[i][1]
                if o.phrases and not o.closed and o.num_hypotheses < HINTED_NBEST:
                    # an n-best for the hints to choose in ("Four people." below "For people.")
                    o = replace(o, beam_size=HINTED_NBEST, num_hypotheses=HINTED_NBEST)
                    requests[i] = (requests[i][0], o)
                # hinted decoding is untimed: its free candidates and the phrases' forced scores
                # must be one measure
                key = (max(o.beam_size, o.num_hypotheses), o.num_hypotheses, not o.phrases)
                groups.setdefault(key, []).append(j)
            for (beam, n, free), members in groups.items():
                view = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded[members]))
                longest = max(len(requests[live[j]][0]) for j in members) / SAMPLE_RATE
                # tokens: about 4 a second of speech (spelled letters are 2 each: "U-M"), and room
                # for the timestamps; more only lets Whisper loop or invent on short clips
                self._max_length = int(12 + 4 * longest) + (4 if free else 0)
                prompt = self.free_prompt if free else self.prompt
                results = self.model.generate(
                    view, [prompt] * len(members), beam_size=max(beam, n), num_hypotheses=n,
                    return_scores=True, return_no_speech_prob=True, return_logits_vocab=beam == 1,
                    max_length=_max_length(self._max_length),
                )  # fmt: skip
                for j, result in zip(members, results, strict=True):
                    i = live[j]
                    if cut and self._needs_whole_window(result, unlikely_counts=free):
                        redo.append(i)  # decoded again below, in the whole window
                        continue
                    short = len(requests[i][0]) < SHORT_CLIP_S * SAMPLE_RATE
                    if free and n == 1 and not short:  # a lone word's fallback only guesses
                        result = self._with_fallback(encoded[j : j + 1], result, prompt)
                    out[i] = self._finish(encoded[j : j + 1], frames[j], result, requests[i][1])
            if redo:
                again = [(requests[i][0], replace(requests[i][1], window_s=MAX_WINDOW_S)) for i in redo]
                for i, decoded in zip(redo, self.decode(again), strict=True):
                    out[i] = decoded
        return out  # type: ignore[return-value]

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
                max_length=_max_length(self._max_length),
            )  # fmt: skip
            avg, ratio = self._quality(sampled)
            tried.append((avg, ratio, sampled))
            if avg >= self.logprob_threshold and ratio <= COMPRESSION_RATIO_THRESHOLD:
                break
        else:
            pool = [t for t in tried if t[1] <= COMPRESSION_RATIO_THRESHOLD] or tried
            avg, ratio, sampled = max(pool, key=lambda t: t[0])
        return _Decoded(sampled.sequences_ids[:1], sampled.scores[:1], result.no_speech_prob)

    def _finish(self, encoded: np.ndarray, frames: int, result, opts: DecodeOptions) -> dict:
        cands = self._candidates(encoded, frames, result, opts)
        best = cands[0] if cands else None
        avg = best.logprob / best.scored if best else -math.inf
        nsp = float(result.no_speech_prob)
        # what Whisper wrote freely may be an expected phrase too ("No." for "no"): that it won as
        # the beam's rather than the forced phrase's is a hair's breadth of score, not evidence
        expected = best is not None and _spoken_canon(best.text) in {
            _spoken_canon(p) for p, _ in opts.phrases
        }
        if (
            best is None
            or not best.text.strip()
            # Whisper's own rule, for what it wrote freely; an expected phrase passed the VAD already
            or (best.source == "beam" and not expected and self._silent(nsp, avg))
        ):
            return {"hypotheses": [], "no_speech_prob": nsp, "words": [], "reason": "no_speech"}
        hypotheses = [
            {"text": c.text.strip(), "logprob": c.logprob, "score": c.score, "tokens": c.scored,
             "source": c.source}
            for c in cands[: max(opts.num_hypotheses, 1)]
        ]  # fmt: skip
        words = []
        if opts.word_timestamps:
            view = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded))
            for w in self.whisper.find_alignment(self.tokenizer, [best.tokens], view, frames)[0]:
                words.append([w["word"], float(w["start"]), float(w["end"]), float(w["probability"])])
        return {"hypotheses": hypotheses, "no_speech_prob": nsp, "words": words, "reason": ""}
