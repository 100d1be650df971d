"""Punctuation and capitalization runtime: word labels, windows, onnxruntime, and rewriting the text.

Plain Python (numpy, onnxruntime, tokenizers only): it runs inside Triton's python backend and in
`pipelines.punct` (training reads its labels from punctuated text with `word_labels`, evaluation
scores the exported ONNX through `PunctCapitRuntime`), so the label and decode logic lives here once.
Words are split, lowercased and tokenized exactly as the intent model does it (`intent_slot.py`
next to this file: `split_words`, `encode_words`, `softmax`).

Per word the model predicts the mark that follows it (`punct_labels`, e.g. O , . ?) and its case
(`capit_labels`: O as written, U first letter upper, A all upper). Rewriting never removes or
lowers anything the text already has: it raises case, and adds a mark only after a word that is
not already followed by one, so "09:45 A.M." and "$103" pass through unchanged.

Files next to this module (written by `python -m pipelines.punct build`):
  model.onnx      inputs input_ids, attention_mask (int64 [batch, seq]);
                  outputs punct_logits [batch, seq, marks], capit_logits [batch, seq, cases]
  tokenizer.json  a `tokenizers` fast tokenizer whose post-processor adds [CLS] ... [SEP]
  labels.json     {"punct_labels", "capit_labels", "mark_map", "max_length", "window_words",
                   "window_margin"}
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def _intent_slot():
    """`intent_slot.py` beside this file (word splitting and tokenization shared with the intent model)."""
    name = "rivulet_intent_slot_runtime"
    module = sys.modules.get(name)
    if module is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "intent_slot.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


_shared = _intent_slot()
Word = _shared.Word
split_words = _shared.split_words
encode_words = _shared.encode_words
softmax = _shared.softmax

NO_MARK = "O"
CASE_AS_IS, CASE_FIRST, CASE_ALL = "O", "U", "A"


@dataclass(frozen=True)
class Labelled:
    """A punctuated text read as training labels: its words, the mark after each, each word's case."""

    words: list[Word]
    marks: list[str]
    cases: list[str]


def case_of(word: str) -> str:
    """A (two or more letters, all upper), U (first letter upper) or O."""
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return CASE_AS_IS
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return CASE_ALL
    return CASE_FIRST if letters[0].isupper() else CASE_AS_IS


def _token_end(text: str, position: int) -> int:
    while position < len(text) and not text[position].isspace():
        position += 1
    return position


def mark_after(text: str, word: Word, mark_map: Mapping[str, str]) -> str:
    """The label of the first mapped punctuation character between the word and the next space."""
    for char in text[word.end : _token_end(text, word.end)]:
        if char in mark_map:
            return mark_map[char]
    return NO_MARK


def word_labels(text: str, mark_map: Mapping[str, str]) -> Labelled:
    """Words of a punctuated, cased text with the mark after each (`mark_map`: character → label)
    and each word's case."""
    words = split_words(text, "keep")
    return Labelled(
        words=words,
        marks=[mark_after(text, w, mark_map) for w in words],
        cases=[case_of(text[w.start : w.end]) for w in words],
    )


def with_case(word: str, case: str) -> str:
    """Raise the case of `word` (never lowers it)."""
    if case == CASE_ALL:
        return word.upper()
    if case == CASE_FIRST:
        for i, char in enumerate(word):
            if char.isalpha():
                return word[:i] + char.upper() + word[i + 1 :]
    return word


def rewrite(
    text: str, words: Sequence[Word], marks: Sequence[str], cases: Sequence[str], mark_map: Mapping[str, str]
) -> str:
    """`text` with each word's case raised and each predicted mark added at the end of its token
    (after closing quotes or brackets) unless a mapped mark is already there."""
    pieces: list[str] = []
    position = 0
    for word, mark, case in zip(words, marks, cases, strict=True):
        end = _token_end(text, word.end)
        pieces.append(text[position : word.start])
        pieces.append(with_case(text[word.start : word.end], case))
        trailing = text[word.end : end]
        pieces.append(trailing)
        if mark != NO_MARK and not any(c in mark_map for c in trailing):
            pieces.append(mark)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def windows(count: int, size: int, margin: int) -> list[tuple[int, int, int, int]]:
    """Overlapping windows over `count` words: (start, end, keep_from, keep_to). Each word's labels
    come from the one window that keeps it, where it has at least `margin` words of context on each
    side (except at the text's ends)."""
    if count <= size:
        return [(0, count, 0, count)]
    step = max(1, size - 2 * margin)
    result = []
    start = 0
    while True:
        end = min(start + size, count)
        keep_from = start if start == 0 else start + margin
        keep_to = end if end == count else end - margin
        result.append((start, end, keep_from, keep_to))
        if end == count:
            return result
        start += step


