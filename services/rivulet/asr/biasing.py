"""Contextual biasing: Riva `speech_contexts` (phrases + boost) as a character trie for beam search.

A beam hypothesis walks the trie character by character as its transcript grows. While it is
inside a boosted phrase it holds a partial bonus proportional to how much of the phrase it has
spelled (so the hypothesis survives the beam long enough to finish the word); if it leaves the
phrase the partial bonus is taken back, and if it completes the phrase at a word boundary the
full bonus is kept. Matches start only at word starts and end only at word ends, so "seven" is
not boosted inside "seventeen". Negative boosts work the same way with a penalty.

Bonus in natural-log score = boost × `scale` (Riva's client recommends boosts of 20–100; with the
default scale 0.2 that is 4–20 nats for a whole phrase). A phrase that is the beginning of a
longer boosted phrase ends the match when it is complete (the longer one is not followed).

The C++ lexicon search boosts words, not phrases (`word_boosts`; as Riva's flashlight decoder
does): each word of a boosted phrase gets the phrase's boost (see `lexicon_decoding`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from rivulet.asr.vocabulary import Vocabulary

ROOT = 0  # at a word start: a phrase may begin here
OUTSIDE = -1  # inside a word that matches no phrase: wait for the next word start


@dataclass(frozen=True)
class ContextState:
    node: int = ROOT
    held: float = 0.0  # partial bonus currently held (taken back if the phrase is not finished)


def word_boosts(contexts: Iterable[tuple[Iterable[str], float]], vocabulary: Vocabulary) -> dict[str, float]:
    """Riva boost per word: each word of each phrase gets the boost of the strongest phrase it is in."""
    boosts: dict[str, float] = {}
    for phrases, boost in contexts:
        if boost == 0.0 or not math.isfinite(boost):
            continue
        for phrase in phrases:
            for word in vocabulary.normalize(phrase).split():
                if abs(boost) > abs(boosts.get(word, 0.0)):
                    boosts[word] = boost
    return boosts


class ContextGraph:
    def __init__(self, phrases: Iterable[tuple[str, float]]) -> None:
        """`phrases`: (normalized phrase, bonus in nats) pairs; later duplicates overwrite earlier."""
        self.children: list[dict[str, int]] = [{}]
        self.final: list[float | None] = [None]
        self._through: list[list[float]] = [[]]  # per node: partial bonuses of phrases through it
        count = 0
        for phrase, bonus in phrases:
            if not phrase or bonus == 0.0 or not math.isfinite(bonus):
                continue
            count += 1
            node = ROOT
            for depth, ch in enumerate(phrase, start=1):
                nxt = self.children[node].get(ch)
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][ch] = nxt
                    self.children.append({})
                    self.final.append(None)
                    self._through.append([])
                node = nxt
                self._through[node].append(bonus * depth / len(phrase))
            self.final[node] = bonus
        self.phrases = count
        self.potential = [self._potential(values) for values in self._through]

    @staticmethod
    def _potential(values: list[float]) -> float:
        positive = [v for v in values if v > 0]
        if positive:
            return max(positive)
        return min(values) if values else 0.0

    @classmethod
    def from_speech_contexts(
        cls, contexts: Iterable[tuple[Iterable[str], float]], vocabulary: Vocabulary, scale: float
    ) -> ContextGraph | None:
        """None when no phrase has a non-zero boost (decoding then skips biasing entirely)."""
        pairs = [
            (vocabulary.normalize(phrase), boost * scale) for phrases, boost in contexts for phrase in phrases
        ]
        graph = cls(pairs)
        return graph if graph.phrases else None

    def step(self, state: ContextState, text: str) -> tuple[ContextState, float]:
        """Advance over the characters `text` adds; returns the new state and the score change."""
        node, held, delta = state.node, state.held, 0.0
        for ch in text:
            if ch == " ":
                if node >= 0 and self.final[node] is not None:  # a phrase completed at a word end
                    delta += self.final[node] - held
                elif node >= 0 and ch in self.children[node]:  # inside a multi-word phrase
                    node = self.children[node][ch]
                    delta += self.potential[node] - held
                    held = self.potential[node]
                    continue
                else:
                    delta -= held
                node, held = ROOT, 0.0
            elif node >= 0 and ch in self.children[node]:
                node = self.children[node][ch]
                delta += self.potential[node] - held
                held = self.potential[node]
            else:
                delta -= held
                node, held = OUTSIDE, 0.0
        return ContextState(node, held), delta

    def finish(self, state: ContextState) -> float:
        """Score change at the end of a hypothesis: keep a completed phrase, take back a partial one."""
        if state.node >= 0 and self.final[state.node] is not None:
            return self.final[state.node] - state.held
        return -state.held
