"""Scripted multi-turn dialogs for the task-success benchmark: each has a goal (the final action and
the slots it must carry), an opening request, the answer the simulated user gives to each question
the assistant may ask, and optional follow-ups that change the context ("what about tomorrow?").

The user adapts to the assistant as a person would: when asked for a slot it answers from its
`answers`; when asked to confirm it says yes; anything else ends the dialog. Values are drawn
deterministically (seeded), so every run speaks the same dialogs.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from bench.dialog_support import HELD_OUT_VOICES

NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()


@dataclass
class Goal:
    """The action the dialog must end in, with slots that must match (value: exact, or
    `contains:x` for a substring, or `date:+N` for today + N days in the service's time zone)."""

    action: str
    slots: dict[str, str] = field(default_factory=dict)


@dataclass
class Script:
    name: str
    skill: str
    voice: str
    opening: str
    answers: dict[str, str]
    goal: Goal
    # (utterance, goal) pairs spoken after the first goal was reached; each must be reached too
    follow_ups: list[tuple[str, Goal]] = field(default_factory=list)


def check(goal: Goal, action: str, slots: dict[str, str], today: dt.date) -> bool:
    if action != goal.action:
        return False
    for key, want in goal.slots.items():
        have = slots.get(key, "").lower()
        if want.startswith("contains:"):
            if want[len("contains:") :] not in have:
                return False
        elif want.startswith("date:+"):
            if have != (today + dt.timedelta(days=int(want[len("date:+") :]))).isoformat():
                return False
        elif have != want.lower():
            return False
    return True


def scripts(seed: int = 7) -> list[Script]:
    rng = random.Random(seed)
    voices = list(HELD_OUT_VOICES)
    made: list[Script] = []

    def add(skill: str, opening: str, answers: dict, goal: Goal, follow_ups=()) -> None:
        voice = voices[len(made) % len(voices)]
        made.append(
            Script(f"{skill}-{len(made):02d}", skill, voice, opening, answers, goal, list(follow_ups))
        )

    for minutes in rng.sample(range(2, 12), 5):
        if minutes % 2:
            add(
                "timer",
                f"set a timer for {NUMBER_WORDS[minutes]} minutes",
                {},
                Goal("timer.set", {"duration_s": str(minutes * 60)}),
            )
        else:
            add(
                "timer",
                "set a timer",
                {"duration": f"{NUMBER_WORDS[minutes]} minutes"},
                Goal("timer.set", {"duration_s": str(minutes * 60)}),
            )
    for hour in rng.sample(range(5, 10), 4):
        add(
            "alarm",
            f"wake me up at {NUMBER_WORDS[hour]} am",
            {},
            Goal("alarm.set", {"time": f"{hour:02d}:00"}),
        )
    add("alarm", "set an alarm", {"time": "six thirty am"}, Goal("alarm.set", {"time": "06:30"}))
    rooms = ["kitchen", "bedroom", "living room", "office", "bathroom", "garage"]
    for room in rng.sample(rooms, 4):
        add("lights", f"turn on the {room} lights", {}, Goal("lights.on", {"room": room}))
    for room in rng.sample(rooms, 3):
        add("lights", "turn off the lights", {"room": f"the {room}"}, Goal("lights.off", {"room": room}))
    for room, percent in zip(rng.sample(rooms, 3), (30, 50, 80), strict=True):
        add(
            "lights",
            f"set the {room} lights to {percent} percent",
            {},
            Goal("lights.brightness", {"room": room, "brightness": str(percent)}),
        )
    for item in rng.sample(["milk", "eggs", "bread", "coffee", "apples", "butter", "cheese"], 5):
        add(
            "lists",
            f"add {item} to my shopping list",
            {},
            Goal("list.add", {"item": item, "list_name": "shopping"}),
        )
    add("lists", "what is on my shopping list", {}, Goal("list.read", {"list_name": "shopping"}))
    cities = ["boston", "paris", "chicago", "seattle", "denver", "austin"]
    for city, people in zip(rng.sample(cities, 5), (2, 3, 4, 5, 6), strict=True):
        add(
            "restaurant",
            f"book a table for {NUMBER_WORDS[people]} people in {city}",
            {"time": "tomorrow at seven pm", "party_size": f"{NUMBER_WORDS[people]} people", "place": city},
            Goal(
                "restaurant.book",
                {"party_size": str(people), "place": f"contains:{city}", "time": "tomorrow at seven pm"},
            ),
        )
    for city in rng.sample(cities, 2):
        add(
            "restaurant",
            "i want to book a restaurant",
            {"party_size": "four people", "time": "tonight at eight", "place": city},
            Goal(
                "restaurant.book",
                {"party_size": "4", "place": f"contains:{city}", "time": "tonight at eight"},
            ),
        )
    for city in ("paris", "boston"):
        add(
            "weather",
            f"what is the weather in {city}",
            {},
            Goal("weather.forecast", {"place": city, "date": "date:+0"}),
            [("what about tomorrow", Goal("weather.forecast", {"place": city, "date": "date:+1"}))],
        )
    add(
        "weather",
        "what is the weather like",
        {"place": "paris"},
        Goal("weather.forecast", {"place": "paris"}),
    )
    for title in ("the matrix", "finding nemo", "casablanca", "inception"):
        add(
            "catalogue",
            f"find the movie {title}",
            {},
            Goal("work.found", {"title": f"contains:{title[-6:]}"}),
        )
    for title in ("moby dick", "the hobbit"):
        add(
            "catalogue", f"find the book {title}", {}, Goal("work.found", {"title": f"contains:{title[-6:]}"})
        )
    for cinema in ("riverside cinema", "grand theatre"):
        add(
            "screening",
            f"what movies are showing at {cinema}",
            {},
            Goal("screening.list", {"cinemas": f"contains:{cinema.split()[0]}"}),
        )
    for book, score in (("the hobbit", 4), ("dune", 5), ("moby dick", 3)):
        add(
            "books",
            f"rate {book} {NUMBER_WORDS[score]} out of five",
            {},
            Goal("book.rate", {"rating_value": str(score)}),
        )
    add("books", "rate the hobbit", {"rating_value": "four"}, Goal("book.rate", {"rating_value": "4"}))
    for song, playlist in (("bohemian rhapsody", "road trip"), ("imagine", "chill")):
        add(
            "music",
            f"add {song} to my {playlist} playlist",
            {},
            Goal("playlist.add", {"playlist": f"contains:{playlist.split()[0]}"}),
        )
    add("music", "play some jazz", {}, Goal("music.play"))
    for _ in range(2):
        add("time", "what time is it", {}, Goal("time.tell"))
    add("time", "what is the date today", {}, Goal("date.tell"))
    return made
