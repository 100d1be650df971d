"""CTC beam search with a word lexicon and KenLM fusion in C++ (flashlight-text's `LexiconDecoder`).

The same shallow fusion as `decoding.BeamDecoder` (each finished word adds
`alpha · ln P(word | history) + beta`), about 7× cheaper, for models with a character vocabulary
that has a word-separator token (" "). Words are spelled by their characters followed by the
separator, as the acoustic model writes them, so a word is finished only where the model puts a
space (or at the end of the utterance: `best()` feeds one frame of pure separator first). The
search is closed-vocabulary: it writes only the LM's words. The service uses it for finals when the
model has an LM and the stream asks for no `speech_contexts` (contextual biasing, and words outside
the LM, need the Python search).

One `Lexicon` per (LM, vocabulary) is built once (`lexicon_for`) and shared by every stream; each
stream has its own `LexiconBeamDecoder` (`reset` / `advance` / `best`, as `BeamDecoder`), which
decodes frame blocks incrementally as they arrive. Finishing the last word ends flashlight's search,
so after a `best()` that is not followed by `reset()` (the endpointer's early EOU result) the next
`advance()` first replays the utterance's frames (about 20 µs a frame).
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import math
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from flashlight.lib.text.decoder import (
    CriterionType,
    LexiconDecoder,
    LexiconDecoderOptions,
    SmearingMode,
    Trie,
)
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from rivulet.asr.decoding import GreedyDecoder, Hypothesis
from rivulet.asr.language_model import DEFAULT_WEIGHTS, LN10, FusionWeights, LanguageModel
from rivulet.asr.vocabulary import Vocabulary

log = logging.getLogger(__name__)

SEPARATOR = " "
UNK = "<unk>"


def supports(vocabulary: Vocabulary) -> bool:
    """Whether the lexicon search can decode this model: characters, with a word separator."""
    return vocabulary.tokenizer == "char" and SEPARATOR in vocabulary.texts


def _plain_arpa(path: Path) -> Path:
    """KenLM in flashlight reads uncompressed files: a gzipped ARPA is unpacked to a temp file once."""
    if path.suffix != ".gz":
        return path
    directory = Path(tempfile.gettempdir()) / "rivulet-lm"
    directory.mkdir(parents=True, exist_ok=True)
    stat = path.stat()
    target = directory / f"{path.stem}.{stat.st_size}.{stat.st_mtime_ns}"
    if not target.exists():
        partial = target.with_suffix(".partial")
        with gzip.open(path, "rb") as source, partial.open("wb") as sink:
            shutil.copyfileobj(source, sink)
        partial.replace(target)
    return target


class Lexicon:
    """The LM's words spelled in the model's tokens (a trie), and the LM loaded by flashlight."""

    def __init__(self, lm: LanguageModel, vocabulary: Vocabulary) -> None:
        if not supports(vocabulary):
            raise ValueError("the lexicon search needs a character vocabulary with a ' ' token")
        self.vocabulary = vocabulary
        self.separator = vocabulary.texts.index(SEPARATOR)
        index = {text: i for i, text in enumerate(vocabulary.texts) if len(text) == 1}
        words = sorted(w for w in lm.words if all(ch in index for ch in w))
        self.words = Dictionary([*words, UNK])
        self.words.set_default_index(self.words.get_index(UNK))
        self.unk = self.words.get_index(UNK)
        self.lm = KenLM(str(_plain_arpa(lm.path)), self.words)
        self.trie = Trie(vocabulary.size, self.separator)
        start = self.lm.start(False)
        for i, word in enumerate(words):
            _, score = self.lm.score(start, i)
            self.trie.insert([index[ch] for ch in word] + [self.separator], i, score)
        self.trie.smear(SmearingMode.MAX)
        log.info("lexicon search: %d of the LM's %d words spelled", len(words), len(lm.words))


@lru_cache(maxsize=8)
def lexicon_for(lm: LanguageModel, vocabulary: Vocabulary) -> Lexicon | None:
    """The shared lexicon of an LM for a model's vocabulary; None where the search cannot be used."""
    if not supports(vocabulary):
        return None
    try:
        return Lexicon(lm, vocabulary)
    except (OSError, RuntimeError, ValueError) as exc:
        log.warning("lexicon search unavailable for %s, using the Python beam search: %s", lm.path, exc)
        return None


