"""Time and date from the real clock, in the session's time zone."""

from __future__ import annotations

from rivulet.dialog.parse import say_clock
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills.base import IntentSpec, Outcome, Skill, TurnContext


class TimeDate(Skill):
    name = "time_date"
    intents = {"GetTime": IntentSpec(), "GetDate": IntentSpec()}

    async def act(self, intent: str, slots: dict[str, str], ctx: TurnContext) -> Outcome:
        now = ctx.now
        if intent == "GetTime":
            said = say_clock(now.hour, now.minute)
            return Outcome(f"It's {said}.", "time.tell", {"time": now.strftime("%H:%M"), "tz": str(ctx.tz)})
        said = now.strftime("%A, %B ") + f"{now.day}, {now.year}"
        return Outcome(f"Today is {said}.", "date.tell", {"date": now.date().isoformat(), "tz": str(ctx.tz)})


def create(settings: DialogSettings) -> Skill:
    return TimeDate()
