"""SLURP's real crowd-sourced phrasings as assistant training and evaluation data.

`../shared/data/nlu/slurp/devel.jsonl` (SLURP's dev split; its test split is kept out of the project)
is mapped onto the assistant's intents and slot labels by the rules in `data/slurp_mapping.toml`;
what no rule maps is out-of-scope material. Sentences are split into train / dev / test parts by a
hash of the normalized sentence, so the split is deterministic, the same sentence (recorded or typed
by several people) never lands in two parts, and adding data moves no existing sentence.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.nlu.datasets import UNLABELLED, Example
from pipelines.nlu.paths import data_dir

MAPPING_FILE = Path(__file__).parent / "data" / "slurp_mapping.toml"
# Percent of sentences per part, by hash bucket: train [0, 60), dev [60, 75), test [75, 100).
PARTS = (("train", 60), ("dev", 75), ("test", 100))


def devel_file() -> Path:
    return data_dir() / "nlu" / "slurp" / "devel.jsonl"


@dataclass(frozen=True)
class Rule:
    slurp: frozenset[str]
    intent: str = ""
    exclude: str = ""
    if_words: frozenset[str] = frozenset()
    if_entities: frozenset[str] = frozenset()
    slots: dict[str, str] = field(default_factory=dict)

    def matches(self, key: str, words: Iterable[str], entity_types: Iterable[str]) -> bool:
        if key not in self.slurp:
            return False
        if self.if_words and not self.if_words & set(words):
            return False
        return not self.if_entities or bool(self.if_entities & set(entity_types))


@dataclass(frozen=True)
class Mapping:
    rules: tuple[Rule, ...]
    out_of_scope_intent: str

    @property
    def intents(self) -> set[str]:
        """The assistant intents SLURP sentences are mapped to (the out-of-scope intent not included)."""
        return {r.intent for r in self.rules if r.intent}

    def decide(self, key: str, words: Iterable[str], entity_types: Iterable[str]) -> Rule | None:
        """The first rule that matches; None: the sentence is out of scope."""
        words, entity_types = list(words), list(entity_types)
        return next((r for r in self.rules if r.matches(key, words, entity_types)), None)


def load_mapping(path: Path = MAPPING_FILE) -> Mapping:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    rules = []
    for number, raw in enumerate(data["rule"], 1):
        if bool(raw.get("intent")) == bool(raw.get("exclude")):
            raise ValueError(f"{path}: rule {number} needs exactly one of intent or exclude")
        rules.append(
            Rule(
                slurp=frozenset(raw["slurp"]),
                intent=raw.get("intent", ""),
                exclude=raw.get("exclude", ""),
                if_words=frozenset(raw.get("if_words", ())),
                if_entities=frozenset(raw.get("if_entities", ())),
                slots=dict(raw.get("slots", {})),
            )
        )
    return Mapping(tuple(rules), data["out_of_scope_intent"])


def intent_key(record: dict) -> str:
    """scenario_action, also for the few records whose intent field lacks the scenario ("music")."""
    scenario, intent = record["scenario"], record["intent"]
    return intent if intent.startswith(scenario + "_") else f"{scenario}_{intent}"


def normalized(sentence: str) -> str:
    return " ".join(sentence.lower().split())


def part_of(sentence: str) -> str:
    """train, dev or test: a fixed function of the normalized sentence."""
    bucket = int(hashlib.sha256(normalized(sentence).encode("utf-8")).hexdigest()[:8], 16) % 100
    return next(name for name, end in PARTS if bucket < end)


def to_example(record: dict, mapping: Mapping) -> Example | None:
    """The record as an assistant example; None when the mapping excludes it."""
    words = [t["surface"].lower() for t in record["tokens"]]
    entities = record.get("entities", [])
    rule = mapping.decide(intent_key(record), words, [e["type"] for e in entities])
    if rule is not None and rule.exclude:
        return None
    tags = [UNLABELLED] * len(words)
    slots = rule.slots if rule else {}
    for entity in entities:
        label = slots.get(entity["type"])
        span = sorted(entity["span"])
        if label and span:
            for n, index in enumerate(range(span[0], span[-1] + 1)):
                tags[index] = ("B-" if n == 0 else "I-") + label
    words, tags = _split_apostrophes(words, tags)
    return Example(tuple(words), tuple(tags), rule.intent if rule else mapping.out_of_scope_intent)


def _split_apostrophes(words: list[str], tags: list[str]) -> tuple[list[str], list[str]]:
    """SNIPS tokenization, as the runtime splits text: "what's" -> "what" "s", a word inside a
    slot continues it with I-."""
    out_words: list[str] = []
    out_tags: list[str] = []
    for word, tag in zip(words, tags, strict=True):
        pieces = [p for p in word.replace("\u2019", "'").split("'") if p]
        for n, piece in enumerate(pieces):
            out_words.append(piece)
            out_tags.append(tag if n == 0 or tag == UNLABELLED else "I-" + tag[2:])
    return out_words, out_tags


def load_sentences(
    path: Path | None = None, mapping: Mapping | None = None
) -> list[tuple[str, str, Example]]:
    """(part, the sentence as written, its mapped example) in file order; excluded ones left out."""
    mapping = mapping or load_mapping()
    found = []
    for line in (path or devel_file()).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        example = to_example(record, mapping)
        if example is not None and example.words:
            found.append((part_of(record["sentence"]), record["sentence"], example))
    return found


def load_parts(path: Path | None = None, mapping: Mapping | None = None) -> dict[str, list[Example]]:
    """{"train", "dev", "test"}: the mapped examples of each part, in file order."""
    parts: dict[str, list[Example]] = {name: [] for name, _ in PARTS}
    for part, _, example in load_sentences(path, mapping):
        parts[part].append(example)
    return parts
