"""Turning spoken slot values into values a skill can act on: numbers, durations, clock times, dates.

Transcripts spell numbers as words ("twenty five minutes", "half past six"), typed text uses digits;
both are accepted. Every parser returns None when the text does not hold such a value, so the
policy can ask again instead of guessing.
"""

from __future__ import annotations

import datetime as dt
import re

_UNITS = {
    "zero": 0, "oh": 0, "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "couple": 2, "few": 3, "dozen": 12,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90}  # fmt: skip
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
    "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december"]  # fmt: skip
_UNIT_SECONDS = {"second": 1, "sec": 1, "minute": 60, "min": 60, "hour": 3600, "hr": 3600, "day": 86400}


def number_words(low: int, high: int) -> tuple[str, ...]:
    """The spelled numbers from `low` to `high` (at most 19): "one", "two", ..."""
    spelled = {v: w for w, v in _UNITS.items() if w not in ("oh", "a", "an", "couple", "few", "dozen")}
    return tuple(spelled[n] for n in range(low, high + 1))


def words(text: str) -> list[str]:
    """Lower-case words; digits stay together, "7:30" splits into "7", ":", "30"."""
    return re.findall(r"\d+(?:\.\d+)?|[a-z]+(?:'[a-z]+)?|:", text.lower().replace("-", " "))


def _number_at(tokens: list[str], i: int) -> tuple[float, int] | None:
    """The number starting at tokens[i] and how many tokens it spans."""
    if i >= len(tokens):
        return None
    tok = tokens[i]
    if re.fullmatch(r"\d+(?:\.\d+)?", tok):
        return float(tok), 1
    if tok in _TENS:
        value, used = _TENS[tok], 1
        if i + 1 < len(tokens) and tokens[i + 1] in _UNITS and 0 < _UNITS[tokens[i + 1]] < 10:
            if tokens[i + 1] not in ("a", "an", "couple", "few"):
                value, used = value + _UNITS[tokens[i + 1]], 2
        return float(value), used
    if tok in _UNITS:
        if tok in ("couple", "few", "dozen"):
            return float(_UNITS[tok]), 1
        value = float(_UNITS[tok])
        if tok in ("a", "an") and i + 1 < len(tokens) and tokens[i + 1] in ("couple", "few", "dozen"):
            return float(_UNITS[tokens[i + 1]]), 2
        if i + 1 < len(tokens) and tokens[i + 1] == "hundred":
            return value * 100, 2
        return value, 1
    if tok == "half":
        return 0.5, 1
    if tok == "quarter":
        return 0.25, 1
    return None


def parse_number(text: str) -> int | None:
    """The first whole number in `text` ("four people" -> 4, "party of 12" -> 12)."""
    tokens = [t for t in words(text) if t not in ("a", "an")]
    for i in range(len(tokens)):
        found = _number_at(tokens, i)
        if found and found[0] >= 1 and found[0] == int(found[0]):
            return int(found[0])
    return None


def parse_duration(text: str) -> int | None:
    """Seconds in a spoken duration: "five minutes", "an hour and a half", "2 hours 30 minutes",
    "half an hour", "ninety seconds", "1.5 hours". None when there is no unit."""
    tokens = words(text)
    total = 0.0
    pending: float | None = None
    found_unit = False
    i = 0
    while i < len(tokens):
        tok = tokens[i].rstrip("s") if tokens[i] not in ("hours", "minutes", "seconds") else tokens[i][:-1]
        unit = next((u for u in _UNIT_SECONDS if tok == u), None)
        if unit:
            found_unit = True
            total += (pending if pending is not None else 1.0) * _UNIT_SECONDS[unit]
            pending = None
            # "an hour and a half" / "two minutes and a half"
            if tokens[i + 1 : i + 4] == ["and", "a", "half"]:
                total += 0.5 * _UNIT_SECONDS[unit]
                i += 3
            i += 1
            continue
        if tokens[i] == "half" and tokens[i + 1 : i + 2] in (["an"], ["a"]):
            pending = 0.5
            i += 2
            continue
        if tokens[i] == "and" and tokens[i + 1 : i + 3] == ["a", "half"] and pending is not None:
            pending += 0.5
            i += 3
            continue
        number = _number_at(tokens, i)
        if number:
            pending = number[0] if pending is None or pending >= 1 else pending + number[0]
            i += number[1]
            continue
        i += 1
    if not found_unit or total <= 0:
        return None
    return round(total)


def say_duration(seconds: int) -> str:
    """320 -> "5 minutes and 20 seconds"."""
    parts = []
    for name, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n} {name}{'s' if n != 1 else ''}")
    return " and ".join(parts) if parts else "0 seconds"


def _day_half(tokens: list[str]) -> tuple[bool, bool]:
    """(pm, am): whether the words say afternoon or evening, or morning."""
    pm = any(t in tokens for t in ("pm", "evening", "night", "afternoon", "tonight")) or "p" in tokens
    am = any(t in tokens for t in ("am", "morning")) or ("a" in tokens and "m" in tokens)
    return pm, am


