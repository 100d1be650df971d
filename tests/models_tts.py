"""The TTS models of the session test repository (see tests/conftest.py).

- ``tts_embedded``: the committed embedded synthesizer (models/tts_embedded: flite/espeak-ng voices);
- ``tts_fastpitch_tiny``: a small randomly-initialised FastPitch + HiFi-GAN of NeMo's real classes,
  exported by the real pipeline (``python -m pipelines.tts tiny-model``; cached in
  ``cache_dir/tts/<source hash>``, about a minute to build the first time). It speaks noise, but its
  shapes, ONNX graphs, streaming and speed are those of a pretrained pair.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

EMBEDDED = "tts_embedded"
NEURAL = "tts_fastpitch_tiny"


def add_models(repository: Path, cache_dir: Path) -> list[str]:
    """Put the TTS test models into ``repository``; return their names (Triton waits for them)."""
    target = repository / EMBEDDED
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(ROOT / "models" / EMBEDDED, target, ignore=shutil.ignore_patterns("__pycache__"))
    command = [sys.executable, "-m", "pipelines.tts", "tiny-model", "--repository", str(repository)]
    command += ["--cache-dir", str(cache_dir)]
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'services'}{os.pathsep}{ROOT}")
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return [EMBEDDED, NEURAL]
