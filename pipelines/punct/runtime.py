"""The serving runtime (`models/punct_capit_en/1/punct_capit.py`), imported from its one canonical copy."""

from __future__ import annotations

from types import ModuleType

from pipelines.nlu.paths import REPO_ROOT
from pipelines.nlu.runtime import load_runtime

RUNTIME_DIR = REPO_ROOT / "models" / "punct_capit_en" / "1"
# copied into every built model version directory (links are copied as files)
RUNTIME_FILES = ("model.py", "punct_capit.py", "intent_slot.py", "onnx_device.py")


def punct_capit() -> ModuleType:
    return load_runtime(RUNTIME_DIR / "punct_capit.py", "rivulet_punct_capit_runtime")
