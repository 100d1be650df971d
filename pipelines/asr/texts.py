"""The sentences the ASR model learns and is tested on, from the assistant's domains.

SNIPS sentences, the assistant's own commands (``pipelines.nlu.assistant_domain``), digits and
digit strings, numbers, times and dates. Everything is normalized (``text.normalize``). Training
texts come from the train splits; evaluation texts from the test splits, so the held-out sets
measure new voices *and* new sentences.
"""

from __future__ import annotations

import random

from pipelines.asr.paths import snips_dir
from pipelines.asr.text import digit_words, normalize, number_words, ordinal_words, year_words
from pipelines.nlu.assistant_domain import SOCIAL_PREFIXES, SOCIAL_SUFFIXES
from pipelines.nlu.assistant_domain import generate as assistant_generate
from pipelines.nlu.datasets import read_split
from pipelines.nlu.runtime import intent_slot

DIGITS = "zero one two three four five six seven eight nine".split()
_DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_MONTHS = "january february march april may june july august september october november december".split()


def snips_sentences(split: str, max_words: int = 18) -> list[str]:
    lines = (snips_dir() / split / "seq.in").read_text(encoding="utf-8").splitlines()
    out = [normalize(line) for line in lines]
    return [s for s in dict.fromkeys(out) if s and len(s.split()) <= max_words]


def assistant_commands(split: str) -> list[str]:
    examples = assistant_generate()[split]
    return list(dict.fromkeys(s for s in (normalize(" ".join(e.words)) for e in examples) if s))


def answers(split: str) -> list[str]:
    """What a user says back to the assistant's questions: each slot value of the split's SNIPS and
    assistant sentences on its own ("boston", "four", "tomorrow at seven pm" asked for a place, a
    party size, a time), and the short social replies (yes, no, cancel, repeat...) without their
    fillers ("um yes please" → "yes please")."""
    spans = intent_slot().tags_to_spans
    out: list[str] = []
    fillers = set(SOCIAL_PREFIXES) | set(SOCIAL_SUFFIXES)
    for example in [*read_split(snips_dir() / split), *assistant_generate()[split]]:
        out += [" ".join(example.words[start:end]) for _, start, end in spans(example.tags)]
        if example.intent in ("Affirm", "Deny", "Cancel", "Repeat", "Help", "Thanks"):
            words = list(example.words)
            while words and words[0] in fillers:
                words.pop(0)
            while words and words[-1] in fillers:
                words.pop()
            out.append(" ".join(words))
    return [a for a in dict.fromkeys(normalize(a) for a in out) if a]


def digit_string(rng: random.Random) -> str:
    n = rng.choice([1, 1, 1, 2, 3, 4, 4, 5, 7, 10])
    words = [rng.choice(DIGITS) for _ in range(n)]
    if rng.random() < 0.1:
        words = ["oh" if w == "zero" else w for w in words]
    return " ".join(words)


def number_phrase(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return number_words(
            rng.choice([rng.randint(0, 100), rng.randint(100, 999), rng.randint(1000, 99999)])
        )
    if kind < 0.6:
        hour, minute = rng.randint(1, 12), rng.choice([0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 7])
        text = f"{hour}:{minute:02d}" + rng.choice(["", " am", " pm", " in the morning", " tonight"])
        return normalize(rng.choice(["", "at ", "set an alarm for ", "wake me up at ", "it's "]) + text)
    if kind < 0.8:
        day = rng.randint(1, 31)
        month = rng.choice(_MONTHS)
        text = rng.choice(
            [f"{month} {ordinal_words(day)}", f"the {ordinal_words(day)} of {month}", rng.choice(_DAYS)]
        )
        if rng.random() < 0.3:
            text += " " + year_words(rng.randint(1950, 2035))
        return normalize(rng.choice(["", "on ", "remind me on ", "what day is "]) + text)
    if kind < 0.9:
        return normalize(
            f"{rng.randint(1, 60)} {rng.choice(['minutes', 'seconds', 'hours', 'percent', 'degrees'])}"
        )
    return " ".join(digit_words(str(rng.randint(0, 9))) for _ in range(rng.randint(2, 4)))


def training_texts(rng: random.Random, counts: dict[str, int]) -> list[tuple[str, str]]:
    """(category, text) pairs: ``counts`` per category snips/assistant/digits/numbers."""
    texts: list[tuple[str, str]] = []
    snips = snips_sentences("train")
    assistant = assistant_commands("train")
    texts += [("snips", t) for t in rng.sample(snips, min(counts.get("snips", 0), len(snips)))]
    n_assistant = counts.get("assistant", 0)
    texts += [
        ("assistant", assistant[i % len(assistant)]) for i in rng.sample(range(n_assistant), n_assistant)
    ]
    texts += [("digits", digit_string(rng)) for _ in range(counts.get("digits", 0))]
    texts += [("numbers", number_phrase(rng)) for _ in range(counts.get("numbers", 0))]
    return texts


def evaluation_texts(rng: random.Random, per_set: int, split: str = "test") -> dict[str, list[str]]:
    """Sentences the model never trained on: SNIPS and assistant `split` (test, or dev for tuning),
    fresh digit strings."""
    snips = snips_sentences(split, max_words=14)
    assistant = assistant_commands(split)
    return {
        "commands": rng.sample(assistant, min(per_set, len(assistant))),
        "snips": rng.sample(snips, min(per_set, len(snips))),
        "digits": [digit_string(rng) for _ in range(per_set)],
    }
