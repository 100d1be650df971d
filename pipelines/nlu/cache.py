"""The build key and the build cache: a finished build is reused instead of retrained."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from pipelines.nlu.paths import RUNTIME_DIR

# The modules whose code decides the weights (the CLI, reports and Triton files do not). The recipe
# enters the key as its values, so tuning one model's recipe leaves the other models' builds valid.
KEY_SOURCES = (
    "assistant_domain.py",
    "calibrate.py",
    "corpus.py",
    "datasets.py",
    "encoder.py",
    "export.py",
    "joint_model.py",
    "slurp.py",
    "train.py",
)
ARTIFACTS = ("model.onnx", "tokenizer.json", "labels.json", "build.json")
STAMP = "build.json"


def file_identity(path: Path, hash_limit: int = 4 << 20) -> str:
    """Content hash for small files; size + mtime for big ones (weights)."""
    stat = path.stat()
    if stat.st_size <= hash_limit:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def build_key(
    dataset: str, profile: str, recipe: dict, encoder_files: list[Path], data_files: list[Path]
) -> str:
    source_dir = Path(__file__).parent
    parts = {
        "dataset": dataset,
        "profile": profile,
        "recipe": recipe,
        "sources": {name: file_identity(source_dir / name) for name in KEY_SOURCES},
        "runtime": file_identity(RUNTIME_DIR / "intent_slot.py"),
        "encoder": {p.name: file_identity(p) for p in encoder_files},
        "data": {str(p): file_identity(p) for p in data_files},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def stamped_key(version_dir: Path) -> str | None:
    try:
        return json.loads((version_dir / STAMP).read_text())["key"]
    except (OSError, ValueError, KeyError):
        return None


def cached_build(cache_dir: Path, key: str) -> Path | None:
    entry = cache_dir / key
    return entry if all((entry / name).is_file() for name in ARTIFACTS) else None


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def restore(entry: Path, version_dir: Path) -> None:
    version_dir.mkdir(parents=True, exist_ok=True)
    for name in ARTIFACTS:
        _link_or_copy(entry / name, version_dir / name)


def store(version_dir: Path, cache_dir: Path, key: str) -> Path:
    """Copy a finished build into the cache atomically (a temp dir renamed into place)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    entry = cache_dir / key
    if cached_build(cache_dir, key):
        return entry
    staging = cache_dir / f".{key}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name in ARTIFACTS:
        _link_or_copy(version_dir / name, staging / name)
    shutil.rmtree(entry, ignore_errors=True)
    os.replace(staging, entry)
    return entry
