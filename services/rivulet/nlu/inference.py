"""Calls an intent/slot model on Triton and decodes its outputs.

Triton I/O contract of an intent/slot model (see models/intent_assistant/config.pbtxt):
input `TEXT` (BYTES, [1]); outputs `INTENT_LABELS`/`INTENT_SCORES` (all intents, best first),
`SLOT_LABELS`/`SLOT_SCORES` (one per slot span) and `SLOT_SPANS` ([n, 2] character offsets
[start, end) into TEXT). Each text is its own Triton request, so Triton's dynamic batcher
batches texts from concurrent RPCs (and from one multi-text RPC) together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rivulet.core.triton import TritonClient

OUTPUTS = ("INTENT_LABELS", "INTENT_SCORES", "SLOT_LABELS", "SLOT_SCORES", "SLOT_SPANS")


@dataclass(frozen=True)
class Slot:
    label: str
    score: float
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Understanding:
    """The model's reading of one text: intents best first, then slot spans in text order."""

    intents: list[tuple[str, float]]
    slots: list[Slot]

    @property
    def intent(self) -> tuple[str, float]:
        return self.intents[0]


def _strings(array: np.ndarray) -> list[str]:
    return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in array.reshape(-1)]


def decode(text: str, outputs: dict[str, np.ndarray]) -> Understanding:
    labels = _strings(outputs["INTENT_LABELS"])
    scores = outputs["INTENT_SCORES"].reshape(-1).tolist()
    slot_labels = _strings(outputs["SLOT_LABELS"])
    slot_scores = outputs["SLOT_SCORES"].reshape(-1).tolist()
    spans = outputs["SLOT_SPANS"].reshape(-1, 2).tolist()
    slots = [
        Slot(label=label, score=float(score), start=int(start), end=int(end), text=text[start:end])
        for label, score, (start, end) in zip(slot_labels, slot_scores, spans, strict=True)
    ]
    return Understanding(intents=list(zip(labels, map(float, scores), strict=True)), slots=slots)


async def understand(
    triton: TritonClient, model: str, texts: Sequence[str], request_id: str = ""
) -> list[Understanding]:
    """Run `model` on every text concurrently; results in the order of `texts`."""

    async def one(text: str) -> Understanding:
        array = np.array([[text.encode("utf-8")]], dtype=object)
        outputs = await triton.infer(model, {"TEXT": array}, OUTPUTS, request_id=request_id)
        return decode(text, outputs)

    return list(await asyncio.gather(*(one(t) for t in texts)))
