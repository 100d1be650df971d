"""Music: play requests (the player state is kept in Redis; no audio output is attached here) and
playlists (add a song or artist to a named playlist)."""

from __future__ import annotations

from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills.base import IntentSpec, Outcome, Skill, SlotSpec, TurnContext
from rivulet.dialog.skills.catalogue import find_work

_WHAT = ("track", "album", "artist", "playlist", "genre", "music_item")


class Music(Skill):
    name = "music"
    intents = {
        "PlayMusic": IntentSpec(
            optional=[SlotSpec(n, "") for n in (*_WHAT, "service", "year", "sort")], describe="playing music"
        ),
        "AddToPlaylist": IntentSpec(
            required=[
                SlotSpec(
                    "entity_name",
                    "Which song or artist should I add?",
                    labels=("entity_name", "track", "artist", "album"),
                ),
                SlotSpec("playlist", "To which playlist?"),
            ],
            optional=[SlotSpec("music_item", ""), SlotSpec("playlist_owner", "")],
            describe="adding to a playlist",
        ),
    }

    async def act(self, intent: str, slots: dict[str, str], ctx: TurnContext) -> Outcome:
        if intent == "AddToPlaylist":
            playlists = await ctx.read_data("playlists", {})
            name, entry = slots["playlist"], slots["entity_name"]
            items = playlists.setdefault(name, [])
            if entry not in items:
                items.append(entry)
            ctx.write_data("playlists", playlists)
            return Outcome(
                f"Added {entry} to your {name} playlist.",
                "playlist.add",
                {"playlist": name, "entity_name": entry},
            )
        what = {k: v for k, v in slots.items() if k in _WHAT or k in ("service", "year", "sort")}
        if slots.get("track"):
            work = find_work(slots["track"], "song")
            desc = work["title"] + f" by {work['by']}" if work else slots["track"]
            desc += f" by {slots['artist']}" if slots.get("artist") and not work else ""
        elif slots.get("album"):
            desc = f"the album {slots['album']}" + (f" by {slots['artist']}" if slots.get("artist") else "")
        elif slots.get("artist"):
            desc = f"music by {slots['artist']}"
        elif slots.get("playlist"):
            desc = f"the {slots['playlist']} playlist"
        elif slots.get("genre"):
            desc = f"some {slots['genre']}"
        else:
            desc = "some music"
        if slots.get("service"):
            desc += f" on {slots['service']}"
        ctx.write_data("player", {"playing": desc, **what})
        return Outcome(f"Playing {desc}.", "music.play", what)


def create(settings: DialogSettings) -> Skill:
    return Music()
