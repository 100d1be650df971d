"""The training and evaluation sets of each model: which data, which labels, how words are split."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from pipelines.nlu import slurp
from pipelines.nlu.assistant_domain import DOMAIN_FILE, generate
from pipelines.nlu.datasets import UNLABELLED, Example, read_split
from pipelines.nlu.paths import data_dir

DATASETS = ("assistant", "atis")
MODEL_NAMES = {"assistant": "intent_assistant", "atis": "intent_atis"}
DOMAINS = {"assistant": "assistant", "atis": "atis"}
# How the runtime splits apostrophes, matching each data set's tokenization ("what s" vs "what's").
APOSTROPHES = {"assistant": "split", "atis": "keep"}
ASSISTANT_SEED = 13
# Sources scored by intent alone (their slot annotation is partial: words tagged X are unlabelled).
INTENT_ONLY_SOURCES = ("slurp",)


@dataclass
class Corpus:
    dataset: str
    train: dict[str, list[Example]]  # source name -> examples
    dev: dict[str, list[Example]]
    test: dict[str, list[Example]]
    intents: list[str]
    slot_tags: list[str]

    def train_examples(self, real_in_scope_repeats: int = 1) -> list[Example]:
        """Every training example; each real in-scope one (the intent-only sources' examples of an
        assistant intent) `real_in_scope_repeats` times."""
        out = [e for examples in self.train.values() for e in examples]
        if real_in_scope_repeats <= 1:
            return out
        out_of_scope = slurp.load_mapping().out_of_scope_intent
        for name in INTENT_ONLY_SOURCES:
            real = [e for e in self.train.get(name, []) if e.intent != out_of_scope]
            out += real * (real_in_scope_repeats - 1)
        return out


def data_files(dataset: str) -> list[Path]:
    """The files a data set is read from (their identity goes into the build cache key)."""
    root = data_dir() / "nlu" / ("snips" if dataset == "assistant" else "atis")
    files = [
        root / split / name for split in ("train", "dev", "test") for name in ("seq.in", "seq.out", "label")
    ]
    return [*files, slurp.devel_file(), slurp.MAPPING_FILE, DOMAIN_FILE] if dataset == "assistant" else files


def load_corpus(
    dataset: str,
    train_per_intent: dict[str, int] | None = None,
    seed: int = 0,
    real_dev_in_training: bool = False,
) -> Corpus:
    """A data set's splits; `real_dev_in_training` moves the real phrasings' dev part (SLURP's) into
    training, leaving their test part the only held-out real phrasings."""
    if dataset == "assistant":
        root = data_dir() / "nlu" / "snips"
        generated = generate(seed=ASSISTANT_SEED)
        real = slurp.load_parts()
        train = {"snips": read_split(root / "train"), "assistant": generated["train"], "slurp": real["train"]}
        dev = {"snips": read_split(root / "dev"), "assistant": generated["dev"], "slurp": real["dev"]}
        test = {"snips": read_split(root / "test"), "assistant": generated["test"], "slurp": real["test"]}
        if real_dev_in_training:
            train["slurp"] = [*real["train"], *dev.pop("slurp")]
    elif dataset == "atis":
        root = data_dir() / "nlu" / "atis"
        train = {"atis": read_split(root / "train")}
        dev = {"atis": read_split(root / "dev")}
        test = {"atis": read_split(root / "test")}
    else:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {DATASETS}")
    if train_per_intent:
        train = {
            name: subsample(examples, train_per_intent.get(name), seed) for name, examples in train.items()
        }
    examples = [e for split in train.values() for e in split]
    intents = sorted({e.intent for e in examples})
    tags = ({t for e in examples for t in e.tags} - {UNLABELLED}) | {"O"}
    slot_tags = ["O", *sorted(tags - {"O"}, key=lambda t: (t[2:], t[0]))]
    return Corpus(dataset, train, dev, test, intents, slot_tags)


def subsample(examples: list[Example], per_intent: int | None, seed: int) -> list[Example]:
    """At most `per_intent` examples of each intent (seeded), keeping the original order."""
    if not per_intent:
        return examples
    by_intent: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        by_intent[example.intent].append(index)
    rng = random.Random(seed)
    keep: set[int] = set()
    for indices in by_intent.values():
        keep.update(rng.sample(indices, min(per_intent, len(indices))))
    return [e for i, e in enumerate(examples) if i in keep]
