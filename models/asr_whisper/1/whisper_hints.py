"""Hints for the Whisper pass (Riva speech_contexts): each phrase's written forms ranked by the first
decoding step and kept while their opening can still win (`Opening`), the likeliest scored exactly by
forced decoding beside the beam's n-best (alone first, then with Whisper's continuation only while its
own tokens can still win), and every candidate's
bonus for the boosted phrases it holds. A mixin of `whisper_engine.WhisperEngine`, whose
model, tokenizer, prompt, `boost_scale`, `max_phrase_candidates` and token budget it uses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from difflib import SequenceMatcher

import ctranslate2
import numpy as np
from whisper_text import canon, generate_max_length, lead_in_forms, log_softmax, phrase_forms, spoken_canon


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
    """A token list forced as the transcript's start: its own tokens' score (`prefix`, which any
    continuation only lowers), its score as the whole transcript, and as the start of Whisper's own
    continuation (`continued`, empty when it ends there)."""

    whole: float
    prefix: float = -math.inf
    continued: list[int] = field(default_factory=list)
    continued_logprob: float = -math.inf


@dataclass
class Opening:
    """The decoder's first two steps on a clip: log P(first token), and log P(second token) after
    Whisper's likeliest first token (`token`; -1 when there is no second step)."""

    first: np.ndarray
    token: int = -1
    second: np.ndarray | None = None

    @classmethod
    def from_greedy(cls, result) -> Opening:
        """From a greedy `generate` result with `return_logits_vocab` (its first two steps)."""
        steps = [log_softmax(np.asarray(step)) for step in result.logits[0][:2]]
        said = list(result.sequences_ids[0])
        if len(steps) < 2 or not said:
            return cls(steps[0])
        return cls(steps[0], said[0], steps[1])

    def bound(self, tokens: list[int]) -> float:
        """An upper bound on the log-probability of any transcript that starts with `tokens`: their
        first token's, plus the second's where the first is Whisper's likeliest."""
        upper = float(self.first[tokens[0]])
        if len(tokens) > 1 and tokens[0] == self.token and self.second is not None:
            upper += float(self.second[tokens[1]])
        return upper


FORMS_AT_ONCE = 4  # phrase forms forced in one round (each a few decoder steps)


