"""`build`: train -> export ONNX -> Triton model directory -> evaluate, with a build cache.

The encoder, tokenizer and batching helpers are the intent pipeline's, and so is the build cache
(`pipelines.build_cache`: artifacts model.onnx, tokenizer.json, labels.json, build.json); what
differs is the data (`corpus.py`), the two token heads (`network.py`) and the runtime
(`punct_capit.py`).
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from pathlib import Path

from pipelines import build_cache
from pipelines.build_cache import file_identity
from pipelines.build_steps import cpu_info, install_runtime_files, stage
from pipelines.nlu.encoder import encoder_files, load_encoder, load_fast_tokenizer
from pipelines.nlu.paths import default_encoder_dir
from pipelines.punct import corpus as corpus_module
from pipelines.punct.recipes import recipe_for
from pipelines.punct.runtime import RUNTIME_DIR, RUNTIME_FILES
from pipelines.punct.triton_config import MODEL_NAME, config_pbtxt

VERSION = "1"
# The modules whose code decides the weights (with the recipe, the data and the encoder).
KEY_SOURCES = ("corpus.py", "corpus.toml", "network.py", "train.py", "export.py")


def default_cache_dir() -> Path:
    base = os.environ.get("RIVULET_CACHE_DIR") or str(Path.home() / ".cache" / "rivulet")
    return Path(base) / "punct"


def build_key(profile: str, encoder_dir: Path) -> str:
    here = Path(__file__).parent
    parts = {
        "profile": profile,
        "recipe": recipe_for(profile).as_dict(),
        "sources": {name: file_identity(here / name) for name in KEY_SOURCES},
        "runtime": {name: file_identity(RUNTIME_DIR / name) for name in ("punct_capit.py", "intent_slot.py")},
        "encoder": {p.name: file_identity(p) for p in encoder_files(encoder_dir)},
        "data": {p.name: file_identity(p) for p in corpus_module.source_files()},
    }
    return build_cache.fingerprint(parts)


def write_model_files(model_dir: Path) -> None:
    """config.pbtxt and the runtime sources (links copied as files: a model directory stands alone)."""
    version_dir = model_dir / VERSION
    version_dir.mkdir(parents=True, exist_ok=True)
    config = model_dir / "config.pbtxt"
    if not config.is_file() or config.read_text() != config_pbtxt(model_dir.name):
        config.write_text(config_pbtxt(model_dir.name))
    install_runtime_files(RUNTIME_DIR, RUNTIME_FILES, version_dir)


def resolve_profile(repository: Path, cache_dir: Path | None, encoder_dir: Path) -> str:
    """`auto`: `full` when it is built in the repository or cached (seconds), else `quick` (minutes)."""
    key = build_key("full", encoder_dir)
    return "full" if build_cache.is_built(repository / MODEL_NAME / VERSION, cache_dir, key) else "quick"


def build(profile: str, repository: Path, cache_dir: Path | None, encoder: Path | None = None) -> dict:
    """Build `repository/punct_capit_en/`; returns its build.json. A build with the same key is reused."""
    started = time.perf_counter()
    encoder_dir = Path(encoder) if encoder else default_encoder_dir()
    if profile == "auto":
        profile = resolve_profile(repository, cache_dir, encoder_dir)
    model_dir = repository / MODEL_NAME
    version_dir = model_dir / VERSION
    key = build_key(profile, encoder_dir)
    stage(f"{MODEL_NAME}: profile {profile}, encoder {encoder_dir}, build key {key}")
    info, source = build_cache.reuse_or_build(
        version_dir,
        cache_dir,
        key,
        lambda: write_model_files(model_dir),
        lambda: _train_and_export(profile, encoder_dir, model_dir, key),
    )
    if source == "present":
        return info
    stage(f"{MODEL_NAME} ready in {model_dir} ({time.perf_counter() - started:.0f} s)")
    return info


def _train_and_export(profile: str, encoder_dir: Path, model_dir: Path, key: str) -> dict:
    import torch

    from pipelines.finetune import seed_everything
    from pipelines.punct.evaluate import evaluate
    from pipelines.punct.export import export_onnx, max_onnx_difference
    from pipelines.punct.network import PunctCapitModel, keep_layers
    from pipelines.punct.runtime import punct_capit
    from pipelines.punct.train import train

    torch.set_num_threads(1)  # two threads on a shared 2-core machine ran slower than one
    recipe = recipe_for(profile)
    seed_everything(recipe.seed)
    marks, cases = corpus_module.punct_labels(), corpus_module.capit_labels()
    timings: dict[str, float] = {}
    version_dir = model_dir / VERSION

    stage("loading text")
    corpus = corpus_module.load_corpus(recipe.window_words, recipe.eval_examples)
    print(f"    {json.dumps(corpus.sizes())}", flush=True)
    stage(f"loading encoder {encoder_dir}")
    tokenizer = load_fast_tokenizer(encoder_dir)
    encoder = keep_layers(load_encoder(encoder_dir, recipe.dropout), recipe.encoder_layers)
    if recipe.freeze_embeddings:
        encoder.embeddings.requires_grad_(False)
    model = PunctCapitModel(encoder, len(marks), len(cases), recipe.dropout)

    stage(f"training ({recipe.epochs} epochs, batch {recipe.batch_size}, lr {recipe.learning_rate:g})")
    t = time.perf_counter()
    history = train(model, tokenizer, corpus, recipe, marks, cases)
    timings["train_s"] = round(time.perf_counter() - t, 1)

    stage(f"exporting ONNX to {version_dir}")
    t = time.perf_counter()
    build_cache.clear_artifacts(version_dir)
    write_model_files(model_dir)
    export_onnx(model, version_dir / "model.onnx")
    tokenizer.save(str(version_dir / "tokenizer.json"))
    labels = {
        "punct_labels": marks,
        "capit_labels": cases,
        "mark_map": corpus_module.mark_map(),
        "max_length": recipe.max_length,
        "window_words": recipe.window_words,
        "window_margin": recipe.window_margin,
    }
    (version_dir / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    ids, mask, _ = punct_capit().encode_words(
        tokenizer, [e.words for e in corpus.dev[:16]], recipe.max_length
    )
    parity = max_onnx_difference(model, version_dir / "model.onnx", ids, mask)
    if not parity < 1e-3:
        raise RuntimeError(f"ONNX and PyTorch disagree: max |logit difference| = {parity}")
    print(f"    ONNX vs PyTorch: max |logit difference| {parity:.2e}", flush=True)
    timings["export_s"] = round(time.perf_counter() - t, 1)

    stage("evaluating the exported model on the held-out test text (onnxruntime, punct_capit.py)")
    t = time.perf_counter()
    metrics = evaluate(version_dir, corpus.test)
    timings["eval_s"] = round(time.perf_counter() - t, 1)
    mark_f1 = {m: round(metrics["punct"][m]["f1"], 4) for m in marks[1:]}
    case_f1 = {c: round(metrics["capit"][c]["f1"], 4) for c in cases[1:]}
    print(f"    test mark F1 {json.dumps(mark_f1)}  case F1 {json.dumps(case_f1)}", flush=True)
    timings["total_s"] = round(sum(timings.values()), 1)
    info = {
        "key": key,
        "model": model_dir.name,
        "profile": profile,
        "encoder": str(encoder_dir),
        "recipe": recipe.as_dict(),
        "data_sizes": corpus.sizes(),
        "history": history,
        "metrics": {"test": metrics},
        "onnx_parity_max_abs_diff": parity,
        "timings": timings,
        "environment": {"cpu": cpu_info(), "torch": torch.__version__, "python": sys.version.split()[0]},
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": f"python -m pipelines.punct build --profile {profile} --repository DIR",
    }
    (version_dir / build_cache.STAMP).write_text(json.dumps(info, indent=1) + "\n")
    return info
