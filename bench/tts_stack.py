"""Triton + the TTS service as real processes on free ports, for TTS benchmarks."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from bench.local_stack import service_stack

ROOT = Path(__file__).resolve().parents[1]


def embedded_repository(dest: Path) -> Path:
    """A scratch model repository holding the committed tts_embedded model."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "models" / "tts_embedded", dest / "tts_embedded", dirs_exist_ok=True)
    return dest


def tts_stack(
    repository: Path, log_dir: Path, models: tuple[str, ...] = ("tts_embedded",)
) -> contextlib.AbstractContextManager[str]:
    """Serve ``repository`` with tritonserver and run ``python -m rivulet.tts``; yields its address."""
    return service_stack(
        "rivulet.tts", repository, log_dir, models, grpc_service="nvidia.riva.tts.RivaSpeechSynthesis"
    )
