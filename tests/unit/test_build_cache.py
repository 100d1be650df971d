"""The build cache the NLU and punctuation builds share (pipelines.build_cache), on real files: a
version directory that holds the key is left alone, a cached key is restored (hard links into the
cache, stale artifacts unlinked first, never written through), a new key is made once and stored."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines import build_cache


def make_artifacts(version_dir: Path, key: str, weights: bytes) -> dict:
    version_dir.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "tokenizer.json", "labels.json"):
        (version_dir / name).write_bytes(weights if name == "model.onnx" else b"{}")
    info = {"key": key, "weights": weights.decode()}
    (version_dir / build_cache.STAMP).write_text(json.dumps(info))
    return info


class Recorder:
    """What a build does besides the cache: counts the trainings and model-file writes."""

    def __init__(self, version_dir: Path, key: str, weights: bytes = b"trained") -> None:
        self.version_dir, self.key, self.weights = version_dir, key, weights
        self.trained = self.model_files = 0

    def write_model_files(self) -> None:
        self.model_files += 1
        (self.version_dir / "model.py").write_text("# runtime\n")

    def train_and_export(self) -> dict:
        self.trained += 1
        build_cache.clear_artifacts(self.version_dir)  # as the builds do before they export
        return make_artifacts(self.version_dir, self.key, self.weights)

    def build(self, cache_dir: Path | None) -> build_cache.Build:
        return build_cache.reuse_or_build(
            self.version_dir, cache_dir, self.key, self.write_model_files, self.train_and_export
        )


def test_a_new_key_is_trained_once_stored_then_left_alone(tmp_path: Path) -> None:
    cache_dir, version_dir = tmp_path / "cache", tmp_path / "repo" / "m" / "1"
    build = Recorder(version_dir, "k1")
    info, source = build.build(cache_dir)
    assert (source, build.trained, info["key"]) == ("trained", 1, "k1")
    assert build_cache.cached_build(cache_dir, "k1") == cache_dir / "k1"
    assert build_cache.stamped_key(version_dir) == "k1"
    info, source = build.build(cache_dir)
    assert (source, build.trained, build.model_files, info["key"]) == ("present", 1, 1, "k1")
    assert build_cache.is_built(version_dir, None, "k1") and not build_cache.is_built(version_dir, None, "k2")


def test_a_cached_key_is_restored_as_links_without_training(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    Recorder(tmp_path / "first" / "m" / "1", "k1", b"cached weights").build(cache_dir)
    version_dir = tmp_path / "second" / "m" / "1"
    make_artifacts(version_dir, "old", b"stale weights")  # another key's build in the way
    build = Recorder(version_dir, "k1")
    assert build_cache.is_built(version_dir, cache_dir, "k1")
    info, source = build.build(cache_dir)
    assert (source, build.trained, build.model_files) == ("restored", 0, 1)
    assert info["weights"] == "cached weights"
    assert (version_dir / "model.onnx").samefile(cache_dir / "k1" / "model.onnx")
    build_cache.clear_artifacts(version_dir)  # what a retraining does first: unlink, not overwrite
    assert (cache_dir / "k1" / "model.onnx").read_bytes() == b"cached weights"
    assert not (version_dir / "model.onnx").exists() and (version_dir / "model.py").exists()


def test_without_a_cache_every_new_key_is_trained(tmp_path: Path) -> None:
    version_dir = tmp_path / "m" / "1"
    first, second = Recorder(version_dir, "k1"), Recorder(version_dir, "k2")
    assert first.build(None).source == "trained" and second.build(None).source == "trained"
    assert build_cache.stamped_key(version_dir) == "k2" and not build_cache.is_built(version_dir, None, "k1")


def test_the_key_is_a_stable_fingerprint_of_its_parts(tmp_path: Path) -> None:
    small = tmp_path / "small.txt"
    small.write_text("abc")
    parts = {"recipe": {"epochs": 2}, "sources": {"small.txt": build_cache.file_identity(small)}}
    assert build_cache.fingerprint(parts) == build_cache.fingerprint(dict(reversed(parts.items())))
    assert len(build_cache.fingerprint(parts)) == 20
    small.write_text("abd")
    changed = {**parts, "sources": {"small.txt": build_cache.file_identity(small)}}
    assert build_cache.fingerprint(changed) != build_cache.fingerprint(parts)


def test_an_optional_artifact_travels_with_its_build_and_not_with_another(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with_int8 = Recorder(tmp_path / "first" / "m" / "1", "k1")
    original = with_int8.train_and_export

    def train_with_int8() -> dict:
        info = original()
        (with_int8.version_dir / "model.int8.onnx").write_bytes(b"int8 weights")
        return info

    with_int8.train_and_export = train_with_int8
    with_int8.build(cache_dir)
    assert (cache_dir / "k1" / "model.int8.onnx").read_bytes() == b"int8 weights"
    Recorder(tmp_path / "first" / "m" / "1", "k2").build(cache_dir)  # a build without one
    assert not (cache_dir / "k2" / "model.int8.onnx").exists()
    version_dir = tmp_path / "second" / "m" / "1"
    build = Recorder(version_dir, "k1")
    assert build.build(cache_dir).source == "restored"
    assert (version_dir / "model.int8.onnx").samefile(cache_dir / "k1" / "model.int8.onnx")
    assert Recorder(version_dir, "k2").build(cache_dir).source == "restored"
    assert not (version_dir / "model.int8.onnx").exists()  # k1's graph does not outlive it
