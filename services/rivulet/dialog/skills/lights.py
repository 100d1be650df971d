"""Lights and other switchable devices: on/off and brightness per room, state in Redis."""

from __future__ import annotations

import re

from rivulet.dialog import hints
from rivulet.dialog.parse import parse_percent
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
ROOM = SlotSpec("room", "Which room?", parse=_room, hints=ROOMS)
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
        room, device = slots["room"], slots.get("device") or "light"
        key = f"{room}/{device}"
        state = devices.get(key, {"on": False, "brightness": 100})
        if intent == "LightsOn":
            state["on"] = True
            text = f"Turned on the {room} {device}."
        elif intent == "LightsOff":
            state["on"] = False
            text = f"Turned off the {room} {device}."
        else:
            state["on"], state["brightness"] = True, int(slots["brightness"])
            text = f"Set the {room} {device} to {state['brightness']} percent."
        devices[key] = state
        ctx.write_data("devices", devices)
        action = {"LightsOn": "lights.on", "LightsOff": "lights.off"}.get(intent, "lights.brightness")
        result = {"room": room, "device": device, "on": str(state["on"]).lower()}
        if intent == "SetBrightness":
            result["brightness"] = str(state["brightness"])
        return Outcome(text, action, result)


def create(settings: DialogSettings) -> Skill:
    return Lights()
