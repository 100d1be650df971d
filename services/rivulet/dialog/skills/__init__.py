"""Skills: one module each, registered by name (see `base` for the registration API)."""

from __future__ import annotations

import importlib

from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills.base import SkillRegistry

SKILL_MODULES = (
    "time_date",
    "timers",
    "lights",
    "lists",
    "music",
    "books",
    "restaurant",
    "catalogue",
    "weather",
)


def build_registry(settings: DialogSettings, modules: tuple[str, ...] = SKILL_MODULES) -> SkillRegistry:
    registry = SkillRegistry()
    for name in modules:
        module = importlib.import_module(f"rivulet.dialog.skills.{name}")
        registry.register(module.create(settings))
    return registry
