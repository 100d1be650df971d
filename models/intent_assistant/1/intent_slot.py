"""Joint intent + slot runtime: word splitting, tokenization, onnxruntime, BIO decoding.

Plain Python (numpy, onnxruntime, tokenizers only): it runs inside Triton's python backend, in
NVIDIA's Triton container, and in `pipelines.nlu` (training encodes words with `encode_words`, and
`evaluate` scores the exported ONNX through `IntentSlotRuntime`), so decode logic lives in one place.

Files next to this module (written by `python -m pipelines.nlu build`):
  model.onnx      inputs input_ids, attention_mask (int64 [batch, seq]);
                  outputs intent_logits [batch, intents], slot_logits [batch, seq, tags]
  model.int8.onnx the same graph with int8 weights (7 bits used, one scale per output channel, dynamic
                  quantization; optional): what a CPU runs when it is there (about 40 % less time a
                  query), unless the config's cpu_graph says model.onnx; a GPU runs model.onnx
  tokenizer.json  a `tokenizers` fast tokenizer whose post-processor adds [CLS] ... [SEP]
  labels.json     {"intents": [...], "slot_tags": [...], "max_length": int, "apostrophes": "split"|"keep",
                   "out_of_scope": {"intent": "OutOfScope", "threshold": float} (optional)}

Out of scope: a model trained with an out-of-scope class reports that class first when it wins, or
when the best in-scope intent's probability is under the threshold calibrated on held-out data
(`pipelines.nlu.calibrate`); its score is then 1 - that probability, and the in-scope intents
follow by probability.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Punctuation peeled off the edges of a whitespace token. It is never part of a slot span and is
# not given to the model (the training sets carry no sentence punctuation).
EDGE_PUNCTUATION = frozenset(".,!?;:\"()[]{}'`\u2018\u2019\u201c\u201d\u00bf\u00a1\u2026")
APOSTROPHES = frozenset("'\u2019\u2018`")


@dataclass(frozen=True)
class Word:
    """One word of the user's text: its model-facing form and [start, end) offsets in the text."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Span:
    """A slot: entity type (no B-/I-), [start, end) character offsets, and confidence."""

    label: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Analysis:
    """The answer for one text: every intent sorted by probability, and the slot spans."""

    intents: list[str]
    intent_scores: list[float]
    spans: list[Span]
    words: list[Word]
    word_tags: list[str]


def split_words(text: str, apostrophes: str = "split") -> list[Word]:
    """Split text into words with character offsets, the way the training sets are tokenized.

    Whitespace separates tokens; edge punctuation (.,!?;:"() and quotes) is dropped. Inside a word an
    apostrophe either splits it and is dropped (`"split"`, SNIPS: "what's" -> "what" "s") or stays
    (`"keep"`, ATIS: "i'd"). Words are lowercased; offsets always refer to the original text.
    """
    if apostrophes not in ("split", "keep"):
        raise ValueError(f"apostrophes must be 'split' or 'keep', not {apostrophes!r}")
    words: list[Word] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        j = i
        while j < n and not text[j].isspace():
            j += 1
        start, end = i, j
        while start < end and text[start] in EDGE_PUNCTUATION:
            start += 1
        while end > start and text[end - 1] in EDGE_PUNCTUATION:
            end -= 1
        if start < end:
            words.extend(_split_apostrophes(text, start, end, apostrophes))
        i = j
    return words


def _split_apostrophes(text: str, start: int, end: int, mode: str) -> list[Word]:
    if mode == "keep":
        return [Word(text[start:end].lower(), start, end)]
    pieces: list[Word] = []
    piece_start = start
    for k in range(start, end + 1):
        if k == end or text[k] in APOSTROPHES:
            if k > piece_start:
                pieces.append(Word(text[piece_start:k].lower(), piece_start, k))
            piece_start = k + 1
    return pieces


def tags_to_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """BIO tags -> (type, first word, last word + 1), as conlleval reads them.

    A B- always opens a span; an I- continues the open span of the same type and otherwise opens a
    new one; O closes.
    """
    spans: list[tuple[str, int, int]] = []
    current: list | None = None
    for index, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        if prefix == "B" or (prefix == "I" and (current is None or current[0] != kind)):
            if current is not None:
                spans.append(tuple(current))
            current = [kind, index, index + 1]
        elif prefix == "I":
            current[2] = index + 1
        else:
            if current is not None:
                spans.append(tuple(current))
            current = None
    if current is not None:
        spans.append(tuple(current))
    return spans


