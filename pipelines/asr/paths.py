"""Where things are: the repository, the shared data, the ASR cache, the runtime sources."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The canonical runtime sources, copied into every built asr_* model version directory.
RUNTIME_DIR = REPO_ROOT / "models" / "asr_streaming" / "1"
RUNTIME_FILES = ("model.py", "asr_stream.py", "onnx_device.py")
REPORTS_DIR = REPO_ROOT / "bench" / "reports"


def data_dir() -> Path:
    """The shared data directory: $RIVULET_DATA_DIR, else ../shared/data next to the repository."""
    override = os.environ.get("RIVULET_DATA_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


def cache_dir() -> Path:
    """$RIVULET_CACHE_DIR/asr, else ${XDG_CACHE_HOME:-~/.cache}/rivulet/asr."""
    base = os.environ.get("RIVULET_CACHE_DIR")
    if base:
        return Path(base) / "asr"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "rivulet" / "asr"


def fsdd_dir() -> Path:
    return data_dir() / "speech" / "fsdd_train"


def snips_dir() -> Path:
    return data_dir() / "nlu" / "snips"
