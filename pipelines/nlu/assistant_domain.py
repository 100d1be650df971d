"""Templated utterances for the voice assistant's own intents, in the SNIPS format.

The vocabularies, fillers and templates are data (`data/assistant_domain.toml`); this module draws
slot values and renders templates. Deterministic for a given seed: lowercase words (SNIPS
tokenization: "what's" -> "what s"), word-level BIO tags, CamelCase intents. `generate()` returns
disjoint train/dev/test splits of unique utterances.
"""

from __future__ import annotations

import random
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

from pipelines.nlu.datasets import Example
from rivulet.asr.transcript_forms import cardinal as number_words

DOMAIN_FILE = Path(__file__).parent / "data" / "assistant_domain.toml"

_DOMAIN = tomllib.loads(DOMAIN_FILE.read_text(encoding="utf-8"))
_WORDS: dict[str, list[str]] = _DOMAIN["vocabulary"]


def _number(rng: random.Random, low: int, high: int) -> str:
    n = rng.randint(low, high)
    return str(n) if rng.random() < 0.45 else number_words(n)


def _duration(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.12:
        return rng.choice(_WORDS["duration_phrases"])
    if kind < 0.22:
        return f"{_number(rng, 1, 3)} hours and {_number(rng, 5, 55)} minutes"
    if kind < 0.28:
        return f"{_number(rng, 1, 9)} minutes {_number(rng, 5, 55)} seconds"
    unit = rng.choice(_WORDS["duration_units"])
    high = {"hours": 12}.get(unit, 90)
    n = rng.randint(2, high)
    value = str(n) if rng.random() < 0.45 else number_words(n)
    return f"{value} {unit}"


def _clock(rng: random.Random) -> str:
    hour = rng.randint(1, 12)
    minute = rng.choice([0, 0, 5, 10, 15, 20, 30, 30, 40, 45, 50])
    kind = rng.random()
    ampm = rng.choice(_WORDS["clock_suffixes"])
    if kind < 0.25:
        return f"{hour}{ampm}" if ampm else f"{hour} o clock"
    if kind < 0.5:
        return f"{hour}:{minute:02d}{ampm}"
    if kind < 0.7:
        words = number_words(hour) + ("" if minute == 0 else " " + number_words(minute))
        return words + (ampm or rng.choice([" o clock", "", " am", " pm"]) if minute == 0 else ampm)
    if kind < 0.85:
        if minute in (15, 30, 45):
            phrase = {15: "quarter past", 30: "half past", 45: "quarter to"}[minute]
            target = hour if minute != 45 else hour % 12 + 1
            return f"{phrase} {rng.choice([str(target), number_words(target)])}{ampm}"
        return f"{number_words(hour)} {rng.choice(['am', 'pm'])}"
    return rng.choice(_WORDS["clock_phrases"])


def _date(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return rng.choice(_WORDS["date_phrases"])
    if kind < 0.65:
        return f"{rng.choice(_WORDS['day_prefixes'])} {rng.choice(_WORDS['days'])}".lstrip()
    return f"{rng.choice(_WORDS['months'])} {rng.choice(_WORDS['ordinals'])}"


def _brightness(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.55:
        n = rng.choice(range(5, 101, 5))
        return f"{n} percent" if rng.random() < 0.5 else f"{number_words(n)} percent"
    if kind < 0.7:
        return f"{rng.choice(range(10, 101, 10))}%"
    if kind < 0.85:
        return f"level {_number(rng, 1, 10)}"
    return rng.choice(_WORDS["brightness_words"])


def _pick(words: str) -> Callable[[random.Random], str]:
    return lambda rng: rng.choice(_WORDS[words])


SLOT_VALUES: dict[str, Callable[[random.Random], str]] = {
    "duration": _duration,
    "time": _clock,
    "date": _date,
    "room": _pick("rooms"),
    "device": _pick("devices"),
    "brightness": _brightness,
    "item": _pick("items"),
    "list_name": _pick("lists"),
}

# intent -> (templates, how many unique utterances to aim for, takes command fillers)
TEMPLATES: dict[str, tuple[list[str], int, bool]] = {
    intent: (spec["templates"], spec["target"], spec["command"])
    for intent, spec in _DOMAIN["intents"].items()
}
COMMAND_PREFIXES: list[str] = _DOMAIN["fillers"]["command_prefixes"]
COMMAND_SUFFIXES: list[str] = _DOMAIN["fillers"]["command_suffixes"]
SOCIAL_PREFIXES: list[str] = _DOMAIN["fillers"]["social_prefixes"]
SOCIAL_SUFFIXES: list[str] = _DOMAIN["fillers"]["social_suffixes"]
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _render(template: str, rng: random.Random) -> tuple[list[str], list[str]]:
    words: list[str] = []
    tags: list[str] = []
    for part in template.split():
        match = _PLACEHOLDER.fullmatch(part)
        if match:
            value = SLOT_VALUES[match.group(1)](rng).split()
            words.extend(value)
            tags.extend([f"B-{match.group(1)}"] + [f"I-{match.group(1)}"] * (len(value) - 1))
        else:
            words.append(part)
            tags.append("O")
    return words, tags


def _utterance(template: str, command: bool, rng: random.Random) -> tuple[list[str], list[str]]:
    words, tags = _render(template, rng)
    prefixes, suffixes = (
        (COMMAND_PREFIXES, COMMAND_SUFFIXES) if command else (SOCIAL_PREFIXES, SOCIAL_SUFFIXES)
    )
    if rng.random() < (0.3 if command else 0.15):
        prefix = rng.choice(prefixes).split()
        words, tags = prefix + words, ["O"] * len(prefix) + tags
    if rng.random() < (0.15 if command else 0.08):
        suffix = rng.choice(suffixes).split()
        words, tags = words + suffix, tags + ["O"] * len(suffix)
    return words, tags


def generate(
    seed: int = 13, dev_fraction: float = 0.1, test_fraction: float = 0.1
) -> dict[str, list[Example]]:
    """Unique utterances per intent, shuffled and split into {"train", "dev", "test"}."""
    rng = random.Random(seed)
    splits: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    for intent, (templates, target, command) in TEMPLATES.items():
        seen: dict[tuple[str, ...], Example] = {}
        for _ in range(target * 6):
            if len(seen) >= target:
                break
            words, tags = _utterance(rng.choice(templates), command, rng)
            seen.setdefault(tuple(words), Example(tuple(words), tuple(tags), intent))
        examples = list(seen.values())
        rng.shuffle(examples)
        n_dev = max(2, round(len(examples) * dev_fraction))
        n_test = max(2, round(len(examples) * test_fraction))
        splits["dev"].extend(examples[:n_dev])
        splits["test"].extend(examples[n_dev : n_dev + n_test])
        splits["train"].extend(examples[n_dev + n_test :])
    return splits
