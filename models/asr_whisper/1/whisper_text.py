"""Text and token helpers of the Whisper pass (`whisper_engine`): the audio framing, the written forms
a hinted phrase may take, Whisper's loops, and CTranslate2's token budgets. Pure functions, no model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
HOP = 160  # samples per feature frame (10 ms)
LOOP_UNIT_MAX = 12  # tokens: "see you in the next video," is 7
LOOP_REPEATS = 4  # a unit of 1-12 tokens said this many times in a row is Whisper looping, not speech
# CTranslate2's Whisper.generate returns at most max_length // 2 tokens (measured with 4.8.5: 4 → 2,
# 16 → 8, 30 → 15, with or without a forced prefix; Whisper's own sample_len is n_text_ctx // 2)
TOKENS_PER_MAX_LENGTH = 2
# ...except below 6 with a multilingual model's longer prompt (base: 3 → an error, 2 → no token at
# all, 4 → 1): a one-token step asks for 4
LEAST_MAX_LENGTH = 4
ONES = "zero one two three four five six seven eight nine".split()


def phrase_forms(phrase: str) -> list[str]:
    """Written forms Whisper may use for a spoken phrase: as given, capitalised (with and without a
    full stop: the answer may go on, "Four people."), and with number words as digits ("5")."""
    words = phrase.strip().split()
    if not words:
        return []
    capitalised = " " + " ".join(words).capitalize()
    forms = {" " + " ".join(words), capitalised, capitalised + "."}
    digits = [str(ONES.index(w.lower())) if w.lower() in ONES else w for w in words]
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


def trim_loop(tokens: list[int], min_repeats: int) -> list[int]:
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


def generate_max_length(tokens: int) -> int:
    """CTranslate2's `max_length` that lets `generate` return up to `tokens` tokens."""
    return max(tokens * TOKENS_PER_MAX_LENGTH, LEAST_MAX_LENGTH)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    top = logits.max()
    return logits - top - np.log(np.exp(logits - top).sum())


def canon(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def spoken_canon(text: str) -> str:
    return " ".join(ONES[int(w)] if w.isdigit() and len(w) == 1 else w for w in canon(text).split())
