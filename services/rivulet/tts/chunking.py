"""Cut text into the pieces a streaming synthesizer speaks one after another.

A synthesizer call costs time roughly in proportion to its text, and the first audio can leave
only when the first call returns. So text is spoken piece by piece:

- one piece per sentence;
- sentences longer than ``max_words`` are cut at clause punctuation (``, ; :``), then before a
  conjunction, then every ``max_words`` words;
- the first piece of an utterance is kept to at most ``first_words`` words, cut before a
  preposition or conjunction where there is one (``please set an alarm | for seven thirty``), so
  the first audio comes after a few words' synthesis instead of a whole sentence's.

Each piece carries the pause that follows it (sentence > clause > phrase), so the joins sound
like speech rather than like separate calls. Pure functions, no engine knowledge: the Triton
synthesizer models import this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

SENTENCE_PAUSE_MS = 280
CLAUSE_PAUSE_MS = 140
PHRASE_PAUSE_MS = 30

# Words a phrase can start with: the cut before one of them sounds natural.
PHRASE_STARTERS = frozenset(
    "for to in on at with from by about into onto after before during over under between through "
    "and but or so because while when where if that which who until unless than as".split()
)
CONJUNCTIONS = frozenset("and but or so because while when where which who unless although".split())

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")
_PHONEMES = re.compile(r"\[\[.*?\]\]")


@dataclass(frozen=True)
class Piece:
    text: str
    pause_after_ms: int


def _words(text: str) -> list[str]:
    return text.split()


def _split_long(words: list[str], max_words: int) -> list[list[str]]:
    """Split a clause that is still too long: before a conjunction near the middle, else evenly."""
    if len(words) <= max_words:
        return [words]
    lo, hi = max(2, len(words) // 3), min(len(words) - 2, 2 * len(words) // 3 + 1)
    for i in range(hi, lo - 1, -1):
        if words[i].lower().strip(",.;:") in CONJUNCTIONS:
            return _split_long(words[:i], max_words) + _split_long(words[i:], max_words)
    return [words[i : i + max_words] for i in range(0, len(words), max_words)]


def _sentence_pieces(sentence: str, max_words: int) -> list[Piece]:
    words = _words(sentence)
    if len(words) <= max_words:
        return [Piece(sentence, SENTENCE_PAUSE_MS)]
    pieces: list[Piece] = []
    clauses = [c for c in _CLAUSE_END.split(sentence) if c.strip()]
    for ci, clause in enumerate(clauses):
        chunks = _split_long(_words(clause), max_words)
        for k, chunk in enumerate(chunks):
            last_in_clause = k == len(chunks) - 1
            pause = PHRASE_PAUSE_MS if not last_in_clause else CLAUSE_PAUSE_MS
            if last_in_clause and ci == len(clauses) - 1:
                pause = SENTENCE_PAUSE_MS
            pieces.append(Piece(" ".join(chunk), pause))
    return pieces


def _cut_first(piece: Piece, first_words: int) -> list[Piece]:
    words = _words(piece.text)
    if len(words) <= first_words + 1:
        return [piece]
    for i in range(first_words, 1, -1):
        if words[i].lower() in PHRASE_STARTERS and not words[i - 1].endswith(","):
            break
    else:
        i = first_words
    return [Piece(" ".join(words[:i]), PHRASE_PAUSE_MS), Piece(" ".join(words[i:]), piece.pause_after_ms)]


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``; phoneme input ``[[...]]`` is never cut."""
    protected = _PHONEMES.sub(lambda m: m[0].replace(" ", "\x00").replace(".", "\x01"), text)
    parts = [p for p in _SENTENCE_END.split(protected.strip()) if p.strip()]
    return [p.replace("\x00", " ").replace("\x01", ".") for p in parts]


def split_text(text: str, *, max_words: int = 14, first_words: int = 0) -> list[Piece]:
    """Pieces of ``text`` in speaking order; ``first_words`` > 0 also shortens the first piece."""
    pieces = [p for sentence in split_sentences(text) for p in _sentence_pieces(sentence, max_words)]
    if pieces and first_words > 0:
        pieces = _cut_first(pieces[0], first_words) + pieces[1:]
    return pieces


def trim_silence(
    samples: np.ndarray, sample_rate: int, threshold: float = 0.01, margin_ms: int = 15
) -> np.ndarray:
    """Drop the leading and trailing silence an engine puts around every call (keeps a margin)."""
    if samples.size == 0:
        return samples
    loud = np.flatnonzero(np.abs(samples) > threshold * max(float(np.abs(samples).max()), 1e-6))
    if loud.size == 0:
        return samples[:0]
    margin = sample_rate * margin_ms // 1000
    return samples[max(0, loud[0] - margin) : loud[-1] + 1 + margin]


def silence(ms: int, sample_rate: int) -> np.ndarray:
    return np.zeros(sample_rate * ms // 1000, dtype=np.float32)
