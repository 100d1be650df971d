"""Named lists (shopping, to-do, ...): add, remove, read. Items live in Redis per session."""

from __future__ import annotations

import re

from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills.base import IntentSpec, Outcome, Skill, SlotSpec, TurnContext

_LEAD = re.compile(r"^(?:(?:please\s+)?(?:add|put|remove|delete|take|cross off)\s+)?(?:some\s+)?", re.I)


def _item(text: str, ctx: TurnContext) -> str | None:
    item = _LEAD.sub("", text.strip().lower()).strip(" .,!?")
    item = re.sub(r"\s+(?:to|on|from|off)\s+(?:my|the)\s+(?:\w+\s+)?list$", "", item)
    return item or None


def _list_name(text: str, ctx: TurnContext) -> str | None:
    name = re.sub(r"^(?:my|the)\s+|\s+list$", "", text.strip().lower()).strip()
    return {"todo": "to do", "to-do": "to do", "groceries": "grocery"}.get(name, name) or None


LIST = SlotSpec("list_name", "", parse=_list_name, default="shopping")


def _say(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class Lists(Skill):
    name = "lists"
    intents = {
        "ListAdd": IntentSpec(
            required=[SlotSpec("item", "What should I add?", parse=_item)],
            optional=[LIST],
            describe="adding to a list",
        ),
        "ListRemove": IntentSpec(
            required=[SlotSpec("item", "What should I remove?", parse=_item)],
            optional=[LIST],
            describe="removing from a list",
        ),
        "ListRead": IntentSpec(optional=[LIST]),
    }

    async def act(self, intent: str, slots: dict[str, str], ctx: TurnContext) -> Outcome:
        lists = await ctx.read_data("lists", {})
        name = slots.get("list_name") or "shopping"
        items: list[str] = lists.get(name, [])
        if intent == "ListRead":
            if not items:
                return Outcome(f"Your {name} list is empty.", "list.read", {"list_name": name, "count": "0"})
            return Outcome(
                f"Your {name} list has {_say(items)}.",
                "list.read",
                {"list_name": name, "count": str(len(items)), "items": "|".join(items)},
            )
        item = slots["item"]
        if intent == "ListAdd":
            if item in items:
                return Outcome(
                    f"{item.capitalize()} is already on your {name} list.",
                    "list.add",
                    {"list_name": name, "item": item},
                )
            items.append(item)
            lists[name] = items
            ctx.write_data("lists", lists)
            return Outcome(
                f"Added {item} to your {name} list.", "list.add", {"list_name": name, "item": item}
            )
        if item not in items:
            return Outcome(
                f"I couldn't find {item} on your {name} list.",
                "list.missing",
                {"list_name": name, "item": item},
            )
        items.remove(item)
        lists[name] = items
        ctx.write_data("lists", lists)
        return Outcome(
            f"Removed {item} from your {name} list.", "list.remove", {"list_name": name, "item": item}
        )

    async def known_answers(
        self, intent: str, slot: str, slots: dict[str, str], ctx: TurnContext
    ) -> tuple[str, ...]:
        lists = await ctx.read_data("lists", {})
        if slot == "item" and intent == "ListRemove":  # "What should I remove?": what is on the list
            return tuple(lists.get(slots.get("list_name") or "shopping", []))
        if slot == "list_name":
            return tuple(lists)
        return ()


def create(settings: DialogSettings) -> Skill:
    return Lists()
