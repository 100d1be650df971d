"""`build`: train -> export ONNX -> Triton model directory -> evaluate -> report, with a build cache."""

from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np

from pipelines import build_cache
from pipelines.build_steps import cpu_info, install_runtime_files, stage
from pipelines.nlu import cache
from pipelines.nlu.corpus import APOSTROPHES, DOMAINS, MODEL_NAMES, data_files, load_corpus
from pipelines.nlu.encoder import encoder_files, load_encoder, load_fast_tokenizer
from pipelines.nlu.paths import REPORTS_DIR, RUNTIME_DIR, RUNTIME_FILES, default_encoder_dir
from pipelines.nlu.recipes import recipe_for
from pipelines.nlu.slurp import load_mapping
from pipelines.nlu.triton_config import config_pbtxt

VERSION = "1"
INT8_MIN_AGREEMENT = 0.97  # of the dev sets' best intents, int8 graph against the float one


def write_model_files(model_dir: Path, dataset: str) -> None:
    """config.pbtxt and the runtime sources (skipped where they already are the canonical files)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    config = config_pbtxt(MODEL_NAMES[dataset], DOMAINS[dataset])
    path = model_dir / "config.pbtxt"
    if not path.is_file() or path.read_text() != config:
        path.write_text(config)
    install_runtime_files(RUNTIME_DIR, RUNTIME_FILES, model_dir / VERSION)


def _write_int8_graph(version_dir: Path, batches: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """model.int8.onnx beside model.onnx, kept only where its best intent agrees with the float
    graph's on at least INT8_MIN_AGREEMENT of the dev sets (else the CPU runs model.onnx too)."""
    import onnxruntime as ort

    from pipelines.nlu.export import intent_agreement, quantize_int8
    from pipelines.nlu.runtime import intent_slot

    fp32_graph, int8_graph = intent_slot().FP32_GRAPH, intent_slot().INT8_GRAPH
    stage("the int8 graph for the CPU (dynamic quantization, per channel)")
    target = version_dir / int8_graph
    quantize_int8(version_dir / fp32_graph, target)
    sessions = [
        ort.InferenceSession(str(version_dir / name), providers=["CPUExecutionProvider"])
        for name in (fp32_graph, int8_graph)
    ]
    agree, worst = intent_agreement(*sessions, batches)
    written = agree >= INT8_MIN_AGREEMENT
    if not written:
        target.unlink()
    size_mb = round((target.stat().st_size if written else 0) / 1e6, 1)
    verdict = f"written ({size_mb} MB)" if written else f"not written (under {INT8_MIN_AGREEMENT:.0%})"
    print(
        f"    int8 vs float: same best intent on {agree:.1%} of the dev sets, max |probability difference| "
        f"{worst:.3f}; {verdict}",
        flush=True,
    )
    return {"written": written, "intent_agreement": agree, "max_prob_diff": worst, "size_mb": size_mb}


def _key(dataset: str, profile: str, encoder_dir: Path) -> str:
    recipe = recipe_for(dataset, profile).as_dict()
    return cache.build_key(dataset, profile, recipe, encoder_files(encoder_dir), data_files(dataset))


def resolve_profile(
    dataset: str, repository: Path, cache_dir: Path | None, encoder: Path | None = None
) -> str:
    """`auto`: `full` when its build is already in the repository or the cache (seconds to restore),
    else `quick` (minutes to train), so a first `make run` answers soon; the stack then trains the
    full model in the background (rivulet.stack_models.NluUpgrade)."""
    key = _key(dataset, "full", Path(encoder) if encoder else default_encoder_dir())
    built = build_cache.is_built(repository / MODEL_NAMES[dataset] / VERSION, cache_dir, key)
    return "full" if built else "quick"


def build(
    dataset: str,
    profile: str,
    repository: Path,
    cache_dir: Path | None,
    encoder: Path | None = None,
    write_report: bool | None = None,
    report_dir: Path = REPORTS_DIR,
) -> dict:
    """Build `repository/<model>/`; returns its build.json. A build with the same key is reused.
    `profile` auto: see `resolve_profile`."""
    started = time.perf_counter()
    if profile == "auto":
        profile = resolve_profile(dataset, repository, cache_dir, encoder)
    model_name = MODEL_NAMES[dataset]
    model_dir = repository / model_name
    version_dir = model_dir / VERSION
    encoder_dir = Path(encoder) if encoder else default_encoder_dir()
    key = _key(dataset, profile, encoder_dir)
    stage(f"{model_name}: dataset {dataset}, profile {profile}, encoder {encoder_dir}, build key {key}")
    write_report = profile == "full" if write_report is None else write_report

    info, source = build_cache.reuse_or_build(
        version_dir,
        cache_dir,
        key,
        lambda: write_model_files(model_dir, dataset),
        lambda: _train_and_export(dataset, profile, encoder_dir, model_dir, key),
    )
    if source == "present":
        return info
    if write_report:
        from pipelines.nlu.report import write_report as write

        report_dir.mkdir(parents=True, exist_ok=True)
        path = write(info, report_dir / f"nlu_train_{dataset}.md")
        stage(f"report written: {path}")
    stage(f"{model_name} ready in {model_dir} ({time.perf_counter() - started:.0f} s)")
    return info


