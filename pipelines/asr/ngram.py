"""A word n-gram language model with interpolated Kneser-Ney smoothing, written as ARPA.

The ASR decoder fuses it with the acoustic model (`rivulet.asr.language_model`) through KenLM,
which reads ARPA (and its own binary format). KenLM's estimator `lmplz` is not on PyPI (it needs
Boost), so the project estimates its small domain models here; any ARPA or KenLM binary built
elsewhere — e.g. `lmplz -o 4 < corpus.txt > lm.arpa` on a large corpus — works the same.

Smoothing (Chen & Goodman 1998, interpolated Kneser-Ney with one discount per order):

    P(w | h) = max(c(h w) − D, 0) / c(h) + D · N1+(h •) / c(h) · P(w | h')

with raw counts at the highest order and at n-grams starting with `<s>`, continuation counts
N1+(• h w) below, `D = n1 / (n1 + 2 n2)` per order, and the unigrams interpolated with a uniform
distribution over the vocabulary plus `<unk>`. In ARPA each seen n-gram carries its interpolated
probability and each context its back-off weight D · N1+(h •) / c(h), so KenLM's back-off
arithmetic gives exactly the interpolated distribution.
"""

from __future__ import annotations

import gzip
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
_LOG10_ZERO = -99.0


def _discount(counts: Iterable[int]) -> float:
    histogram = Counter(c for c in counts if c <= 2)
    n1, n2 = histogram.get(1, 0), histogram.get(2, 0)
    if n1 == 0:
        return 0.5
    return min(max(n1 / (n1 + 2 * n2), 0.1), 0.9)


def estimate(
    sentences: Iterable[str], order: int = 3
) -> dict[int, dict[tuple[str, ...], tuple[float, float]]]:
    """{n: {ngram: (log10 prob, log10 back-off)}} for orders 1..`order` from whitespace-split sentences."""
    if order < 1:
        raise ValueError("order must be at least 1")
    raw: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order + 1)]
    for sentence in sentences:
        words = [BOS, *sentence.split(), EOS]
        if len(words) == 2:
            continue
        for n in range(1, order + 1):
            for i in range(len(words) - n + 1):
                gram = tuple(words[i : i + n])
                if gram != (BOS,):
                    raw[n][gram] += 1
    # the counts each order is estimated from: raw at the top and after <s>, continuation below
    counts: list[dict[tuple[str, ...], int]] = [{} for _ in range(order + 1)]
    counts[order] = dict(raw[order])
    for n in range(order - 1, 0, -1):
        continuation: Counter[tuple[str, ...]] = Counter(gram[1:] for gram in raw[n + 1])
        counts[n] = {gram: (c if gram[0] == BOS else continuation.get(gram, c)) for gram, c in raw[n].items()}

    vocabulary = {gram[0] for gram in counts[1]} | {UNK}
    probs: list[dict[tuple[str, ...], float]] = [{} for _ in range(order + 1)]
    gammas: list[dict[tuple[str, ...], float]] = [{} for _ in range(order + 1)]  # per context, for order n

    # unigrams: discounted counts + the freed mass spread uniformly over the vocabulary
    discount = _discount(counts[1].values())
    total = sum(counts[1].values())
    gamma = discount * len(counts[1]) / total
    uniform = 1.0 / len(vocabulary)
    for word in vocabulary:
        probs[1][(word,)] = max(counts[1].get((word,), 0) - discount, 0) / total + gamma * uniform
    for n in range(2, order + 1):
        discount = _discount(counts[n].values())
        context_total: dict[tuple[str, ...], int] = defaultdict(int)
        context_types: dict[tuple[str, ...], int] = defaultdict(int)
        for gram, c in counts[n].items():
            context_total[gram[:-1]] += c
            context_types[gram[:-1]] += 1
        for context, c_total in context_total.items():
            gammas[n][context] = discount * context_types[context] / c_total
        for gram, c in counts[n].items():
            context = gram[:-1]
            lower = probs[n - 1][gram[1:]]
            probs[n][gram] = (c - discount) / context_total[context] + gammas[n][context] * lower

    model: dict[int, dict[tuple[str, ...], tuple[float, float]]] = {}
    for n in range(1, order + 1):
        entries = {}
        for gram, p in probs[n].items():
            backoff = gammas[n + 1].get(gram) if n < order else None
            entries[gram] = (math.log10(p), math.log10(backoff) if backoff else 0.0)
        if n == 1:
            backoff = gammas[2].get((BOS,)) if order > 1 else None
            entries[(BOS,)] = (_LOG10_ZERO, math.log10(backoff) if backoff else 0.0)
        model[n] = entries
    return model


def write_arpa(model: dict[int, dict[tuple[str, ...], tuple[float, float]]], path: Path) -> None:
    """ARPA text; gzipped (reproducibly: no name or time in the header) when `path` ends in .gz."""
    order = max(model)
    lines = ["\\data\\"]
    lines += [f"ngram {n}={len(model[n])}" for n in range(1, order + 1)]
    for n in range(1, order + 1):
        lines += ["", f"\\{n}-grams:"]
        for gram in sorted(model[n]):
            logp, backoff = model[n][gram]
            line = f"{logp:.6f}\t{' '.join(gram)}"
            lines.append(line + f"\t{backoff:.6f}" if n < order else line)
    lines += ["", "\\end\\", ""]
    data = "\n".join(lines).encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)


def build_arpa(sentences: Iterable[str], path: Path, order: int = 3) -> dict[int, int]:
    """Estimate and write; returns the number of n-grams per order."""
    model = estimate(sentences, order)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_arpa(model, path)
    return {n: len(grams) for n, grams in model.items()}
