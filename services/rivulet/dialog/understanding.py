"""What the NLU understood in one utterance, and how the policy reads a frame's slots from it: which
of a label's spans a slot takes (`SlotSpec.spans`), the other slots that help read it
(`SlotSpec.read_with`), and whether the utterance is a bare answer (slot values only) or a request.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources

from rivulet.dialog.parse import words
from rivulet.dialog.skills.base import IntentSpec, SlotSpec, TurnContext

_ANSWERS = tomllib.loads(resources.files("rivulet.dialog").joinpath("data/answers.toml").read_text())
CONNECTING = frozenset(_ANSWERS["connecting"])


@dataclass
class NluSlot:
    name: str
    value: str
    score: float = 1.0


@dataclass
class NluResult:
    intent: str
    score: float
    slots: list[NluSlot] = field(default_factory=list)

    def values(self, name: str) -> list[str]:
        """Every span labelled `name`, in the order said."""
        return [slot.value for slot in self.slots if slot.name == name]

    def slot_map(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for slot in self.slots:
            found.setdefault(slot.name, slot.value)
        return found


def as_said(text: str, values: list[str]) -> str:
    """The stretch of `text` from the first of `values` to the last, as said ("tomorrow at seven" for
    the spans "tomorrow" and "seven"); the values joined by spaces where they are not found in order."""
    lowered, start, end = text.lower(), -1, 0
    for value in values:
        at = lowered.find(value.lower(), end)
        if at < 0:
            return " ".join(values)
        start = at if start < 0 else start
        end = at + len(value)
    return text[start:end] if start >= 0 else " ".join(values)


def is_bare_answer(text: str, nlu: NluResult) -> bool:
    """True when every word of `text` is in one of the NLU's slot values or is a connecting word
    (data/answers.toml): a value said alone, with nothing that asks for a task."""
    in_slots = {word for slot in nlu.slots for word in words(slot.value)}
    return all(word in in_slots or word in CONNECTING for word in words(text))


def read_slots(spec: IntentSpec, nlu: NluResult, ctx: TurnContext, text: str) -> dict[str, str]:
    """The frame slots the NLU found in this utterance (`text`), normalized (unparseable values
    dropped); a slot's `spans` says which of its label's spans it reads."""
    heard = nlu.slot_map()
    found: dict[str, str] = {}
    for slot in [*spec.required, *spec.optional]:
        for label in slot.all_labels:
            if label not in heard:
                continue
            if slot.spans == "each":  # "eggs and milk": two items
                read = (_read(slot, value, nlu, ctx) for value in nlu.values(label))
                value = "|".join(dict.fromkeys(v for v in read if v))
            else:
                said = as_said(text, nlu.values(label)) if slot.spans == "whole" else heard[label]
                value = _read(slot, said, nlu, ctx)
            if value:
                found[slot.name] = value
                break
    return found


def _read(slot: SlotSpec, said: str, nlu: NluResult, ctx: TurnContext) -> str | None:
    """One heard value of `slot`, normalized by its `parse` (given its `read_with` words)."""
    if not slot.parse:
        return said
    if slot.read_with and (with_it := _said_with(nlu, slot.read_with)):
        said = f"{said}\n{with_it}"  # SlotSpec.read_with
    return slot.parse(said, ctx)


def _said_with(nlu: NluResult, read_with: tuple[str, ...]) -> str:
    """The words of the `read_with` slots, in the order said."""
    return " ".join(slot.value for slot in nlu.slots if slot.name in read_with)