@dataclass(frozen=True)
class LexiconSearch:
    """What a stream's lexicon decoder is made of: the shared lexicon, weights and beam."""

    lexicon: Lexicon
    weights: FusionWeights = DEFAULT_WEIGHTS
    beam_size: int = 64
    beam_threshold: float = 10.0

    def decoder(self) -> LexiconBeamDecoder:
        return LexiconBeamDecoder(self.lexicon, self.beam_size, self.weights, self.beam_threshold)


class LexiconBeamDecoder:
    """Incremental lexicon-constrained CTC beam search over frame blocks (see the module doc)."""

    def __init__(
        self,
        lexicon: Lexicon,
        beam_size: int = 64,
        weights: FusionWeights = DEFAULT_WEIGHTS,
        beam_threshold: float = 10.0,
    ) -> None:
        self.lexicon = lexicon
        self.vocabulary = lexicon.vocabulary
        options = LexiconDecoderOptions(
            beam_size=beam_size,
            beam_size_token=min(beam_size, self.vocabulary.size),
            beam_threshold=beam_threshold,
            lm_weight=weights.alpha * LN10,  # KenLM scores in log10, the weights are for ln
            word_score=weights.beta,
            unk_score=-math.inf,
            sil_score=0.0,
            log_add=True,
            criterion_type=CriterionType.CTC,
        )
        self._decoder = LexiconDecoder(
            options,
            lexicon.trie,
            lexicon.lm,
            lexicon.separator,
            self.vocabulary.blank,
            lexicon.unk,
            [],
            False,
        )
        self._end = np.full((1, self.vocabulary.size), -1e4, dtype=np.float32)
        self._end[0, lexicon.separator] = 0.0
        self.reset()

    def reset(self) -> None:
        self._decoder.decode_begin()
        self._logprobs: list[np.ndarray] = []
        self._frame_start = 0
        self._ended = False  # best() finished the search: replay before going on

    def _step(self, logprobs: np.ndarray) -> None:
        block = np.ascontiguousarray(logprobs, dtype=np.float32)
        self._decoder.decode_step(block.ctypes.data, block.shape[0], block.shape[1])

    def advance(self, logprobs: np.ndarray, frame_start: int) -> None:
        if not len(logprobs):
            return
        if not self._logprobs:
            self._frame_start = frame_start
        if self._ended:
            self._decoder.decode_begin()
            self._step(np.concatenate(self._logprobs))
            self._ended = False
        block = np.asarray(logprobs, dtype=np.float32)
        self._step(block)
        self._logprobs.append(block)

    def best(self, n: int = 1) -> list[Hypothesis]:
        """The `n` best distinct transcripts so far, the last word finished (see the module doc)."""
        if not self._logprobs:
            return []
        logprobs = np.concatenate(self._logprobs)
        if self._ended:  # asked twice with no frames between: the same answer
            self._decoder.decode_begin()
            self._step(logprobs)
        self._step(self._end)
        self._decoder.decode_end()
        self._ended = True
        results = self._decoder.get_all_final_hypothesis()
        seen: set[str] = set()
        out: list[Hypothesis] = []
        for result in results:
            hypothesis = self._hypothesis(result.tokens, result.score, logprobs)
            if hypothesis.text in seen:
                continue
            seen.add(hypothesis.text)
            out.append(hypothesis)
            if len(out) == n:
                break
        return out

    def _hypothesis(self, path: list[int], score: float, logprobs: np.ndarray) -> Hypothesis:
        """From a result's path (a token per frame, padded by one at each end) to tokens with spans."""
        frames = np.asarray(path[1 : 1 + len(logprobs)])
        collapsed = GreedyDecoder(self.vocabulary)
        collapsed.follow(frames, logprobs[np.arange(len(frames)), frames], self._frame_start)
        return dataclasses.replace(collapsed.hypothesis(), score=score)
