"""Scoring a built punctuation model (model.onnx through the serving runtime) on labelled examples."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipelines.punct.corpus import Example
from pipelines.punct.metrics import score
from pipelines.punct.runtime import punct_capit


def evaluate(version_dir: Path, examples: Sequence[Example], batch_size: int = 64, threads: int = 2) -> dict:
    """Per-mark and per-case precision, recall and F1 of `PunctCapitRuntime.predict_labels`."""
    runtime = punct_capit().PunctCapitRuntime(str(version_dir), intra_op_num_threads=threads)
    predictions = []
    for start in range(0, len(examples), batch_size):
        predictions += runtime.predict_labels([e.words for e in examples[start : start + batch_size]])
    return score(examples, predictions, runtime.punct_labels[1:], runtime.capit_labels[1:])
