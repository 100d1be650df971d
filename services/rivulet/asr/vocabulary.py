"""The acoustic model's output tokens, as the service needs them to turn token ids into words.

A Triton ASR model publishes its vocabulary in config.pbtxt (`vocabulary` = JSON list, index i =
LOGPROBS column i; `blank_index`; `tokenizer` = "char" or "bpe"). Every token is reduced to the
text it adds to a transcript: a character tokenizer's " " is the word separator; a SentencePiece
piece's "▁" starts a new word. Decoding, biasing and word timing all work on that text, so the
service never needs the tokenizer model itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

WORD_START = "▁"  # SentencePiece's word-start marker
_SPECIAL = re.compile(r"^<[^>]*>$|^\[[^\]]*\]$")  # <unk>, <pad>, [blank] ... add no text


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...]
    blank: int
    tokenizer: str = "char"

    def __post_init__(self) -> None:
        if not 0 <= self.blank < len(self.tokens):
            raise ValueError(f"blank_index {self.blank} is outside the vocabulary of {len(self.tokens)}")
        if self.tokenizer not in ("char", "bpe"):
            raise ValueError(f"tokenizer {self.tokenizer!r} is not 'char' or 'bpe'")
        texts = []
        for i, token in enumerate(self.tokens):
            if i == self.blank or _SPECIAL.match(token):
                texts.append("")
            elif self.tokenizer == "bpe":
                texts.append(token.replace(WORD_START, " "))
            else:
                texts.append(token)
        object.__setattr__(self, "texts", tuple(texts))
        object.__setattr__(self, "charset", frozenset("".join(texts)) | {" "})

    #: the text each token adds to a transcript, and every character the model can emit
    texts: tuple[str, ...] = field(init=False, repr=False, compare=False)
    charset: frozenset[str] = field(init=False, repr=False, compare=False)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str]) -> Vocabulary:
        """From a model's config.pbtxt parameters (`vocabulary`, `blank_index`, `tokenizer`)."""
        try:
            tokens = json.loads(parameters["vocabulary"])
        except (KeyError, json.JSONDecodeError) as exc:
            raise ValueError(f"model parameter 'vocabulary' is missing or not a JSON list: {exc}") from exc
        blank = int(parameters.get("blank_index", len(tokens)))
        return cls(tuple(str(t) for t in tokens), blank, parameters.get("tokenizer", "char"))

    @property
    def size(self) -> int:
        return len(self.tokens)

    def text(self, token_ids: Sequence[int]) -> str:
        """The transcript of a token sequence: words joined by single spaces."""
        return " ".join("".join(self.texts[t] for t in token_ids).split())

    def normalize(self, phrase: str) -> str:
        """A phrase in the model's alphabet: lower case, characters it cannot emit become spaces."""
        lowered = phrase.lower()
        return " ".join("".join(c if c in self.charset else " " for c in lowered).split())
