"""CTC decoding of the acoustic model's log-probabilities, incrementally as frames arrive.

- `GreedyDecoder`: best token per frame, repeats merged, blanks dropped. Cheap; used for interim
  results (which may change anyway).
- `BeamDecoder`: CTC prefix beam search with contextual biasing (`biasing.ContextGraph`) and
  shallow fusion of a word n-gram LM (`language_model.LanguageModel`). Used for final results
  and alternatives. Both are fed frame blocks as they come back from Triton, so
  at the end of audio only the last block is left to decode (the final is ready within
  milliseconds). Pure numpy + Python on small beams: about 10 µs per frame and beam.

Both track, for each emitted token, the frame where it starts and ends and its posterior, which
become word time offsets and confidences (`words_of`).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from rivulet.asr.biasing import ContextGraph, ContextState
from rivulet.asr.language_model import DEFAULT_WEIGHTS, FusionWeights, LanguageModel
from rivulet.asr.vocabulary import Vocabulary

NEG_INF = float("-inf")


def _lse(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


@dataclass(frozen=True)
class Word:
    word: str
    start_frame: int
    end_frame: int  # exclusive
    confidence: float


@dataclass(frozen=True)
class Hypothesis:
    """One decoded transcript with per-token frames and posteriors."""

    text: str
    tokens: tuple[int, ...] = ()
    starts: tuple[int, ...] = ()
    ends: tuple[int, ...] = ()  # inclusive last frame of each token
    probs: tuple[float, ...] = ()
    score: float = 0.0

    @property
    def confidence(self) -> float:
        return float(np.mean(self.probs)) if self.probs else 0.0


def words_of(hypothesis: Hypothesis, vocabulary: Vocabulary) -> list[Word]:
    """Split a hypothesis into words with frame spans and confidence (mean token posterior)."""
    words: list[Word] = []
    chars: list[str] = []
    span: list[int] = []
    probs: list[float] = []

    def close() -> None:
        if chars:
            words.append(Word("".join(chars), span[0], span[1] + 1, float(np.mean(probs))))
        chars.clear()
        span.clear()
        probs.clear()

    for token, start, end, prob in zip(
        hypothesis.tokens, hypothesis.starts, hypothesis.ends, hypothesis.probs, strict=True
    ):
        for ch in vocabulary.texts[token]:
            if ch == " ":
                close()
                continue
            if not span:
                span[:] = [start, end]
            span[1] = end
            chars.append(ch)
            probs.append(prob)
    close()
    return words


class GreedyDecoder:
    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self.reset()

    def reset(self) -> None:
        self._tokens: list[int] = []
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._probs: list[float] = []
        self._previous = -1

    def advance(self, logprobs: np.ndarray, frame_start: int) -> None:
        if not len(logprobs):
            return
        best = logprobs.argmax(axis=1)
        self.follow(best, logprobs[np.arange(len(best)), best], frame_start)

    def follow(self, path: np.ndarray, path_lp: np.ndarray, frame_start: int) -> None:
        """Extend by a path of one token per frame (with its log-probability): repeats merged,
        blanks dropped, each token's first and last frame and best posterior kept."""
        blank = self.vocabulary.blank
        for i, (token, lp) in enumerate(zip(path.tolist(), path_lp.tolist(), strict=True)):
            if token != blank:
                if token != self._previous:
                    self._tokens.append(token)
                    self._starts.append(frame_start + i)
                    self._ends.append(frame_start + i)
                    self._probs.append(math.exp(lp))
                else:
                    self._ends[-1] = frame_start + i
                    self._probs[-1] = max(self._probs[-1], math.exp(lp))
            self._previous = token

    def hypothesis(self) -> Hypothesis:
        return Hypothesis(
            self.vocabulary.text(self._tokens),
            tuple(self._tokens),
            tuple(self._starts),
            tuple(self._ends),
            tuple(self._probs),
        )


@dataclass(slots=True)
class _Beam:
    """One prefix of the beam: CTC probabilities (ending in blank / non-blank) plus bookkeeping."""

    p_blank: float = NEG_INF
    p_token: float = NEG_INF
    context: ContextState = field(default_factory=ContextState)
    bias: float = 0.0  # contextual-biasing score of this prefix
    starts: tuple[int, ...] = ()
    ends: tuple[int, ...] = ()
    probs: tuple[float, ...] = ()
    lm: _LmState | None = None
    extra: float = 0.0  # score added to the acoustic one: bias + the LM's score (set with them)

    @property
    def total(self) -> float:
        return _lse(self.p_blank, self.p_token)

    def carried(self) -> _Beam:
        return _Beam(
            NEG_INF, NEG_INF, self.context, self.bias, self.starts, self.ends, self.probs, self.lm, self.extra
        )