def encode_words(
    tokenizer, batch_words: Sequence[Sequence[str]], max_length: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokenize pre-split words, padded to the longest sequence in the batch.

    Returns input_ids and attention_mask (int64 [batch, seq]) and first_token (int64 [batch, words]):
    the position of each word's first sub-token, or -1 where truncation cut the word off.
    """
    encodings = tokenizer.encode_batch([list(words) for words in batch_words], is_pretokenized=True)
    rows: list[list[int]] = []
    firsts = np.full((len(batch_words), max((len(w) for w in batch_words), default=0)), -1, dtype=np.int64)
    for row, (encoding, words) in enumerate(zip(encodings, batch_words, strict=True)):
        ids = list(encoding.ids)
        word_ids = list(encoding.word_ids)
        if len(ids) > max_length:  # keep the closing special token
            ids = ids[: max_length - 1] + ids[-1:]
            word_ids = [*word_ids[: max_length - 1], None]
        seen: set[int] = set()
        for position, word_id in enumerate(word_ids):
            if word_id is not None and word_id not in seen and word_id < len(words):
                seen.add(word_id)
                firsts[row, word_id] = position
        rows.append(ids)
    seq = max(len(ids) for ids in rows) if rows else 0
    input_ids = np.zeros((len(rows), seq), dtype=np.int64)
    attention = np.zeros((len(rows), seq), dtype=np.int64)
    for row, ids in enumerate(rows):
        input_ids[row, : len(ids)] = ids
        attention[row, : len(ids)] = 1
    return input_ids, attention, firsts


def bio_transitions(tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Allowed BIO moves: (start [tags], transition [from, to]) masks; I-x only after B-x or I-x."""
    kinds = [t[2:] if t[:2] in ("B-", "I-") else None for t in tags]
    inside = np.array([t.startswith("I-") for t in tags])
    start = ~inside
    allowed = np.ones((len(tags), len(tags)), dtype=bool)
    for to, kind in enumerate(kinds):
        if inside[to]:
            allowed[:, to] = [k == kind for k in kinds]
    return start, allowed


def viterbi_bio(word_probs: np.ndarray, start: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The most probable tag sequence (product of word-level probabilities) that is valid BIO."""
    n = len(word_probs)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    log_probs = np.log(np.clip(word_probs, 1e-12, None))
    penalty = np.where(allowed, 0.0, -np.inf)
    score = np.where(start, log_probs[0], -np.inf)
    back = np.zeros((n, word_probs.shape[1]), dtype=np.int64)
    for i in range(1, n):
        candidates = score[:, None] + penalty
        back[i] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + log_probs[i]
    best = np.empty(n, dtype=np.int64)
    best[-1] = int(score.argmax())
    for i in range(n - 1, 0, -1):
        best[i - 1] = back[i, best[i]]
    return best


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


FP32_GRAPH = "model.onnx"
INT8_GRAPH = "model.int8.onnx"
CPU_PROVIDER = "CPUExecutionProvider"


def choose_graph(model_dir: str, providers: Sequence, graph: str = "", cpu_graph: str = INT8_GRAPH) -> str:
    """The ONNX file to run: `graph` when given; else `cpu_graph` (the config's `cpu_graph`) where only
    the CPU provider runs and the build wrote that file; else the float model.onnx (a GPU provider
    always: int8 MatMulInteger is a CPU kernel)."""
    if graph:
        return graph
    names = [p[0] if isinstance(p, tuple) else p for p in providers]
    cpu_only = all(name == CPU_PROVIDER for name in names)
    if cpu_only and cpu_graph and os.path.isfile(os.path.join(model_dir, cpu_graph)):
        return cpu_graph
    return FP32_GRAPH


class IntentSlotRuntime:
    """Loads the graph (`choose_graph`), tokenizer.json and labels.json from one model version
    directory."""

    def __init__(
        self,
        model_dir: str,
        intra_op_num_threads: int = 1,
        providers: list | None = None,
        graph: str = "",
        cpu_graph: str = INT8_GRAPH,
    ) -> None:
        """``providers``: onnxruntime's execution providers (the Triton model's choice for its
        instance, ``onnx_device.py``); the CPU provider when not given. ``graph``: the ONNX file
        (model.onnx, model.int8.onnx); `choose_graph` picks when empty, `cpu_graph` for the CPU."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        with open(os.path.join(model_dir, "labels.json"), encoding="utf-8") as f:
            labels = json.load(f)
        self.intents: list[str] = list(labels["intents"])
        self.slot_tags: list[str] = list(labels["slot_tags"])
        self.max_length: int = int(labels["max_length"])
        self.apostrophes: str = labels.get("apostrophes", "split")
        out_of_scope = labels.get("out_of_scope") or {}
        self.out_of_scope: str = out_of_scope.get("intent", "")
        self.out_of_scope_threshold: float = float(out_of_scope.get("threshold", 0.0))
        self._start, self._allowed = bio_transitions(self.slot_tags)
        self.tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_num_threads
        options.inter_op_num_threads = 1
        providers = providers or [CPU_PROVIDER]
        self.graph = choose_graph(model_dir, providers, graph, cpu_graph)
        self.session = ort.InferenceSession(os.path.join(model_dir, self.graph), options, providers=providers)

    def split(self, text: str) -> list[Word]:
        return split_words(text, self.apostrophes)

    def predict_words(self, batch_words: Sequence[Sequence[str]]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One onnxruntime call for the batch: intent probabilities [batch, intents] and, per
        utterance, word-level tag probabilities [words, tags] (a word cut off by truncation gets O)."""
        if not batch_words:
            return np.zeros((0, len(self.intents)), dtype=np.float32), []
        input_ids, attention, firsts = encode_words(self.tokenizer, batch_words, self.max_length)
        intent_logits, slot_logits = self.session.run(
            ["intent_logits", "slot_logits"], {"input_ids": input_ids, "attention_mask": attention}
        )
        intent_probs = softmax(intent_logits.astype(np.float32))
        slot_probs = softmax(slot_logits.astype(np.float32))
        outside = np.zeros(len(self.slot_tags), dtype=np.float32)
        outside[self.slot_tags.index("O")] = 1.0
        word_probs: list[np.ndarray] = []
        for row, words in enumerate(batch_words):
            positions = firsts[row, : len(words)]
            probs = slot_probs[row, np.clip(positions, 0, None)]
            probs[positions < 0] = outside
            word_probs.append(probs)
        return intent_probs, word_probs

    def rank_intents(self, probs: np.ndarray) -> list[tuple[str, float]]:
        """The intents of one text, the decision first: by probability, except that the out-of-scope
        intent (when the model has one) leads when it wins or the best in-scope probability is under
        the threshold; its score is then 1 - that probability."""
        order = np.argsort(-probs, kind="stable")
        ranked = [(self.intents[i], float(probs[i])) for i in order]
        if not self.out_of_scope:
            return ranked
        in_scope = [(name, p) for name, p in ranked if name != self.out_of_scope]
        best = in_scope[0][1] if in_scope else 0.0
        if ranked[0][0] == self.out_of_scope or best < self.out_of_scope_threshold:
            return [(self.out_of_scope, 1.0 - best), *in_scope]
        return ranked

    def decode_best(self, word_probs: np.ndarray) -> np.ndarray:
        """Tag indices per word: the best valid BIO sequence (no I-x without a B-x before it)."""
        return viterbi_bio(word_probs, self._start, self._allowed)

    def decode_tags(self, word_probs: np.ndarray) -> list[str]:
        return [self.slot_tags[i] for i in self.decode_best(word_probs)]

    def analyze(self, texts: Sequence[str]) -> list[Analysis]:
        """Intents and slot spans for each text (one model call for all). Raises ValueError if a
        text has no words."""
        batch_words = [self.split(text) for text in texts]
        for text, words in zip(texts, batch_words, strict=True):
            if not words:
                raise ValueError(f"text has no words: {text!r}")
        intent_probs, word_probs = self.predict_words([[w.text for w in words] for words in batch_words])
        results = []
        for row, words in enumerate(batch_words):
            ranked = self.rank_intents(intent_probs[row])
            best = self.decode_best(word_probs[row])
            tags = [self.slot_tags[i] for i in best]
            confidence = word_probs[row][np.arange(len(best)), best]
            spans = [
                Span(kind, words[a].start, words[b - 1].end, float(confidence[a:b].mean()))
                for kind, a, b in tags_to_spans(tags)
            ]
            results.append(
                Analysis(
                    intents=[name for name, _ in ranked],
                    intent_scores=[p for _, p in ranked],
                    spans=spans,
                    words=words,
                    word_tags=tags,
                )
            )
        return results