def _train_and_export(dataset: str, profile: str, encoder_dir: Path, model_dir: Path, key: str) -> dict:
    import torch

    from pipelines.nlu.calibrate import calibrate_for
    from pipelines.nlu.evaluate import evaluate_sets, load_runtime
    from pipelines.nlu.export import export_onnx, max_onnx_difference
    from pipelines.nlu.joint_model import JointIntentSlotModel
    from pipelines.nlu.latency import measure_latency
    from pipelines.nlu.runtime import intent_slot
    from pipelines.nlu.train import seed_everything, train

    torch.set_num_threads(2)
    recipe = recipe_for(dataset, profile)
    seed_everything(recipe.seed)
    timings: dict[str, float] = {}
    version_dir = model_dir / VERSION

    stage("loading data")
    corpus = load_corpus(dataset, recipe.train_per_intent, recipe.seed, recipe.real_dev_in_training)
    sizes = {
        "train": {k: len(v) for k, v in corpus.train.items()},
        "dev": {k: len(v) for k, v in corpus.dev.items()},
        "test": {k: len(v) for k, v in corpus.test.items()},
        "intents": len(corpus.intents),
        "slot_tags": len(corpus.slot_tags),
    }
    print(f"    {json.dumps(sizes)}", flush=True)

    stage(f"loading encoder {encoder_dir}")
    tokenizer = load_fast_tokenizer(encoder_dir)
    model = JointIntentSlotModel(
        load_encoder(encoder_dir, recipe.dropout), len(corpus.intents), len(corpus.slot_tags), recipe.dropout
    )

    stage(f"training ({recipe.epochs} epochs, batch {recipe.batch_size}, lr {recipe.learning_rate:g})")
    t = time.perf_counter()
    history = train(model, tokenizer, corpus, recipe)
    timings["train_s"] = round(time.perf_counter() - t, 1)

    stage(f"exporting ONNX to {version_dir}")
    t = time.perf_counter()
    build_cache.clear_artifacts(version_dir)
    version_dir.mkdir(parents=True, exist_ok=True)
    write_model_files(model_dir, dataset)
    export_onnx(model, version_dir / "model.onnx")
    tokenizer.save(str(version_dir / "tokenizer.json"))
    labels = {
        "intents": corpus.intents,
        "slot_tags": corpus.slot_tags,
        "max_length": recipe.max_length,
        "apostrophes": APOSTROPHES[dataset],
    }
    (version_dir / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    sample = [e.words for examples in corpus.dev.values() for e in examples[:8]]
    ids, mask, _ = intent_slot().encode_words(tokenizer, sample, recipe.max_length)
    parity = max_onnx_difference(model, version_dir / "model.onnx", [(ids, mask), (ids[:1], mask[:1])])
    if not parity < 1e-3:
        raise RuntimeError(f"ONNX and PyTorch disagree: max |logit difference| = {parity}")
    print(f"    ONNX vs PyTorch: max |logit difference| {parity:.2e}", flush=True)
    timings["export_s"] = round(time.perf_counter() - t, 1)
    dev = [e.words for examples in corpus.dev.values() for e in examples]
    encode = intent_slot().encode_words
    dev_batches = [encode(tokenizer, dev[i : i + 64], recipe.max_length)[:2] for i in range(0, len(dev), 64)]
    int8 = _write_int8_graph(version_dir, dev_batches)

    calibration = None
    out_of_scope = load_mapping().out_of_scope_intent
    if out_of_scope in corpus.intents:
        how = "not calibrated: trained on the real dev part" if recipe.real_dev_in_training else "dev sets"
        stage(f"the {out_of_scope} threshold ({how})")
        labels["out_of_scope"] = {"intent": out_of_scope, "threshold": 0.0}
        (version_dir / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
        calibration = calibrate_for(recipe, lambda: load_runtime(version_dir), corpus.dev)
        labels["out_of_scope"]["threshold"] = calibration["threshold"]
        (version_dir / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
        print(f"    {json.dumps(calibration)}", flush=True)

    stage("evaluating the exported model (onnxruntime, intent_slot.py)")
    t = time.perf_counter()
    metrics = {
        "dev": evaluate_sets(version_dir, corpus.dev, "dev"),
        "test": evaluate_sets(version_dir, corpus.test, "test"),
    }
    timings["eval_s"] = round(time.perf_counter() - t, 1)
    for split, sets in metrics.items():
        for name, m in sets.items():
            print(
                f"    {split} {name} ({m['count']}): intent acc {100 * m['intent_accuracy']:.2f}  "
                f"slot F1 {100 * m['slot_f1']:.2f}  sentence acc {100 * m['sentence_accuracy']:.2f}",
                flush=True,
            )
            if "out_of_scope" in m:
                o = m["out_of_scope"]
                print(
                    f"    {split} {name} real phrasings: in-scope acc {100 * o['in_scope_accuracy']:.2f}  "
                    f"out-of-scope rejected {100 * o['out_of_scope_rejection']:.2f}  "
                    f"in-scope rejected {100 * o['in_scope_false_rejection']:.2f}",
                    flush=True,
                )

    info = {
        "key": key,
        "model": model_dir.name,
        "dataset": dataset,
        "domain": DOMAINS[dataset],
        "profile": profile,
        "encoder": str(encoder_dir),
        "recipe": recipe.as_dict(),
        "data_sizes": sizes,
        "history": history,
        "metrics": metrics,
        "onnx_parity_max_abs_diff": parity,
        "int8_graph": int8,
        "out_of_scope_calibration": calibration,
        "timings": timings,
        "environment": {
            "cpu": cpu_info(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "numpy": np.__version__,
        },
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": f"python -m pipelines.nlu build --dataset {dataset} --profile {profile} --repository DIR",
    }
    timings["total_s"] = round(sum(timings.values()), 1)
    info["latency"] = measure_latency(version_dir)  # the graph the CPU serves
    if int8["written"]:
        info["latency_fp32"] = measure_latency(version_dir, graph=intent_slot().FP32_GRAPH)
    (version_dir / build_cache.STAMP).write_text(json.dumps(info, indent=1) + "\n")
    return info
