"""Spoken slot values → values skills act on (numbers, durations, clock times, dates, percent)."""

from __future__ import annotations

import datetime as dt

import pytest

from rivulet.dialog.parse import (
    parse_clock,
    parse_date,
    parse_duration,
    parse_number,
    parse_percent,
    say_clock,
    say_date,
    say_duration,
)

MONDAY = dt.date(2026, 11, 23)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("five minutes", 300),
        ("an hour and a half", 5400),
        ("2 hours 30 minutes", 9000),
        ("half an hour", 1800),
        ("ninety seconds", 90),
        ("twenty five minutes", 1500),
        ("a minute and a half", 90),
        ("10 mins", 600),
        ("one and a half hours", 5400),
        ("1 hours and 5 minutes", 3900),
        ("a couple of minutes", 120),
        ("five", None),
        ("later", None),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "clock"),
    [
        ("7 am", (7, 0)),
        ("7:30 pm", (19, 30)),
        ("seven thirty", (7, 30)),
        ("half past six", (6, 30)),
        ("quarter to eight", (7, 45)),
        ("noon", (12, 0)),
        ("midnight", (0, 0)),
        ("six in the evening", (18, 0)),
        ("12 am", (0, 0)),
        ("eight o clock", (8, 0)),
        ("whenever", None),
    ],
)
def test_parse_clock(text, clock):
    assert parse_clock(text) == clock


@pytest.mark.parametrize(
    ("text", "context", "clock"),
    [
        ("eight", "tonight", (20, 0)),
        ("six", "tomorrow morning", (6, 0)),
        ("eight", "21st december", (8, 0)),  # the context's numbers are not the minutes
        ("seven am", "tonight", (7, 0)),
    ],
)
def test_parse_clock_reads_am_or_pm_from_its_context(text, context, clock):
    assert parse_clock(text, context) == clock


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("tomorrow", dt.date(2026, 11, 24)),
        ("the day after tomorrow", dt.date(2026, 11, 25)),
        ("tonight", MONDAY),
        ("next monday", dt.date(2026, 11, 30)),
        ("friday", dt.date(2026, 11, 27)),
        ("june 5th", dt.date(2027, 6, 5)),
        ("december twenty first", dt.date(2026, 12, 21)),
        ("in three days", dt.date(2026, 11, 26)),
        ("paris", None),
    ],
)
def test_parse_date(text, date):
    assert parse_date(text, MONDAY) == date


@pytest.mark.parametrize(
    ("text", "number"), [("four people", 4), ("party of 12", 12), ("twenty two", 22), ("nobody", None)]
)
def test_parse_number(text, number):
    assert parse_number(text) == number


@pytest.mark.parametrize(
    ("text", "percent"), [("forty percent", 40), ("50%", 50), ("level 3", 30), ("full", 100)]
)
def test_parse_percent(text, percent):
    assert parse_percent(text) == percent


def test_saying_values():
    assert say_duration(3725) == "1 hour and 2 minutes and 5 seconds"
    assert say_clock(19, 5) == "7:05 PM" and say_clock(0, 0) == "12 AM"
    assert say_date(MONDAY, MONDAY) == "today"
    assert say_date(dt.date(2026, 11, 24), MONDAY) == "tomorrow"
    assert say_date(dt.date(2026, 12, 25), MONDAY) == "on Friday, December 25"
