"""Intent accuracy, span-level slot F1 (conlleval, as seqeval's default mode computes it) and sentence
accuracy (intent and every tag right)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from seqeval.metrics import f1_score, precision_score, recall_score

from pipelines.nlu.datasets import UNLABELLED, Example


def score(examples: Sequence[Example], intents: Sequence[str], tags: Sequence[Sequence[str]]) -> dict:
    # an unlabelled word (X) counts as outside every slot
    gold_tags = [["O" if t == UNLABELLED else t for t in e.tags] for e in examples]
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


def out_of_scope_scores(gold: Sequence[str], predicted: Sequence[str], out_of_scope: str) -> dict:
    """Held-out real phrasings: in-scope intent accuracy (right intent, not rejected), out-of-scope
    rejection rate, and in-scope false rejection rate (an in-scope request called out of scope)."""
    pairs = list(zip(gold, predicted, strict=True))
    in_scope = [(g, p) for g, p in pairs if g != out_of_scope]
    outside = [p for g, p in pairs if g == out_of_scope]
    return {
        "in_scope_count": len(in_scope),
        "out_of_scope_count": len(outside),
        "in_scope_accuracy": sum(g == p for g, p in in_scope) / max(len(in_scope), 1),
        "out_of_scope_rejection": sum(p == out_of_scope for p in outside) / max(len(outside), 1),
        "in_scope_false_rejection": sum(p == out_of_scope for _, p in in_scope) / max(len(in_scope), 1),
    }
