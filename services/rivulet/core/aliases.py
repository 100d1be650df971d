"""Alias tables: names the Riva ecosystem sends by default → the model or voice Rivulet serves.

The defaults live in the data file ``rivulet/aliases.toml`` (one section per service); each
service's settings hold its section as a typed ``dict[str, str]`` that an environment variable can
replace. Catalogs resolve a requested name through ``Aliases.resolve`` before looking it up, and
list each alias beside its target in ``GetRiva*Config``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "aliases.toml"


def load_section(section: str, path: Path = DEFAULT_FILE) -> dict[str, str]:
    """One section of an alias file (``asr``, ``tts`` or ``nlu``); {} when the file lacks it."""
    with path.open("rb") as f:
        table = tomllib.load(f).get(section, {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
        raise ValueError(f"{path} [{section}]: every alias must map a name to a name (strings)")
    return dict(table)


def alias_setting(section: str, what: str, used_for: str) -> Any:
    """A service setting holding one section of the default alias file (a JSON object in its
    environment variable replaces it; '{}' turns aliases off)."""
    return Field(
        default_factory=lambda: load_section(section),
        description=f"Names clients send by default → the {what} they get, for {used_for}. Default: "
        f"the [{section}] table of services/rivulet/aliases.toml; a JSON object replaces it "
        "('{}': no aliases).",
    )


class Aliases:
    """Case-insensitive alias → target lookup."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self.table = dict(sorted(table.items()))
        self._lower = {alias.lower(): target for alias, target in table.items()}

    def target(self, name: str) -> str | None:
        """The name `name` stands for, or None when it is no alias."""
        return self._lower.get(name.lower())

    def resolve(self, name: str) -> str:
        """`name`'s target when it is an alias, else `name` itself."""
        return self.target(name) or name

    def of(self, target: str) -> list[str]:
        """Every alias of `target` (in the table's spelling, sorted)."""
        return [alias for alias, t in self.table.items() if t.lower() == target.lower()]

    def listing(self, name: str) -> list[tuple[str, str | None]]:
        """(listed name, alias_of) for each name a served model `name` is listed under in
        GetRiva*Config: its own name, then its aliases."""
        return [(name, None), *((alias, name) for alias in self.of(name))]

    def note(self, served: list[str]) -> str:
        """'; aliases: …' naming every alias of the `served` names, for NOT_FOUND messages."""
        aliases = [alias for name in served for alias in self.of(name)]
        return f"; aliases: {', '.join(aliases)}" if aliases else ""
