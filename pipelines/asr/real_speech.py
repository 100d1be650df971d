"""Real recorded speech from ../shared/data/speech, split by whole speakers into dev and test.

No speaker is in both: `dev` speakers may tune decoding (thresholds, boosts); `test` speakers are
only ever measured. The split is a hash of the speaker id (stable, no list to keep), about a quarter
dev. Nothing here trains a model: the Whisper pass is pretrained, and `pipelines.asr` (the streaming
model) reads these sets only through `speakers("dev")` if it ever trains on real speech.

Sets (each row: path, text, speaker, set):
- `an4`: CMU AN4 train split, 74 speakers: spelled letters, digits, numbers, commands.
- `commands`: Google Speech Commands test clips, 189 speakers, one word each.
- `accented`: accented alphanumerics, 70 speakers (phone numbers digit by digit, spelled names);
  all test (their prompts may differ slightly from what was said).
- `fsdd`: FSDD digits as recorded (trimmed, 8 kHz), the two speakers the streaming model never
  trained on (lucas, theo); all test.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pipelines.asr.paths import REPO_ROOT

SPEECH = REPO_ROOT.parent / "shared" / "data" / "speech"
SETS = ("an4", "commands", "accented", "fsdd")
FSDD_HELD_OUT = ("lucas", "theo")
COMMAND_WORDS = (
    "yes no up down left right on off stop go zero one two three four five six seven eight nine "
    "backward bed bird cat dog follow forward happy house learn marvin sheila tree visual wow"
).split()
DIGIT_WORDS = "zero one two three four five six seven eight nine oh".split()


@dataclass(frozen=True)
class Clip:
    path: Path
    text: str
    speaker: str
    set: str


def split_of(speaker: str) -> str:
    return "dev" if hashlib.sha1(speaker.encode()).hexdigest()[0] in "0123" else "test"


def _rows(folder: str) -> list[dict]:
    manifest = SPEECH / folder / "manifest.jsonl"
    return [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]


def clips(name: str, split: str = "test") -> list[Clip]:
    """The clips of one set spoken by the speakers of `split` (sorted, deterministic)."""
    folders = {"an4": "an4_train", "commands": "speech_commands", "accented": "accented_alphanumeric",
               "fsdd": "fsdd_train"}  # fmt: skip
    if name not in folders:
        raise ValueError(f"unknown set {name!r}: one of {', '.join(SETS)}")
    rows = _rows(folders[name])
    if name == "fsdd":
        rows = [r for r in rows if r["speaker"] in FSDD_HELD_OUT]
    if name in ("fsdd", "accented"):  # held out whole: test only
        rows = rows if split == "test" else []
    else:
        rows = [r for r in rows if split_of(r["speaker"]) == split]
    return [Clip(SPEECH / folders[name] / r["audio_filepath"], r["text"], r["speaker"], name) for r in rows]


def sample(items: list[Clip], n: int | None) -> list[Clip]:
    """Every k-th clip so that at most `n` remain, spread over all speakers."""
    if not n or len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]