@dataclass(frozen=True, slots=True)
class _LmState:
    """A prefix's language-model side: KenLM state after its whole words, the word in progress."""

    state: object
    score: float = 0.0  # fused LM score of the whole words (and OOV penalties)
    word: str = ""
    oov: bool = False  # the word in progress has paid the OOV penalty


class BeamDecoder:
    """CTC prefix beam search over frame blocks, with optional word/phrase boosting.

    Per frame only the `beam_size` most likely tokens within `prune` nats of the best are tried,
    and frames where blank has probability ≥ `blank_skip` only extend existing prefixes.
    """

    def __init__(
        self,
        vocabulary: Vocabulary,
        beam_size: int = 8,
        context: ContextGraph | None = None,
        prune: float = 6.0,
        blank_skip: float = 0.99,
        lm: LanguageModel | None = None,
        weights: FusionWeights = DEFAULT_WEIGHTS,
    ) -> None:
        self.vocabulary = vocabulary
        self.beam_size = beam_size
        self.context = context
        self.lm = lm
        self.weights = weights
        self.prune = prune
        self._blank_skip_lp = math.log(blank_skip)
        self.reset()

    def reset(self) -> None:
        lm = _LmState(self.lm.begin()) if self.lm else None
        # Prefixes are nodes of a token trie, named by int (hashing a long token tuple per lookup
        # cost more than the search itself): node 0 is the empty prefix.
        self._parent: list[int] = [-1]
        self._token: list[int] = [-1]
        self._child: dict[int, int] = {}  # node * vocabulary size + token → child node
        self._beams: dict[int, _Beam] = {0: _Beam(p_blank=0.0, lm=lm)}

    def _node(self, key: int, parent: int, token: int) -> int:
        node = self._child.get(key)
        if node is None:
            node = self._child[key] = len(self._parent)
            self._parent.append(parent)
            self._token.append(token)
        return node

    def _tokens(self, node: int) -> tuple[int, ...]:
        out = []
        while node > 0:
            out.append(self._token[node])
            node = self._parent[node]
        return tuple(reversed(out))

    def _lm_step(self, lm: _LmState, text: str) -> _LmState:
        state, score, word, oov = lm.state, lm.score, lm.word, lm.oov
        assert self.lm is not None
        for ch in text:
            if ch == " ":
                if word:
                    state, lp = self.lm.score(state, word)
                    score += self.weights.alpha * lp + self.weights.beta
                word, oov = "", False
                continue
            word += ch
            if not oov and word not in self.lm.prefixes:
                score += self.weights.oov_penalty
                oov = True
        return _LmState(state, score, word, oov)

    def _lm_finish(self, lm: _LmState | None) -> float:
        """The LM score of a finished transcript: its last word and the end of the sentence."""
        if lm is None or self.lm is None:
            return 0.0
        lm = self._lm_step(lm, " ")
        return lm.score + self.weights.alpha * self.lm.end(lm.state)

    def _extend(self, parent: _Beam, token: int, frame: int, lp: float) -> _Beam:
        context, bias = parent.context, parent.bias
        text = self.vocabulary.texts[token]
        if self.context is not None:
            context, delta = self.context.step(parent.context, text)
            bias += delta
        lm = self._lm_step(parent.lm, text) if parent.lm is not None else None
        return _Beam(
            NEG_INF,
            NEG_INF,
            context,
            bias,
            (*parent.starts, frame),
            (*parent.ends, frame),
            (*parent.probs, math.exp(lp)),
            lm,
            bias + (lm.score if lm else 0.0),
        )

    def _add_fresh(
        self,
        nxt: dict[int, _Beam],
        fresh: list[tuple[int, int, _Beam, int, float, float]],
        frame: int,
    ) -> None:
        """Make beams of the prefixes new in this frame, except those that cannot reach the beam.

        A new prefix scores its acoustic probability plus its parent's extra score plus what its
        token adds: at most `beta` with an LM (one word completed, ln P ≤ 0), nothing without, and
        unbounded with biasing. They are made best bound first; once `beam_size` prefixes already
        score above the next one's bound, it and all after it could never be kept, so the LM and
        bookkeeping work for them is skipped (the result is the same as extending every candidate).
        """
        if not fresh:
            return
        bound = math.inf if self.context is not None else max(self.weights.beta, 0.0) if self.lm else 0.0
        # the beam_size best scores so far (a min-heap); fresh prefixes in order of their upper bound
        kept = heapq.nlargest(self.beam_size, (b.total + b.extra for b in nxt.values()))
        kept.reverse()
        fresh.sort(key=lambda f: f[5] + f[2].extra, reverse=True)
        for key, node, parent, token, lp, p_token in fresh:
            if len(kept) == self.beam_size and p_token + parent.extra + bound < kept[0]:
                break  # neither this prefix nor any after it can reach the beam
            target = nxt[self._node(key, node, token)] = self._extend(parent, token, frame, lp)
            target.p_token = p_token
            score = p_token + target.extra
            if len(kept) < self.beam_size:
                heapq.heappush(kept, score)
            elif score > kept[0]:
                heapq.heapreplace(kept, score)

    def advance(self, logprobs: np.ndarray, frame_start: int) -> None:
        if not len(logprobs):
            return
        blank = self.vocabulary.blank
        size = self.vocabulary.size
        k = min(self.beam_size, logprobs.shape[1])
        top = np.argpartition(-logprobs, k - 1, axis=1)[:, :k].tolist()
        maxima = logprobs.max(axis=1).tolist()
        for i, row in enumerate(logprobs.tolist()):  # Python floats: numpy scalars cost more here
            frame = frame_start + i
            lp_blank = row[blank]
            if lp_blank >= self._blank_skip_lp:
                candidates: list[int] = []
            else:
                floor = maxima[i] - self.prune
                candidates = [t for t in top[i] if t != blank and row[t] >= floor]
            nxt: dict[int, _Beam] = {}
            fresh: list[tuple[int, int, _Beam, int, float, float]] = []
            for node, beam in self._beams.items():
                total = beam.total
                here = nxt.get(node)
                if here is None:
                    here = nxt[node] = beam.carried()
                here.p_blank = _lse(here.p_blank, total + lp_blank)
                last = self._token[node]
                if last >= 0:  # the last token repeated, no blank between: same prefix
                    lp_last = row[last]
                    here.p_token = _lse(here.p_token, beam.p_token + lp_last)
                    if lp_last > lp_blank and beam.p_token > NEG_INF:
                        here.ends = (*here.ends[:-1], frame)
                        here.probs = (*here.probs[:-1], max(here.probs[-1], math.exp(lp_last)))
                for token in candidates:
                    lp = row[token]
                    key = node * size + token
                    new = self._child.get(key, -1)
                    # after a blank, or a different token: a new token starts
                    source = beam.p_blank if token == last else total
                    target = nxt.get(new)
                    if target is None:
                        old = self._beams.get(new)
                        if old is None:  # a prefix new in this frame: its only parent is `beam`
                            fresh.append((key, node, beam, token, lp, source + lp))
                            continue
                        target = nxt[new] = old.carried()
                    target.p_token = _lse(target.p_token, source + lp)
            self._add_fresh(nxt, fresh, frame)
            if len(nxt) > self.beam_size:
                ranked = sorted(nxt.items(), key=lambda kv: kv[1].total + kv[1].extra, reverse=True)
                nxt = dict(ranked[: self.beam_size])
            self._beams = nxt

    def leading(self) -> Hypothesis:
        """The best prefix as it stands (no end-of-utterance finishing: a word being spoken is not
        judged as if complete), for interim results: it has been through the LM and the biasing, so
        a stray fragment the final will drop ("te set a timer") has already lost to the words."""
        node, beam = max(self._beams.items(), key=lambda item: item[1].total + item[1].bias)
        prefix = self._tokens(node)
        return Hypothesis(
            self.vocabulary.text(prefix), prefix, beam.starts, beam.ends, beam.probs, beam.total
        )

    def best(self, n: int = 1) -> list[Hypothesis]:
        """The `n` best distinct transcripts, biasing and LM finished (partial phrases taken back)."""
        scored = []
        for node, beam in self._beams.items():
            bias = beam.bias + (self.context.finish(beam.context) if self.context else 0.0)
            scored.append((beam.total + bias + self._lm_finish(beam.lm), self._tokens(node), beam))
        scored.sort(key=lambda item: item[0], reverse=True)
        seen: set[str] = set()
        out: list[Hypothesis] = []
        for score, prefix, beam in scored:
            text = self.vocabulary.text(prefix)
            if text in seen:
                continue
            seen.add(text)
            out.append(Hypothesis(text, prefix, beam.starts, beam.ends, beam.probs, score))
            if len(out) == n:
                break
        return out
