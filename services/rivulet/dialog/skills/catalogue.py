"""Screenings and creative works (films, books, songs, albums, shows, games, pictures) from a small
local catalogue shipped with the package (`rivulet/dialog/data/catalogue.json`)."""

from __future__ import annotations

import difflib
import functools
import json
import re
from importlib import resources
from typing import Any

from rivulet.dialog.parse import say_clock
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills.base import IntentSpec, Outcome, Skill, SlotSpec, TurnContext

_TYPE_WORDS = {
    "movie": ("movie", "film", "picture show", "flick"),
    "book": ("book", "novel", "saga"),
    "song": ("song", "track", "single", "tune"),
    "album": ("album", "record"),
    "tv show": ("tv", "show", "series", "television"),
    "game": ("game", "video game"),
    "picture": ("picture", "painting", "photograph", "photo"),
}


@functools.cache
def load_catalogue() -> dict[str, Any]:
    text = resources.files("rivulet.dialog").joinpath("data/catalogue.json").read_text()
    return json.loads(text)


def titles(kind: str = "") -> tuple[str, ...]:
    """The catalogue's titles (of one type), as spoken: lower case, letters and spaces."""
    works = load_catalogue()["works"]
    return tuple(
        " ".join(re.sub(r"[^a-z0-9' ]", " ", w["title"].lower()).split())
        for w in works
        if not kind or w["type"] == kind
    )


def _norm(title: str) -> str:
    return re.sub(r"^(the|a|an) ", "", re.sub(r"[^a-z0-9 ]", "", title.lower())).strip()


def find_work(name: str, kind: str = "") -> dict[str, Any] | None:
    """The catalogue entry whose title best matches `name` (tolerates small transcription errors)."""
    works = load_catalogue()["works"]
    if kind:
        works = [w for w in works if w["type"] == kind] or works
    titles = {_norm(w["title"]): w for w in works}
    match = difflib.get_close_matches(_norm(name), list(titles), n=1, cutoff=0.75)
    return titles[match[0]] if match else None


def work_type(text: str) -> str:
    lowered = text.lower()
    for kind, names in _TYPE_WORDS.items():
        if any(re.search(rf"\b{n}", lowered) for n in names):
            return kind
    return ""


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"


class Catalogue(Skill):
    name = "catalogue"
    intents = {
        "SearchCreativeWork": IntentSpec(
            required=[SlotSpec("object_name", "Which title are you looking for?", hints=titles())],
            optional=[SlotSpec("object_type", "")],
            describe="looking up a title",
        ),
        "SearchScreeningEvent": IntentSpec(
            optional=[
                SlotSpec("movie_name", ""),
                SlotSpec("location_name", ""),
                SlotSpec("timeRange", ""),
                SlotSpec("movie_type", ""),
                SlotSpec("object_type", ""),
            ],
            date_slot="timeRange",
            place_slot="location_name",
        ),
    }

    async def act(self, intent: str, slots: dict[str, str], ctx: TurnContext) -> Outcome:
        if intent == "SearchCreativeWork":
            kind = work_type(slots.get("object_type", ""))
            work = find_work(slots["object_name"], kind)
            if not work:
                return Outcome(
                    f"I couldn't find {slots['object_name']} in my catalogue.",
                    "work.not_found",
                    {"object_name": slots["object_name"]},
                )
            kind = work["type"]
            text = f"{work['title']} is {_article(kind)} {kind} from {work['year']} by {work['by']}."
            return Outcome(text, "work.found", {"title": work["title"], "type": work["type"]})
        return self._screenings(slots)

    def _screenings(self, slots: dict[str, str]) -> Outcome:
        cinemas = load_catalogue()["cinemas"]
        if slots.get("location_name"):
            names = {_norm(c["name"]): c for c in cinemas}
            match = difflib.get_close_matches(_norm(slots["location_name"]), list(names), n=1, cutoff=0.6)
            cinemas = [names[match[0]]] if match else []
            if not cinemas:
                known = ", ".join(c["name"] for c in load_catalogue()["cinemas"])
                return Outcome(
                    f"I don't know a cinema called {slots['location_name']}. I know {known}.",
                    "screening.unknown_cinema",
                    {"location_name": slots["location_name"]},
                )
        when = slots.get("timeRange", "")
        day = f" {when}" if when else " today"
        if slots.get("movie_name"):
            work = find_work(slots["movie_name"], "movie")
            title = work["title"] if work else slots["movie_name"]
            found = [(c, c["shows"][title]) for c in cinemas if title in c["shows"]]
            if not found:
                return Outcome(
                    f"{title} isn't showing{day} at any cinema I know.",
                    "screening.none",
                    {"movie_name": title},
                )
            parts = [f"at {c['name']} at {_times(times)}" for c, times in found]
            return Outcome(
                f"{title} is showing{day} " + ", and ".join(parts) + ".",
                "screening.found",
                {"movie_name": title, "cinemas": "|".join(c["name"] for c, _ in found)},
            )
        animated = "animat" in slots.get("movie_type", "")
        lines = []
        for cinema in cinemas:
            shows = [
                f"{title} at {_times(times)}"
                for title, times in cinema["shows"].items()
                if not animated or (find_work(title, "movie") or {}).get("genre") == "animated"
            ]
            if shows:
                lines.append(f"{cinema['name']} has " + "; ".join(shows))
        if not lines:
            return Outcome(f"Nothing like that is showing{day}.", "screening.none", {})
        return Outcome(
            f"Showing{day}: " + ". ".join(lines) + ".",
            "screening.list",
            {"cinemas": "|".join(c["name"] for c in cinemas)},
        )


def _times(times: list[str]) -> str:
    said = [say_clock(*(int(x) for x in t.split(":"))) for t in times]
    return said[0] if len(said) == 1 else ", ".join(said[:-1]) + " and " + said[-1]


def create(settings: DialogSettings) -> Skill:
    return Catalogue()
