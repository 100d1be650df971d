"""Named lists (shopping, to-do, ...): add, remove, read. Items live in Redis per session."""

from __future__ import annotations

import re

from rivulet.dialog.parse import say_list
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills.base import IntentSpec, Outcome, Skill, SlotSpec, TurnContext

_LEAD = re.compile(r"^(?:(?:please\s+)?(?:add|put|remove|delete|take|cross off)\s+)?(?:some\s+)?", re.I)


def _item(text: str, ctx: TurnContext) -> str | None:
    item = _LEAD.sub("", text.replace("|", " ").strip().lower()).strip(" .,!?")  # "|" separates items
    item = re.sub(r"\s+(?:to|on|from|off)\s+(?:my|the)\s+(?:\w+\s+)?list$", "", item)
    return item or None


def _list_name(text: str, ctx: TurnContext) -> str | None:
    name = re.sub(r"^(?:my|the)\s+|\s+list$", "", text.strip().lower()).strip()
    return {"todo": "to do", "to-do": "to do", "groceries": "grocery"}.get(name, name) or None


LIST = SlotSpec("list_name", "", parse=_list_name, default="shopping")


class Lists(Skill):
    name = "lists"
    intents = {
        "ListAdd": IntentSpec(
            required=[SlotSpec("item", "What should I add?", parse=_item, spans="each")],
            optional=[LIST],
            describe="adding to a list",
        ),
        "ListRemove": IntentSpec(
            required=[SlotSpec("item", "What should I remove?", parse=_item, spans="each")],
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
                f"Your {name} list has {say_list(items)}.",
                "list.read",
                {"list_name": name, "count": str(len(items)), "items": "|".join(items)},
            )
        said = slots["item"].split("|")  # every item named ("eggs and milk"; SlotSpec spans "each")
        if intent == "ListAdd":
            new = [item for item in said if item not in items]  # read_slots names each item once
            there = [item for item in said if item in items]
            if new:
                lists[name] = items + new
                ctx.write_data("lists", lists)
            reply = f"Added {say_list(new)} to your {name} list." if new else ""
            if there:
                verb = "is" if len(there) == 1 else "are"
                where = "it" if new else f"your {name} list"
                reply += f" {say_list(there).capitalize()} {verb} already on {where}."
            return Outcome(reply.strip(), "list.add", {"list_name": name, "item": "|".join(said)})
        found = [item for item in said if item in items]
        missing = [item for item in said if item not in items]
        if not found:
            return Outcome(
                f"I couldn't find {say_list(missing)} on your {name} list.",
                "list.missing",
                {"list_name": name, "item": "|".join(missing)},
            )
        lists[name] = [item for item in items if item not in found]
        ctx.write_data("lists", lists)
        reply = f"Removed {say_list(found)} from your {name} list."
        if missing:
            reply += f" I couldn't find {say_list(missing)} on it."
        return Outcome(reply, "list.remove", {"list_name": name, "item": "|".join(found)})

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
