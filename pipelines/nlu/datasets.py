"""Joint intent + slot data in the SNIPS/ATIS layout: {split}/seq.in, seq.out, label."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# A word whose tag is unknown (SLURP marks fewer entities than SNIPS): no slot supervision for it.
UNLABELLED = "X"


@dataclass(frozen=True)
class Example:
    words: tuple[str, ...]
    tags: tuple[str, ...]
    intent: str


def read_split(split_dir: Path) -> list[Example]:
    """Read one split; raises ValueError if a line's words and tags do not align."""
    words_lines = (split_dir / "seq.in").read_text(encoding="utf-8").splitlines()
    tags_lines = (split_dir / "seq.out").read_text(encoding="utf-8").splitlines()
    labels = (split_dir / "label").read_text(encoding="utf-8").splitlines()
    if not len(words_lines) == len(tags_lines) == len(labels):
        raise ValueError(f"{split_dir}: seq.in, seq.out and label have different line counts")
    examples = []
    for number, (words, tags, label) in enumerate(zip(words_lines, tags_lines, labels, strict=True), 1):
        w, t = tuple(words.split()), tuple(tags.split())
        if len(w) != len(t):
            raise ValueError(f"{split_dir} line {number}: {len(w)} words but {len(t)} tags")
        examples.append(Example(w, t, label.strip()))
    return examples


def write_split(split_dir: Path, examples: list[Example]) -> None:
    split_dir.mkdir(parents=True, exist_ok=True)
    (split_dir / "seq.in").write_text("".join(" ".join(e.words) + "\n" for e in examples), encoding="utf-8")
    (split_dir / "seq.out").write_text("".join(" ".join(e.tags) + "\n" for e in examples), encoding="utf-8")
    (split_dir / "label").write_text("".join(e.intent + "\n" for e in examples), encoding="utf-8")


def is_valid_bio(tags: tuple[str, ...] | list[str]) -> bool:
    """Strict BIO: every I-x follows a B-x or I-x of the same type."""
    previous = "O"
    for tag in tags:
        if tag != "O" and not (tag.startswith("B-") or tag.startswith("I-")):
            return False
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True
