"""The templated assistant-domain data: aligned, valid BIO, deterministic, covering the intents."""

from __future__ import annotations

import re
from collections import Counter

from pipelines.nlu.assistant_domain import TEMPLATES, generate, number_words
from pipelines.nlu.datasets import is_valid_bio

REQUIRED = {
    "Greet": set(),
    "Goodbye": set(),
    "Thanks": set(),
    "Help": set(),
    "Cancel": set(),
    "Affirm": set(),
    "Deny": set(),
    "Repeat": set(),
    "GetTime": set(),
    "GetDate": set(),
    "SetTimer": {"duration"},
    "CancelTimer": set(),
    "CancelAlarm": {"time", "date"},
    "SetAlarm": {"time", "date"},
    "LightsOn": {"room", "device"},
    "LightsOff": {"room", "device"},
    "SetBrightness": {"room", "brightness"},
    "ListAdd": {"item", "list_name"},
    "ListRemove": {"item", "list_name"},
    "ListRead": {"list_name"},
}


def test_every_required_intent_and_slot_is_generated() -> None:
    splits = generate()
    for split in ("train", "dev", "test"):
        assert {e.intent for e in splits[split]} == set(REQUIRED), split
    slots_by_intent: dict[str, set[str]] = {}
    for e in splits["train"]:
        slots_by_intent.setdefault(e.intent, set()).update(t[2:] for t in e.tags if t != "O")
    for intent, slots in REQUIRED.items():
        assert slots <= slots_by_intent.get(intent, set()), intent
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", intent) for intent in TEMPLATES)


def test_words_and_tags_align_and_bio_is_valid() -> None:
    for examples in generate().values():
        for e in examples:
            assert len(e.words) == len(e.tags) > 0
            assert is_valid_bio(e.tags), e
            assert all(w == w.lower() and " " not in w and "'" not in w for w in e.words), e


def test_generation_is_deterministic_and_seeded() -> None:
    assert generate(seed=5) == generate(seed=5)
    assert generate(seed=5) != generate(seed=6)


def test_splits_are_disjoint_and_unique() -> None:
    splits = generate()
    seen = [e.words for examples in splits.values() for e in examples]
    assert len(seen) == len(set(seen))
    assert len(splits["train"]) > 4 * len(splits["test"]) > 0


def test_numbers_come_as_words_and_digits() -> None:
    durations = Counter()
    for e in generate()["train"]:
        for word, tag in zip(e.words, e.tags, strict=True):
            if tag.endswith("duration"):
                durations[
                    "digit" if word.isdigit() else "word" if word in ("five", "ten", "twenty") else "other"
                ] += 1
    assert durations["digit"] > 20 and durations["word"] > 5


def test_number_words() -> None:
    assert number_words(5) == "five"
    assert number_words(25) == "twenty five"
    assert number_words(40) == "forty"
    assert number_words(100) == "one hundred"
