"""Lights and other switchable devices: on/off and brightness per room, state in Redis."""

from __future__ import annotations

import re

from rivulet.dialog import hints
from rivulet.dialog.parse import parse_percent, say_list
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills.base import IntentSpec, Outcome, Skill, SlotSpec, TurnContext

_FILLER = re.compile(r"^(?:(?:in|on|at|for|to|into|inside)\s+)?(?:the\s+|my\s+|our\s+)?", re.I)
_TRAILING = re.compile(r"\s+(?:please|room lights?|lights?|lamps?)$", re.I)


def _room(text: str, ctx: TurnContext) -> str | None:
    room = _TRAILING.sub("", _FILLER.sub("", text.strip().lower())).strip(" .,!?")
    return room if room and len(room.split()) <= 3 and room not in ("it", "that", "them") else None


def _device(text: str, ctx: TurnContext) -> str | None:
    device = text.strip().lower()
    return re.sub(r"(light|lamp|bulb|spotlight)s$", r"\1", device) or None


def _percent(text: str, ctx: TurnContext) -> str | None:
    value = parse_percent(text)
    return str(value) if value is not None else None


ROOMS = ("kitchen", "bedroom", "living room", "bathroom", "office", "hallway", "dining room", "garage",
         "basement", "kids room", "guest room", "porch", "garden", "all")  # fmt: skip
ROOM = SlotSpec("room", "Which room?", parse=_room, hints=ROOMS, spans="each")  # "the kitchen and the hall"
DEVICE = SlotSpec("device", "", parse=_device, default="light")


class Lights(Skill):
    name = "lights"
    intents = {
        "LightsOn": IntentSpec(required=[ROOM], optional=[DEVICE], describe="turning on a light"),
        "LightsOff": IntentSpec(required=[ROOM], optional=[DEVICE], describe="turning off a light"),
        "SetBrightness": IntentSpec(
            required=[
                ROOM,
                SlotSpec("brightness", "How bright, in percent?", parse=_percent, hints=hints.PERCENT),
            ],
            optional=[DEVICE],
            describe="setting the brightness",
        ),
    }

    async def act(self, intent: str, slots: dict[str, str], ctx: TurnContext) -> Outcome:
        devices = await ctx.read_data("devices", {})
        rooms, device = slots["room"].split("|"), slots.get("device") or "light"  # every room named
        for room in rooms:
            state = devices.get(f"{room}/{device}", {"on": False, "brightness": 100})
            state["on"] = intent != "LightsOff"
            if intent == "SetBrightness":
                state["brightness"] = int(slots["brightness"])
            devices[f"{room}/{device}"] = state
        ctx.write_data("devices", devices)
        where = f"{say_list(rooms)} {device}{'s' if len(rooms) > 1 else ''}"
        if intent == "SetBrightness":
            text = f"Set the {where} to {slots['brightness']} percent."
        else:
            text = f"Turned {'off' if intent == 'LightsOff' else 'on'} the {where}."
        action = {"LightsOn": "lights.on", "LightsOff": "lights.off"}.get(intent, "lights.brightness")
        result = {"room": "|".join(rooms), "device": device, "on": str(intent != "LightsOff").lower()}
        if intent == "SetBrightness":
            result["brightness"] = slots["brightness"]
        return Outcome(text, action, result)


def create(settings: DialogSettings) -> Skill:
    return Lights()