def parse_clock(text: str, context: str = "") -> tuple[int, int] | None:
    """(hour 0-23, minute) in "7 am", "7:30 pm", "seven thirty", "half past six", "quarter to eight",
    "noon", "midnight", "six in the evening". A bare "7" is taken as given (07:00). `context`: other
    words said with the time (its date: "tonight", "tomorrow morning"), read only for am or pm."""
    tokens = words(text)
    if "noon" in tokens or "midday" in tokens:
        return 12, 0
    if "midnight" in tokens:
        return 0, 0
    pm, am = _day_half(tokens)
    if not (pm or am):  # the time's own "am" / "pm" wins over its context's
        pm, am = _day_half(words(context))
    hour = minute = None
    for i, tok in enumerate(tokens):
        if tok in ("past", "after", "to", "before") and i > 0 and i + 1 < len(tokens):
            before = _number_at(tokens, i - 1) if tokens[i - 1] not in ("half", "quarter") else None
            offset = {"half": 30, "quarter": 15}.get(tokens[i - 1]) or (int(before[0]) if before else None)
            target = _number_at(tokens, i + 1)
            if offset is not None and target and 1 <= target[0] <= 12:
                hour = int(target[0])
                if tok in ("past", "after"):
                    minute = offset
                else:
                    hour, minute = (hour - 1) % 12 or 12, 60 - offset
                break
    if hour is None:
        for i, tok in enumerate(tokens):
            number = _number_at(tokens, i) if tok not in ("a", "an", "half", "quarter") else None
            if not number:
                continue
            value, used = number
            if tok.isdigit() and len(tok) in (3, 4) and not tokens[i + 1 : i + 2] == [":"]:
                value, minute = divmod(int(tok), 100)
                hour = int(value)
            else:
                hour = int(value)
                rest = tokens[i + used :]
                if rest[:1] == [":"] and len(rest) > 1 and rest[1].isdigit():
                    minute = int(rest[1])
                elif rest and _number_at(rest, 0) and rest[0] not in ("a", "an", "half", "quarter"):
                    minute = int(_number_at(rest, 0)[0])
                elif rest[:2] == ["o", "clock"] or rest[:1] == ["oclock"]:
                    minute = 0
            break
    if hour is None or hour > 23 or (minute or 0) > 59:
        return None
    minute = minute or 0
    if pm and hour < 12:
        hour += 12
    if am and hour == 12:
        hour = 0
    return hour, minute


def say_list(items: list[str]) -> str:
    """ "milk", "milk and eggs", "milk, eggs and bread"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def say_clock(hour: int, minute: int) -> str:
    suffix = "AM" if hour < 12 else "PM"
    h12 = hour % 12 or 12
    return f"{h12}:{minute:02d} {suffix}" if minute else f"{h12} {suffix}"


def parse_date(text: str, today: dt.date) -> dt.date | None:
    """The day meant by "today", "tonight", "tomorrow", "the day after tomorrow", "monday",
    "next friday", "this weekend", "in 3 days", "june 5th", "the 21st"."""
    tokens = words(text)
    joined = " ".join(tokens)
    if "day after tomorrow" in joined:
        return today + dt.timedelta(days=2)
    if "tomorrow" in tokens:
        return today + dt.timedelta(days=1)
    if "yesterday" in tokens:
        return today - dt.timedelta(days=1)
    if any(t in tokens for t in ("today", "tonight", "now", "currently", "right")):
        return today
    if "weekend" in tokens:
        return today + dt.timedelta(days=(5 - today.weekday()) % 7)
    match = re.search(r"in (\w+(?: \w+)?) days?", joined)
    if match and parse_number(match.group(1)):
        return today + dt.timedelta(days=parse_number(match.group(1)))
    for i, day in enumerate(DAYS):
        if day in tokens:
            ahead = (i - today.weekday()) % 7
            if "next" in tokens and ahead == 0:
                ahead = 7
            return today + dt.timedelta(days=ahead)
    for m, month in enumerate(_MONTHS, start=1):
        if month in tokens:
            rest = tokens[tokens.index(month) + 1 :] + tokens[: tokens.index(month)]
            day = _day_of_month(rest)
            if day:
                try:
                    date = dt.date(today.year, m, day)
                except ValueError:
                    return None
                return date if date >= today else date.replace(year=today.year + 1)
    day = _day_of_month(tokens)
    if day and ("the" in tokens or any(t.endswith(("st", "nd", "rd", "th")) for t in tokens)):
        try:
            date = today.replace(day=day)
        except ValueError:
            return None
        if date < today:
            date = (date.replace(day=1) + dt.timedelta(days=32)).replace(day=day)
        return date
    return None


def _day_of_month(tokens: list[str]) -> int | None:
    for i in range(len(tokens) - 1):  # "twenty first" before "first"
        if tokens[i] in _TENS and tokens[i + 1] in _ORDINALS and _ORDINALS[tokens[i + 1]] < 10:
            return _TENS[tokens[i]] + _ORDINALS[tokens[i + 1]]
    for tok in tokens:
        match = re.fullmatch(r"(\d{1,2})(st|nd|rd|th)?", tok)
        if match and 1 <= int(match.group(1)) <= 31:
            return int(match.group(1))
        if tok in _ORDINALS:
            return _ORDINALS[tok]
    return None


def say_date(date: dt.date, today: dt.date) -> str:
    if date == today:
        return "today"
    if date == today + dt.timedelta(days=1):
        return "tomorrow"
    if 0 < (date - today).days < 7:
        return "on " + date.strftime("%A")
    return "on " + date.strftime("%A, %B ") + str(date.day)


def parse_percent(text: str) -> int | None:
    """Brightness in percent: "40 percent", "forty %", "half" (50), "full"/"max" (100), "level 3" (30)."""
    tokens = words(text)
    named = {"full": 100, "max": 100, "maximum": 100, "bright": 100, "half": 50, "dim": 20, "low": 20,
             "minimum": 5, "min": 5}  # fmt: skip
    if "level" in tokens:
        level = parse_number(" ".join(tokens[tokens.index("level") + 1 :]))
        if level is not None and 0 <= level <= 10:
            return level * 10
    number = parse_number(text.replace("%", " percent"))
    if number is not None and 0 <= number <= 100:
        return number
    for tok in tokens:
        if tok in named:
            return named[tok]
    return None
