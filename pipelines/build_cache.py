"""The build cache of the encoder-based model builds (pipelines.nlu, pipelines.punct).

A build writes its artifacts into `<model>/<version>/` and stamps them with its build key (a
fingerprint of what decides the weights) in `build.json`. A finished build is copied into
`<cache_dir>/<key>/`; a later build with the same key is restored from there (hard links where
the file system allows) instead of retrained, and a version directory that already holds the key is
left alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple

from pipelines.build_steps import stage

ARTIFACTS = ("model.onnx", "tokenizer.json", "labels.json", "build.json")
# Written by some builds only (the NLU's int8 graph for the CPU): kept with the others where present.
OPTIONAL_ARTIFACTS = ("model.int8.onnx",)
STAMP = "build.json"


def file_identity(path: Path, hash_limit: int = 4 << 20) -> str:
    """Content hash for small files; size + mtime for big ones (weights)."""
    stat = path.stat()
    if stat.st_size <= hash_limit:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def fingerprint(parts: dict) -> str:
    """The build key of `parts` (JSON-able: recipe values, file identities)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def stamped_key(version_dir: Path) -> str | None:
    try:
        return json.loads((version_dir / STAMP).read_text())["key"]
    except (OSError, ValueError, KeyError):
        return None


def cached_build(cache_dir: Path, key: str) -> Path | None:
    entry = cache_dir / key
    return entry if all((entry / name).is_file() for name in ARTIFACTS) else None


def is_built(version_dir: Path, cache_dir: Path | None, key: str) -> bool:
    """Whether build `key` is in `version_dir` already or in the cache (seconds to restore)."""
    return stamped_key(version_dir) == key or bool(cache_dir and cached_build(cache_dir, key))


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _present(directory: Path) -> list[str]:
    """The artifacts to copy out of `directory`: every required one, and the optional ones it has."""
    return [*ARTIFACTS, *(name for name in OPTIONAL_ARTIFACTS if (directory / name).is_file())]


def clear_artifacts(version_dir: Path) -> None:
    """Unlink the artifacts rather than overwrite them: they may be hard links into the cache."""
    for name in (*ARTIFACTS, *OPTIONAL_ARTIFACTS):
        (version_dir / name).unlink(missing_ok=True)


def restore(entry: Path, version_dir: Path) -> None:
    version_dir.mkdir(parents=True, exist_ok=True)
    for name in OPTIONAL_ARTIFACTS:  # an older build's file must not outlive it
        (version_dir / name).unlink(missing_ok=True)
    for name in _present(entry):
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
    for name in _present(version_dir):
        _link_or_copy(version_dir / name, staging / name)
    shutil.rmtree(entry, ignore_errors=True)
    os.replace(staging, entry)
    return entry


class Build(NamedTuple):
    info: dict  # the build.json
    source: Literal["present", "restored", "trained"]  # already in the version dir, from the cache, new


def reuse_or_build(
    version_dir: Path,
    cache_dir: Path | None,
    key: str,
    write_model_files: Callable[[], None],
    train_and_export: Callable[[], dict],
) -> Build:
    """Build `key` in `version_dir`: left alone when it is there already, restored
    from the cache when it is cached, else made by `train_and_export` (which writes the artifacts and
    the stamp) and stored in the cache. `write_model_files` (config.pbtxt, runtime sources) runs
    whenever the artifacts are reused; `train_and_export` writes them itself."""
    if stamped_key(version_dir) == key:
        write_model_files()
        stage(f"{version_dir} already holds build {key}: nothing to do")
        return Build(json.loads((version_dir / STAMP).read_text()), "present")
    entry = cached_build(cache_dir, key) if cache_dir else None
    if entry:
        stage(f"restoring build {key} from the cache {entry}")
        clear_artifacts(version_dir)
        restore(entry, version_dir)
        write_model_files()
        return Build(json.loads((version_dir / STAMP).read_text()), "restored")
    info = train_and_export()
    if cache_dir:
        stage(f"storing build {key} in the cache {cache_dir}")
        store(version_dir, cache_dir, key)
    return Build(info, "trained")
