"""The punctuation model's text: fortune entries read, cleaned, labelled per word and cut into examples.

What is read and how it maps onto labels is data (`corpus.toml` beside this file); the labels of a
text come from the serving runtime's `word_labels`, so training and serving split words alike.
"""

from __future__ import annotations

import importlib.metadata
import random
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipelines.punct.runtime import punct_capit

CORPUS_FILE = Path(__file__).with_name("corpus.toml")
SENTENCE_END = frozenset(".?")


@dataclass(frozen=True)
class Example:
    """One training or test example: lower-cased words, the mark after each, each word's case."""

    words: tuple[str, ...]
    marks: tuple[str, ...]
    cases: tuple[str, ...]


@dataclass
class Corpus:
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    entries: dict[str, int]  # entries kept per split, and skipped

    def sizes(self) -> dict:
        return {
            **{f"{split}_examples": len(getattr(self, split)) for split in ("train", "dev", "test")},
            **{
                f"{split}_words": sum(len(e.words) for e in getattr(self, split))
                for split in ("train", "test")
            },
            "entries": self.entries,
        }


@cache
def settings() -> dict:
    with CORPUS_FILE.open("rb") as f:
        return tomllib.load(f)


def punct_labels() -> list[str]:
    return list(settings()["labels"]["punct"])


def capit_labels() -> list[str]:
    return list(settings()["labels"]["capit"])


def mark_map() -> dict[str, str]:
    return dict(settings()["marks"])


def source_files() -> list[Path]:
    """The fortune files of the installed source package (their identity goes into the build key)."""
    source = settings()["source"]
    try:
        files = importlib.metadata.files(source["package"]) or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"the PyPI package {source['package']} (the punctuation model's text) is not installed: "
            "run `make setup`"
        ) from None
    found = {f.name: Path(f.locate()).resolve() for f in files if f.name in source["files"]}
    missing = sorted(set(source["files"]) - set(found))
    if missing:
        raise FileNotFoundError(f"{source['package']} lacks the files {missing}")
    return [found[name] for name in source["files"]]


def read_entries(path: Path, encoding: str) -> list[str]:
    """A fortune file's entries (separated by lines holding only '%')."""
    text = path.read_text(encoding=encoding)
    return [e.strip("\n") for e in re.split(r"^%\s*$", text, flags=re.MULTILINE) if e.strip()]


def clean_entry(entry: str) -> str | None:
    """One line of prose, or None when the entry is not plain prose (see [clean] in corpus.toml).
    An attribution ('-- Author') and everything after it is dropped."""
    rules = settings()["clean"]
    lines = []
    for line in entry.splitlines():
        if line.strip().startswith("--"):
            break
        if line[:1].isspace() or "\t" in line or not line.isascii():  # verse, dialogue, lists, tables
            return None
        lines.append(line)
    text = " ".join(lines)
    if any(c in rules["reject_characters"] for c in text):
        return None
    for written, replacement in rules["replace"].items():
        text = text.replace(written, replacement)
    text = " ".join(text.split())
    letters = [c for c in text if c.isalpha()]
    if not letters or sum(c.isupper() for c in letters) > rules["max_upper_share"] * len(letters):
        return None
    if len(text.split()) < rules["min_words"] or text[-1] not in ".?!\"')":
        return None
    return text


def examples_of(text: str, max_words: int) -> list[Example]:
    """A cleaned entry cut into examples of whole sentences (at most `max_words` words each; a
    longer sentence is cut into pieces)."""
    labelled = punct_capit().word_labels(text, mark_map())
    rows = list(zip([w.text for w in labelled.words], labelled.marks, labelled.cases, strict=True))
    sentences: list[list[tuple[str, str, str]]] = [[]]
    for row in rows:
        sentences[-1].append(row)
        if row[1] in SENTENCE_END:
            sentences.append([])
    pieces = [s[i : i + max_words] for s in sentences if s for i in range(0, len(s), max_words)]
    examples: list[Example] = []
    chunk: list[tuple[str, str, str]] = []
    for piece in pieces:
        if chunk and len(chunk) + len(piece) > max_words:
            examples.append(Example(*map(tuple, zip(*chunk, strict=True))))
            chunk = []
        chunk.extend(piece)
    if chunk:
        examples.append(Example(*map(tuple, zip(*chunk, strict=True))))
    return examples


def load_corpus(max_words: int, eval_examples: int | None = None) -> Corpus:
    """Every cleaned entry cut into examples of at most `max_words` words; `eval_examples`: keep only
    the first N dev and test examples."""
    source = settings()["source"]
    texts: list[str] = []
    skipped = 0
    for path in source_files():
        for entry in read_entries(path, source["encoding"]):
            text = clean_entry(entry)
            if text is None:
                skipped += 1
            else:
                texts.append(text)
    texts = sorted(set(texts))  # duplicates across files would leak between splits
    random.Random(source["split_seed"]).shuffle(texts)
    n_dev = int(len(texts) * source["dev_fraction"])
    n_test = int(len(texts) * source["test_fraction"])
    splits = {"dev": texts[:n_dev], "test": texts[n_dev : n_dev + n_test], "train": texts[n_dev + n_test :]}
    examples = {
        name: [e for text in split for e in examples_of(text, max_words)] for name, split in splits.items()
    }
    entries = {**{name: len(split) for name, split in splits.items()}, "skipped": skipped}
    held_out = slice(0, eval_examples)
    return Corpus(examples["train"], examples["dev"][held_out], examples["test"][held_out], entries)
