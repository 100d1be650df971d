"""The out-of-scope threshold, calibrated on the dev sets (never on the held-out test parts).

The served decision (`intent_slot.IntentSlotRuntime.rank_intents`) rejects a text as out of scope
when the out-of-scope class wins or the best in-scope intent's probability is under a threshold.
The threshold chosen is the highest one that keeps the in-scope false rejection rate on every dev
source within its limit: real phrasings (SLURP's dev part) may lose at most 2 % of in-scope
requests (the goal on held-out data is 3 %), the SNIPS and generated dev sets at most 0.5 %.
A higher threshold rejects more out-of-scope text, so this is the most rejection the limits allow.
A recipe that trains on SLURP's dev part is not calibrated (threshold 0, the class alone decides).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from pipelines.nlu.datasets import Example

if TYPE_CHECKING:
    from pipelines.nlu.recipes import Recipe

FALSE_REJECTION_LIMITS = {"slurp": 0.02}
DEFAULT_FALSE_REJECTION_LIMIT = 0.005


def best_in_scope(
    runtime, examples: Sequence[Example], batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Per example: the best in-scope probability, and whether the out-of-scope class wins."""
    oos = runtime.intents.index(runtime.out_of_scope)
    best = np.zeros(len(examples), dtype=np.float64)
    class_wins = np.zeros(len(examples), dtype=bool)
    for start in range(0, len(examples), batch_size):
        probs, _ = runtime.predict_words([e.words for e in examples[start : start + batch_size]])
        in_scope = np.delete(probs, oos, axis=1)
        best[start : start + len(probs)] = in_scope.max(axis=1)
        class_wins[start : start + len(probs)] = probs.argmax(axis=1) == oos
    return best, class_wins


def calibrate_for(recipe: Recipe, runtime: Callable[[], object], dev: dict[str, list[Example]]) -> dict:
    """A build's calibration: `calibrate` on the dev sets, or, when the recipe trains on the real
    phrasings' dev part (`Recipe.real_dev_in_training`), none (threshold 0: the out-of-scope class
    alone decides), since no held-out real phrasings are left to calibrate on. `runtime` loads the
    exported model (not loaded when skipped)."""
    if recipe.real_dev_in_training:
        return {"threshold": 0.0, "skipped": "the real phrasings' dev part is trained on"}
    return calibrate(runtime(), dev)


def calibrate(runtime, dev: dict[str, list[Example]]) -> dict:
    """The threshold and what it gives on each dev source (in-scope false rejection, out-of-scope
    rejection). `runtime` must have an out-of-scope intent."""
    scored = {}
    for source, examples in dev.items():
        best, class_wins = best_in_scope(runtime, examples)
        is_oos = np.array([e.intent == runtime.out_of_scope for e in examples], dtype=bool)
        scored[source] = (best, class_wins, is_oos)
    candidates = sorted({0.0, *np.concatenate([b[~o] for b, _, o in scored.values()]).tolist()})
    threshold = 0.0
    for t in candidates:  # false rejection only grows with the threshold
        if not all(_false_rejection(*values, t) <= _limit(source) for source, values in scored.items()):
            break
        threshold = t
    report = {"threshold": round(float(threshold), 6), "limits": {}, "dev": {}}
    for source, (best, wins, oos) in scored.items():
        report["limits"][source] = _limit(source)
        report["dev"][source] = {
            "in_scope": int((~oos).sum()),
            "out_of_scope": int(oos.sum()),
            "in_scope_false_rejection": _false_rejection(best, wins, oos, threshold),
            "out_of_scope_rejection": float(_rejected(best[oos], wins[oos], threshold).mean())
            if oos.any()
            else None,
        }
    return report


def _false_rejection(best: np.ndarray, wins: np.ndarray, oos: np.ndarray, threshold: float) -> float:
    in_scope = ~oos
    return float(_rejected(best[in_scope], wins[in_scope], threshold).mean()) if in_scope.any() else 0.0


def _limit(source: str) -> float:
    return FALSE_REJECTION_LIMITS.get(source, DEFAULT_FALSE_REJECTION_LIMIT)


def _rejected(best: np.ndarray, class_wins: np.ndarray, threshold: float) -> np.ndarray:
    # Strictly under the threshold is rejected (as rank_intents decides); the threshold itself passes.
    return class_wins | (best < threshold)
