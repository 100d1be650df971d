"""Intent accuracy, span-level slot F1 (conlleval, as seqeval's default mode computes it) and sentence
accuracy (intent and every tag right)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from seqeval.metrics import f1_score, precision_score, recall_score

from pipelines.nlu.datasets import Example


def score(examples: Sequence[Example], intents: Sequence[str], tags: Sequence[Sequence[str]]) -> dict:
    gold_tags = [list(e.tags) for e in examples]
    pred_tags = [list(t) for t in tags]
    intent_right = [e.intent == p for e, p in zip(examples, intents, strict=True)]
    sentence_right = [ok and g == p for ok, g, p in zip(intent_right, gold_tags, pred_tags, strict=True)]
    per_intent: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for example, ok in zip(examples, intent_right, strict=True):
        per_intent[example.intent][0] += int(ok)
        per_intent[example.intent][1] += 1
    n = max(len(examples), 1)
    return {
        "count": len(examples),
        "intent_accuracy": sum(intent_right) / n,
        "slot_f1": f1_score(gold_tags, pred_tags),
        "slot_precision": precision_score(gold_tags, pred_tags),
        "slot_recall": recall_score(gold_tags, pred_tags),
        "sentence_accuracy": sum(sentence_right) / n,
        "per_intent": {k: {"correct": v[0], "count": v[1]} for k, v in sorted(per_intent.items())},
    }
