"""Restaurant booking: party size, time and place are required, and the booking is confirmed first."""

from __future__ import annotations

import re
import uuid

from rivulet.dialog import hints
from rivulet.dialog.parse import parse_number
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills.base import IntentSpec, Outcome, Skill, SlotSpec, TurnContext

_PLACE_LABELS = ("city", "state", "country", "restaurant_name", "poi", "geographic_poi", "spatial_relation")


def _party(text: str, ctx: TurnContext) -> str | None:
    value = parse_number(text)
    if value is None and re.search(r"\b(me and|and i|and me)\b", text.lower()):
        value = 2
    return str(value) if value and 1 <= value <= 50 else None


def _strip(prefixes: str) -> object:
    pattern = re.compile(rf"^(?:(?:{prefixes})\s+)+", re.I)

    def parse(text: str, ctx: TurnContext) -> str | None:
        value = pattern.sub("", text.strip().lower()).strip(" .,!?")
        return value or None

    return parse


def _confirm(slots: dict[str, str], ctx: TurnContext) -> str:
    what = slots.get("restaurant_type") or "table"
    if what in ("restaurant", "table"):
        what = "table"
    extra = f" ({slots['cuisine']})" if slots.get("cuisine") else ""
    people = "person" if slots["party_size"] == "1" else "people"
    return f"Book a {what}{extra} for {slots['party_size']} {people} {slots['time']} in {slots['place']}?"


class Restaurant(Skill):
    name = "restaurant"
    intents = {
        "BookRestaurant": IntentSpec(
            required=[
                SlotSpec(
                    "party_size",
                    "For how many people?",
                    labels=("party_size_number", "party_size_description"),
                    parse=_party,
                    hints=hints.PARTY,
                ),
                SlotSpec(
                    "time",
                    "For when?",
                    labels=("timeRange",),
                    parse=_strip("for|at|on"),
                    spans="whole",  # "tomorrow" and "seven" of "tomorrow at seven"
                    hints=(*hints.DAYS_AHEAD, *hints.CLOCK),
                ),
                SlotSpec(
                    "place",
                    "Where would you like to eat?",
                    labels=_PLACE_LABELS,
                    parse=_strip("in|at|near"),
                    hints=hints.CITIES,
                ),
            ],
            optional=[
                SlotSpec(n, "") for n in ("restaurant_type", "cuisine", "served_dish", "facility", "sort")
            ],
            confirm=_confirm,
            date_slot="time",
            place_slot="place",
            describe="booking a table",
        )
    }

    async def act(self, intent: str, slots: dict[str, str], ctx: TurnContext) -> Outcome:
        bookings = await ctx.read_data("bookings", [])
        booking = {"id": uuid.uuid4().hex[:8], **{k: slots[k] for k in ("party_size", "time", "place")}}
        for key in ("restaurant_type", "cuisine", "served_dish", "facility"):
            if slots.get(key):
                booking[key] = slots[key]
        bookings.append(booking)
        ctx.write_data("bookings", bookings)
        people = "person" if slots["party_size"] == "1" else "people"
        return Outcome(
            f"Done: a table for {slots['party_size']} {people} {slots['time']} in {slots['place']}. "
            f"Your booking number is {booking['id']}.",
            "restaurant.book",
            {k: v for k, v in booking.items() if k != "id"},
        )


def create(settings: DialogSettings) -> Skill:
    return Restaurant()