class PhraseScoring:
    """The hinted part of the engine's decoding (see the module)."""

    def _forced(self, encoded: np.ndarray, forms: list[list[int]], budget: int = 0) -> list[Forced]:
        """Each token list forced as the transcript's start, given one clip's encoding (CTranslate2
        returns the distribution at every forced position): the sum of log P(token | what precedes)
        over the list and the end token; with a `budget` of tokens, also Whisper's greedy
        continuation after the list and the sum over the list, the continuation and its end.
        One batched call per list length, the lengths' calls side by side."""
        out = [Forced(-math.inf)] * len(forms)
        by_length: dict[int, list[int]] = {}
        for i, tokens in enumerate(forms):
            by_length.setdefault(len(tokens), []).append(i)
        eot = self.tokenizer.eot

        def scored(length: int, members: list[int]) -> list:
            batch = np.ascontiguousarray(np.repeat(encoded, len(members), 0))
            return self.model.generate(
                ctranslate2.StorageView.from_array(batch), [[*self.prompt, *forms[i]] for i in members],
                beam_size=1, max_length=generate_max_length(max(length + 2, budget)),
                return_logits_vocab=True, suppress_blank=False, suppress_tokens=[],
            )  # fmt: skip

        calls = [(n, members, self._submit(scored, n, members)) for n, members in by_length.items()]
        for length, members, call in calls:
            for i, result in zip(members, call.result(), strict=True):
                steps = [log_softmax(np.asarray(st)) for st in result.logits[0]]
                if len(steps) <= length:
                    continue
                forced = sum(float(st[t]) for st, t in zip(steps, forms[i], strict=False))
                said = list(result.sequences_ids[0])
                ended = len(steps) > len(said)  # the end token's step came back: not cut off
                continued = said[length:] if budget and ended and len(said) > length else []
                rest = sum(float(st[t]) for st, t in zip(steps[length:], continued, strict=False))
                out[i] = Forced(
                    forced + float(steps[length][eot]), forced, continued,
                    forced + rest + float(steps[len(said)][eot]) if continued else -math.inf,
                )  # fmt: skip
        return out

    def _first_step(self, encoded: np.ndarray) -> Opening:
        """The first two decoder steps' distributions (beam search returns no logits): one call, the
        second step costs little beside the first (the cross-attention over the window is computed
        once per call). Nothing suppressed, as in the forced scoring the bound is for."""
        [result] = self.model.generate(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded)), [self.prompt], beam_size=1,
            max_length=generate_max_length(2), return_logits_vocab=True, suppress_blank=False,
            suppress_tokens=[],
        )  # fmt: skip
        return Opening.from_greedy(result)

    def _bonus(self, text: str, boosts: dict[str, float]) -> float:
        """The boosts of the phrases a transcript holds: every expected word heard earns its boost."""
        spoken = f" {spoken_canon(text)} "
        return sum(b * self.boost_scale for p, b in boosts.items() if f" {p} " in spoken)

    @staticmethod
    def _heard_starts(result) -> set[int]:
        """The first tokens of the beam's hypotheses: how Whisper itself starts the transcript."""
        return {seq[0] for seq in result.sequences_ids if seq}

    def _ranked_forms(
        self,
        make_forms,
        boosts,
        opening: Opening,
        bound: float,
        seen: set,
        heard: str,
        starts: set[int] | None = None,
    ) -> list:
        """(upper bound, form, tokens) of every phrase's forms that could beat `bound` (the opening's
        bound on their first tokens plus the bonus), likeliest first (by the first token's
        log-probability plus the bonus; forms whose first token is the same are ranked by how near
        they are to what Whisper heard on its own); with `starts`, only the forms that begin with one
        of those tokens."""
        ranked = []
        for phrase, boost in boosts.items():
            bonus = boost * self.boost_scale
            for form in make_forms(phrase):
                tokens = list(self._form_tokens(form))
                if not tokens or (starts is not None and tokens[0] not in starts):
                    continue
                if opening.bound(tokens) + bonus <= bound:
                    continue
                upper = float(opening.first[tokens[0]]) + bonus
                if tuple(tokens) not in seen:
                    seen.add(tuple(tokens))
                    near = SequenceMatcher(None, canon(form), canon(heard)).ratio()
                    ranked.append((upper, near, form, tokens))
        return [(upper, form, tokens) for upper, _, form, tokens in sorted(ranked, reverse=True)]

    def _phrase_candidates(
        self, encoded, result, boosts, opts, seen, bound: float, heard: str, opening: Opening | None = None
    ) -> list[Candidate]:
        """The phrases' written forms most likely to start the transcript (by the decoder's first steps,
        `opening`, bonus included), scored exactly: every token's log-probability and the end's."""
        if opts.beam_size == 1:
            opening = Opening.from_greedy(result)
        elif opening is None:  # beam search returns no logits: two decoder steps for the opening
            opening = self._first_step(encoded)
        first = opening.first
        limit = self.max_phrase_candidates * (2 if opts.closed else 1)
        plain = self._ranked_forms(phrase_forms, boosts, opening, bound, seen, heard)[:limit]
        # unless the set is closed, the answer may also begin with a lead-in ("the bedroom"): those
        # forms compete among themselves for as many places as the phrases alone, and only after a
        # lead-in that one of the beam's transcripts starts with (" The bad room" for "the bedroom";
        # " At nine" on "enter seven thirty eight" only cost a decoder call each: held-out AN4, the
        # dialog's requests, follow-ups and answers, real commands with hints, 324 passes: the same
        # transcripts, follow-up-hinted passes p95 163 -> 154 ms, answers' p95 215 -> 191 ms)
        led = (
            []
            if opts.closed
            else self._ranked_forms(
                lead_in_forms, boosts, opening, bound, seen, heard, self._heard_starts(result)
            )[:limit]
        )
        forms = sorted(plain + led, key=lambda f: f[0], reverse=True)
        cands: list[Candidate] = []
        best = bound
        # First each form alone (its tokens and the end: a few decoder steps), a few at a time until
        # none left can beat the best; its own tokens' score bounds every continuation of it
        pending: list[tuple[float, list[int], float]] = []
        while forms and forms[0][0] > best:
            batch, forms = forms[:FORMS_AT_ONCE], forms[FORMS_AT_ONCE:]
            scored = self._forced(encoded, [tokens for _, _, tokens in batch])
            for (upper, form, tokens), forced in zip(batch, scored, strict=True):
                bonus = upper - float(first[tokens[0]])
                cands.append(Candidate(tokens, form, forced.whole, source="phrase"))
                best = max(best, forced.whole + bonus)
                pending.append((forced.prefix + bonus, tokens, bonus))
        if opts.closed:
            return cands
        # An answer may go on after the phrase ("four people"): unless the set is closed, the forms
        # whose own tokens can still beat the best are scored as the start of Whisper's own
        # continuation (tens of greedy steps: most forms are cut here, "What about" on "what is on
        # my shopping list" at -17), two at a time
        pending.sort(key=lambda p: p[0], reverse=True)
        while pending and pending[0][0] > best:
            batch, pending = pending[:2], pending[2:]
            scored = self._forced(encoded, [tokens for _, tokens, _ in batch], self._max_length)
            for (_, tokens, bonus), forced in zip(batch, scored, strict=True):
                longer = [*tokens, *forced.continued]
                if forced.continued and tuple(longer) not in seen:
                    seen.add(tuple(longer))
                    text = self.tokenizer.decode(longer)
                    cands.append(Candidate(longer, text, forced.continued_logprob, source="phrase"))
                    best = max(best, forced.continued_logprob + bonus)
        return cands
