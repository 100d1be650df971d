"""Scoring a built model (model.onnx through the serving runtime) on labelled examples."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from pipelines.nlu.datasets import Example
from pipelines.nlu.metrics import out_of_scope_scores, score
from pipelines.nlu.runtime import intent_slot


def load_runtime(version_dir: Path, threads: int = 2):
    return intent_slot().IntentSlotRuntime(str(version_dir), intra_op_num_threads=threads)


def evaluate_runtime(runtime, examples: Sequence[Example], batch_size: int = 64, desc: str = "test") -> dict:
    """Metrics for the examples, predicted by `IntentSlotRuntime.predict_words` and decided as served
    (`rank_intents`: out of scope included), in batches sorted by length."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].words))
    intents: list[str] = [""] * len(examples)
    tags: list[list[str]] = [[] for _ in examples]
    for start in tqdm(range(0, len(order), batch_size), desc=f"    eval {desc}", unit="batch", leave=False):
        index = order[start : start + batch_size]
        probs, word_probs = runtime.predict_words([examples[i].words for i in index])
        for row, i in enumerate(index):
            intents[i] = runtime.rank_intents(probs[row])[0][0]
            tags[i] = runtime.decode_tags(word_probs[row])
    metrics = score(examples, intents, tags)
    if runtime.out_of_scope and any(e.intent == runtime.out_of_scope for e in examples):
        metrics["out_of_scope"] = out_of_scope_scores(
            [e.intent for e in examples], intents, runtime.out_of_scope
        )
    return metrics


def evaluate_sets(version_dir: Path, sets: dict[str, list[Example]], split: str) -> dict[str, dict]:
    runtime = load_runtime(version_dir)
    return {
        name: evaluate_runtime(runtime, examples, desc=f"{split} {name}") for name, examples in sets.items()
    }
