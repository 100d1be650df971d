"""Timers and alarms, kept in Redis: a sorted set of every session's timers by due time (the scheduler
fires them, see `rivulet.dialog.scheduler`) plus a per-session hash for listing and cancelling."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from rivulet.dialog import hints
from rivulet.dialog.parse import parse_clock, parse_date, parse_duration, say_clock, say_date, say_duration
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills.base import IntentSpec, Outcome, Skill, SlotSpec, TurnContext
from rivulet.dialog.state import Keys
from rivulet.dialog.store import Event


def _duration(text: str, ctx: TurnContext) -> str | None:
    seconds = parse_duration(text)
    return str(seconds) if seconds and seconds <= 24 * 3600 else None


def _clock(text: str, ctx: TurnContext) -> str | None:
    found = parse_clock(text)
    return f"{found[0]:02d}:{found[1]:02d}" if found else None


def _date(text: str, ctx: TurnContext) -> str | None:
    found = parse_date(text, ctx.today)
    return found.isoformat() if found else None


class Timers(Skill):
    name = "timers"
    intents = {
        "SetTimer": IntentSpec(
            required=[SlotSpec("duration", "For how long?", parse=_duration, hints=hints.DURATION)],
            describe="setting a timer",
        ),
        "CancelTimer": IntentSpec(optional=[SlotSpec("duration", "", parse=_duration)]),
        "SetAlarm": IntentSpec(
            required=[SlotSpec("time", "For what time?", parse=_clock, hints=hints.CLOCK)],
            optional=[SlotSpec("date", "", parse=_date)],
            describe="setting an alarm",
        ),
    }

    async def act(self, intent: str, slots: dict[str, str], ctx: TurnContext) -> Outcome:
        if intent == "SetTimer":
            seconds = int(slots["duration"])
            due = ctx.now + dt.timedelta(seconds=seconds)
            label = f"{say_duration(seconds)} timer"
            self._add(ctx, "timer", label, due, {"duration_s": seconds})
            return Outcome(
                f"Timer set for {say_duration(seconds)}.", "timer.set", {"duration_s": str(seconds)}
            )
        if intent == "SetAlarm":
            hour, minute = (int(x) for x in slots["time"].split(":"))
            day = dt.date.fromisoformat(slots["date"]) if slots.get("date") else ctx.today
            due = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ctx.tz)
            if due <= ctx.now and not slots.get("date"):
                due += dt.timedelta(days=1)
            if due <= ctx.now:
                return Outcome(
                    f"{say_clock(hour, minute)} {say_date(due.date(), ctx.today)} has already passed.",
                    "alarm.past",
                    done=True,
                )
            label = f"alarm for {say_clock(hour, minute)}"
            self._add(ctx, "alarm", label, due, {"time": slots["time"]})
            when = f"{say_clock(hour, minute)} {say_date(due.date(), ctx.today)}"
            return Outcome(
                f"Alarm set for {when}.", "alarm.set", {"time": slots["time"], "date": due.date().isoformat()}
            )
        return await self._cancel(slots, ctx)

    def _add(self, ctx: TurnContext, kind: str, label: str, due: dt.datetime, extra: dict) -> None:
        timer_id = uuid.uuid4().hex[:12]
        member = json.dumps(
            {
                "id": timer_id,
                "session": ctx.session_id,
                "kind": kind,
                "label": label,
                "due": due.timestamp(),
                "turn": ctx.turn_id,
                **extra,
            },
            sort_keys=True,
        )
        ctx.tx.zadd(Keys.TIMERS, {member: due.timestamp()})
        ctx.tx.hset(ctx.keys.timers, timer_id, member)
        ctx.events.append(Event(f"{kind}_set", json.loads(member), ctx.turn_id))

    async def _cancel(self, slots: dict[str, str], ctx: TurnContext) -> Outcome:
        pending = {k.decode(): v for k, v in (await ctx.redis.hgetall(ctx.keys.timers)).items()}
        timers = {k: v for k, v in pending.items() if json.loads(v)["kind"] == "timer"}
        if slots.get("duration"):
            timers = {
                k: v for k, v in timers.items() if json.loads(v).get("duration_s") == int(slots["duration"])
            }
        if not timers:
            return Outcome(
                "You have no timers running."
                if not slots.get("duration")
                else f"You have no {say_duration(int(slots['duration']))} timer.",
                "timer.none",
            )
        ctx.tx.zrem(Keys.TIMERS, *timers.values())
        ctx.tx.hdel(ctx.keys.timers, *timers.keys())
        ctx.events.append(Event("timer_cancelled", {"ids": sorted(timers)}, ctx.turn_id))
        if len(timers) == 1:
            label = json.loads(next(iter(timers.values())))["label"]
            return Outcome(f"Cancelled your {label}.", "timer.cancel", {"count": "1"})
        return Outcome(f"Cancelled {len(timers)} timers.", "timer.cancel", {"count": str(len(timers))})


def create(settings: DialogSettings) -> Skill:
    return Timers()
