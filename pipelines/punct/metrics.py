"""Per-label precision, recall and F1 of word labels (scikit-learn), for marks and for case."""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.metrics import precision_recall_fscore_support


def per_label(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], labels: Sequence[str]
) -> dict:
    """{label: {precision, recall, f1, support}} over every word of every example (`labels`: the
    ones scored, e.g. the marks without "O"), plus their macro average."""
    flat_gold = [label for example in gold for label in example]
    flat_pred = [label for example in predicted for label in example]
    precision, recall, f1, support = precision_recall_fscore_support(
        flat_gold, flat_pred, labels=list(labels), zero_division=0
    )
    scores = {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }
    scores["macro_f1"] = float(sum(f1) / max(1, len(labels)))
    return scores


def score(examples, predictions: Sequence[tuple[Sequence[str], Sequence[str]]], marks, cases) -> dict:
    """Mark and case scores of `predictions` ((marks, cases) per example) against the examples."""
    return {
        "words": sum(len(e.words) for e in examples),
        "punct": per_label([e.marks for e in examples], [p[0] for p in predictions], marks),
        "capit": per_label([e.cases for e in examples], [p[1] for p in predictions], cases),
    }
