"""The punctuation model of the session test repository (see tests/conftest.py).

``punct_capit_en`` in the quick profile (``python -m pipelines.punct build --profile quick``: one
short epoch on part of the text, a few minutes on 2 cores; cached in ``cache_dir/punct`` by its
build key, so later sessions restore it in seconds). It punctuates worse than the full model, but
its files, Triton model and runtime are the served ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

MODEL = "punct_capit_en"


def add_models(repository: Path, cache_dir: Path) -> list[str]:
    """Put the punctuation test model into ``repository``; return its name (Triton waits for it)."""
    command = [sys.executable, "-m", "pipelines.punct", "build", "--profile", "quick"]
    command += ["--repository", str(repository), "--cache-dir", str(Path(cache_dir) / "punct")]
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'services'}{os.pathsep}{ROOT}")
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return [MODEL]
