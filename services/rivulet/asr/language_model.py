"""A word n-gram language model for the beam search (shallow fusion), queried through KenLM.

An ASR model names its LM in config.pbtxt (`language_model`: a path relative to the model's
directory in the Triton repository, an ARPA file or a KenLM binary); the service reads it from
`RIVULET_ASR_MODEL_REPOSITORY`, the same repository Triton serves. Each completed word adds
`alpha · ln P(word | history) + beta` to a hypothesis. A word in progress that can no longer
become a word the LM knows pays `oov_penalty` once, as soon as that is clear (so misspellings
leave the beam early), which leaves room for names and other words the LM never saw.
"""

from __future__ import annotations

import gzip
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import kenlm

log = logging.getLogger(__name__)

LN10 = math.log(10.0)
_SPECIAL = frozenset({"<s>", "</s>", "<unk>"})


@dataclass(frozen=True)
class FusionWeights:
    alpha: float = 0.5  # LM weight
    beta: float = 1.0  # word insertion bonus (nats per word)
    oov_penalty: float = -6.0  # nats, once per word the LM cannot spell

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str], prefix: str = "lm") -> FusionWeights:
        """A model's tuned weights, else defaults: config.pbtxt `lm_alpha`, `lm_beta`,
        `lm_oov_penalty` for the open-vocabulary search, `lexicon_alpha`, `lexicon_beta` for the
        lexicon search (`prefix="lexicon"`)."""
        return cls(
            float(parameters.get(f"{prefix}_alpha", cls.alpha)),
            float(parameters.get(f"{prefix}_beta", cls.beta)),
            float(parameters.get(f"{prefix}_oov_penalty", cls.oov_penalty)),
        )


DEFAULT_WEIGHTS = FusionWeights()


def _arpa_unigrams(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    words: list[str] = []
    with opener(path, "rt", encoding="utf-8") as lines:
        inside = False
        for line in lines:
            line = line.strip()
            if line == "\\1-grams:":
                inside = True
                continue
            if inside:
                if not line:
                    continue
                if line.startswith("\\"):
                    break
                fields = line.split("\t")
                if len(fields) >= 2:
                    words.append(fields[1])
    return words


class LanguageModel:
    """KenLM plus the set of every prefix of its words (for the early out-of-vocabulary check)."""

    def __init__(self, path: Path, words: list[str] | None = None) -> None:
        self.path = path
        self.model = kenlm.Model(str(path))
        if words is None:
            words = _arpa_unigrams(path) if ".arpa" in path.name else []
        self.words = frozenset(w for w in words if w not in _SPECIAL)
        if not self.words:
            raise ValueError(
                f"{path}: no vocabulary found (a KenLM binary needs its words listed in {path}.words)"
            )
        self.prefixes = frozenset(w[:i] for w in self.words for i in range(1, len(w) + 1))

    @classmethod
    def load(cls, path: Path) -> LanguageModel:
        words_file = path.with_name(path.name + ".words")
        words = words_file.read_text(encoding="utf-8").split() if words_file.exists() else None
        return cls(path, words)

    def begin(self) -> kenlm.State:
        state = kenlm.State()
        self.model.BeginSentenceWrite(state)
        return state

    def score(self, state: kenlm.State, word: str) -> tuple[kenlm.State, float]:
        """(state after `word`, ln P(word | state))."""
        out = kenlm.State()
        return out, self.model.BaseScore(state, word, out) * LN10

    def end(self, state: kenlm.State) -> float:
        """ln P(</s> | state)."""
        return self.model.BaseScore(state, "</s>", kenlm.State()) * LN10


class LanguageModels:
    """LMs by path, loaded once per process (again when the file changes), shared by every stream."""

    def __init__(self) -> None:
        self._loaded: dict[Path, tuple[int, LanguageModel | None]] = {}

    def get(self, path: Path) -> LanguageModel | None:
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            stamp = -1
        cached = self._loaded.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        model: LanguageModel | None = None
        try:
            model = LanguageModel.load(path)
            log.info("language model %s: %d words", path, len(model.words))
        except (OSError, ValueError, RuntimeError) as exc:
            log.warning("language model %s is unusable, decoding without it: %s", path, exc)
        self._loaded[path] = (stamp, model)
        return model
