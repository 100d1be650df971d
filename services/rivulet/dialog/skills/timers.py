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
    value, _, said_with = text.partition("\n")  # the time, then its date's words (SlotSpec.read_with)
    found = parse_clock(value, said_with)
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
        "CancelAlarm": IntentSpec(
            optional=[
                SlotSpec("time", "", parse=_clock, read_with=("date",), spans="whole"),
                SlotSpec("date", "", parse=_date),
            ]
        ),
        "SetAlarm": IntentSpec(
            required=[
                SlotSpec(
                    "time",
                    "For what time?",
                    parse=_clock,
                    hints=hints.CLOCK,
                    read_with=("date",),
                    spans="whole",  # "9" and "evening", "in the morning" and "six fifteen"
                )
            ],
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
        if intent == "CancelAlarm":
            return await self._cancel_alarms(slots, ctx)
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

    async def _pending(self, ctx: TurnContext, kind: str) -> dict[str, str]:
        """This session's timers of one kind ("timer" or "alarm"): id -> stored member."""
        pending = {k.decode(): v for k, v in (await ctx.redis.hgetall(ctx.keys.timers)).items()}
        return {k: v for k, v in pending.items() if json.loads(v)["kind"] == kind}

    def _remove(self, ctx: TurnContext, kind: str, found: dict[str, str]) -> None:
        ctx.tx.zrem(Keys.TIMERS, *found.values())
        ctx.tx.hdel(ctx.keys.timers, *found.keys())
        ctx.events.append(Event(f"{kind}_cancelled", {"ids": sorted(found)}, ctx.turn_id))

    async def _cancel(self, slots: dict[str, str], ctx: TurnContext) -> Outcome:
        timers = await self._pending(ctx, "timer")
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
        self._remove(ctx, "timer", timers)
        if len(timers) == 1:
            label = json.loads(next(iter(timers.values())))["label"]
            return Outcome(f"Cancelled your {label}.", "timer.cancel", {"count": "1"})
        return Outcome(f"Cancelled {len(timers)} timers.", "timer.cancel", {"count": str(len(timers))})

    async def _cancel_alarms(self, slots: dict[str, str], ctx: TurnContext) -> Outcome:
        """Every alarm, or those at the time and/or on the date named."""
        alarms = await self._pending(ctx, "alarm")
        for name in ("time", "date"):
            if slots.get(name):
                alarms = {k: v for k, v in alarms.items() if self._alarm_field(v, name, ctx) == slots[name]}
        if not alarms:
            return Outcome("You have no such alarm." if slots else "You have no alarms set.", "alarm.none")
        self._remove(ctx, "alarm", alarms)
        if len(alarms) == 1:
            label = json.loads(next(iter(alarms.values())))["label"]
            return Outcome(f"Cancelled your {label}.", "alarm.cancel", {"count": "1"})
        return Outcome(f"Cancelled {len(alarms)} alarms.", "alarm.cancel", {"count": str(len(alarms))})

    @staticmethod
    def _alarm_field(member: str, name: str, ctx: TurnContext) -> str:
        alarm = json.loads(member)
        if name == "time":
            return alarm.get("time", "")
        return dt.datetime.fromtimestamp(alarm["due"], ctx.tz).date().isoformat()


def create(settings: DialogSettings) -> Skill:
    return Timers()
