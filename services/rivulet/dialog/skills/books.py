"""Book ratings: "rate this book four out of six stars" — stored per session in Redis."""

from __future__ import annotations

from rivulet.dialog.parse import number_words, parse_number
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills.base import IntentSpec, Outcome, Skill, SlotSpec, TurnContext
from rivulet.dialog.skills.catalogue import find_work, titles


def _rating(text: str, ctx: TurnContext) -> str | None:
    value = parse_number(text)
    return str(value) if value is not None and 0 <= value <= 10 else None


class Books(Skill):
    name = "books"
    intents = {
        "RateBook": IntentSpec(
            required=[
                SlotSpec("object_name", "Which book would you like to rate?", hints=titles("book")),
                SlotSpec(
                    "rating_value",
                    "How many points do you give it?",
                    parse=_rating,
                    hints=(*number_words(0, 10), "out of", "stars", "points"),
                ),
            ],
            optional=[SlotSpec("best_rating", "", parse=_rating, default="5"), SlotSpec("rating_unit", "")],
            describe="rating a book",
        )
    }

    async def act(self, intent: str, slots: dict[str, str], ctx: TurnContext) -> Outcome:
        work = find_work(slots["object_name"], "book")
        title = work["title"] if work else slots["object_name"]
        value, best = int(slots["rating_value"]), int(slots.get("best_rating") or 5)
        if value > best:
            return Outcome(
                f"A rating can't be more than {best}. How many points do you give {title}?",
                "ask_slot",
                done=False,
                retry_slot="rating_value",
            )
        ratings = await ctx.read_data("ratings", {})
        ratings[title] = {"value": value, "best": best}
        ctx.write_data("ratings", ratings)
        unit = slots.get("rating_unit") or "points"
        return Outcome(
            f"Rated {title} {value} out of {best} {unit}.",
            "book.rate",
            {"title": title, "rating_value": str(value), "best_rating": str(best)},
        )


def create(settings: DialogSettings) -> Skill:
    return Books()
