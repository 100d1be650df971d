"""The serving runtime (`models/intent_assistant/1/intent_slot.py`), imported from its one canonical copy."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from pipelines.nlu.paths import RUNTIME_DIR

_MODULE_NAME = "rivulet_intent_slot_runtime"


def load_runtime(path: Path, module_name: str) -> ModuleType:
    """A model directory's runtime module, loaded from its file once (registered under `module_name`
    before it runs, as the Triton model loads it, so its dataclasses resolve their module)."""
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return module


def intent_slot() -> ModuleType:
    return load_runtime(RUNTIME_DIR / "intent_slot.py", _MODULE_NAME)
