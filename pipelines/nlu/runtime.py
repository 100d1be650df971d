"""The serving runtime (`models/intent_assistant/1/intent_slot.py`), imported from its one canonical copy."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from pipelines.nlu.paths import RUNTIME_DIR

_MODULE_NAME = "rivulet_intent_slot_runtime"


def intent_slot() -> ModuleType:
    module = sys.modules.get(_MODULE_NAME)
    if module is None:
        spec = importlib.util.spec_from_file_location(_MODULE_NAME, RUNTIME_DIR / "intent_slot.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[_MODULE_NAME] = module
        spec.loader.exec_module(module)
    return module