class PunctCapitRuntime:
    """Loads model.onnx, tokenizer.json and labels.json from one model version directory."""

    def __init__(self, model_dir: str, intra_op_num_threads: int = 1, providers: list | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        with open(os.path.join(model_dir, "labels.json"), encoding="utf-8") as f:
            labels = json.load(f)
        self.punct_labels: list[str] = list(labels["punct_labels"])
        self.capit_labels: list[str] = list(labels["capit_labels"])
        self.mark_map: dict[str, str] = dict(labels["mark_map"])
        self.max_length: int = int(labels["max_length"])
        self.window_words: int = int(labels["window_words"])
        self.window_margin: int = int(labels["window_margin"])
        self.tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_num_threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            os.path.join(model_dir, "model.onnx"), options, providers=providers or ["CPUExecutionProvider"]
        )

    def predict_words(self, batch_words: Sequence[Sequence[str]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(mark probabilities [words, marks], case probabilities [words, cases]) per word list, from
        one onnxruntime call over every window of every list."""
        pieces: list[list[str]] = []
        plan: list[tuple[int, int, int, int, int]] = []  # (row, piece, offset, keep_from, keep_to)
        for row, words in enumerate(batch_words):
            for start, end, keep_from, keep_to in windows(len(words), self.window_words, self.window_margin):
                plan.append((row, len(pieces), start, keep_from, keep_to))
                pieces.append(list(words[start:end]))
        results = [
            (
                np.zeros((len(words), len(self.punct_labels)), dtype=np.float32),
                np.zeros((len(words), len(self.capit_labels)), dtype=np.float32),
            )
            for words in batch_words
        ]
        if not pieces:
            return results
        input_ids, attention, firsts = encode_words(self.tokenizer, pieces, self.max_length)
        punct_logits, capit_logits = self.session.run(
            ["punct_logits", "capit_logits"], {"input_ids": input_ids, "attention_mask": attention}
        )
        punct_probs = softmax(punct_logits.astype(np.float32))
        capit_probs = softmax(capit_logits.astype(np.float32))
        for row, piece, offset, keep_from, keep_to in plan:
            positions = firsts[piece, keep_from - offset : keep_to - offset]
            marks, cases = results[row]
            marks[keep_from:keep_to] = punct_probs[piece, np.clip(positions, 0, None)]
            cases[keep_from:keep_to] = capit_probs[piece, np.clip(positions, 0, None)]
            marks[keep_from:keep_to][positions < 0] = np.eye(len(self.punct_labels))[0]  # cut off: O
            cases[keep_from:keep_to][positions < 0] = np.eye(len(self.capit_labels))[0]
        return results

    def predict_labels(self, batch_words: Sequence[Sequence[str]]) -> list[tuple[list[str], list[str]]]:
        """The most probable mark and case of every word."""
        return [
            (
                [self.punct_labels[i] for i in marks.argmax(axis=1)],
                [self.capit_labels[i] for i in cases.argmax(axis=1)],
            )
            for marks, cases in self.predict_words(batch_words)
        ]

    def punctuate(self, texts: Sequence[str]) -> list[str]:
        """Each text punctuated and capitalized (one model call for all); a text without words is
        returned as it is."""
        split = [split_words(text, "keep") for text in texts]
        labels = self.predict_labels([[w.text for w in words] for words in split])
        return [
            rewrite(text, words, marks, cases, self.mark_map)
            for text, words, (marks, cases) in zip(texts, split, labels, strict=True)
        ]
