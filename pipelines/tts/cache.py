"""The tiny neural test model, built once per source version and reused (tests, CI)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

HERE = Path(__file__).parent
TINY_NAME = "tts_fastpitch_tiny"
SOURCES = ("configs.py", "tiny.py", "export.py", "runtime.py", "triton/model.py", "../onnx_device.py")


def source_key() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode() + (HERE / name).read_bytes())
    return digest.hexdigest()[:16]


def tiny_model(repository: Path, cache_dir: Path) -> Path:
    """Copy the exported tiny model into ``repository`` (building it into the cache first if needed)."""
    from pipelines.tts.export import export
    from pipelines.tts.tiny import make_tiny

    built = Path(cache_dir) / "tts" / source_key()
    model = built / TINY_NAME
    if not (model / "config.pbtxt").exists():
        built.mkdir(parents=True, exist_ok=True)
        fp, hg = make_tiny(built / "nemo")
        export(fp, hg, built, name=TINY_NAME, voice_name="English-US-Tiny", subvoice="Neural-1")
        shutil.rmtree(built / "nemo", ignore_errors=True)  # the HiFi-GAN .nemo holds 280 MB of discriminators
    target = Path(repository) / TINY_NAME
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(model, target)
    return target
