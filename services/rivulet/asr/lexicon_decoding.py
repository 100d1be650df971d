"""CTC beam search with a word lexicon and KenLM fusion in C++ (flashlight-text's `LexiconDecoder`).

The same shallow fusion as `decoding.BeamDecoder` (each finished word adds
`alpha · ln P(word | history) + beta`), about 7× cheaper, for models with a character vocabulary
that has a word-separator token (" "). Words are spelled by their characters followed by the
separator, as the acoustic model writes them, so a word is finished only where the model puts a
space (or at the end of the utterance: `best()` feeds one frame of pure separator first). The
search is closed-vocabulary: it writes only the LM's words (and any boosted word). The service uses
it for finals when the model has an LM.

Word boosting (Riva `speech_contexts`): `LexiconSearch.boosted` makes a lexicon whose KenLM is a copy
of the LM with the boosted words mixed in (`boost_arpa`): a word boosted by b is at least
`b × asr_boost_floor_per_unit` likely (at most `MAX_FLOOR`) after any history, a word the LM lacks
is added and spelled. A floor, rather than a bonus added to the word's log probability, does not
reward writing more boosted words: with the numbers one to twelve boosted, an added bonus turned
"tomorrow" into "two one"; a floor helps the words the LM found unlikely and leaves likely ones be.
A negative boost costs `b × asr_boost_scale` nats per word. One lexicon per distinct set of boosts
is built (about half a second for the embedded LM, in a worker thread) and cached (`lexicon_for`),
so a client that boosts the same words on every stream pays it once.

One `Lexicon` per (LM, vocabulary) is built once (`lexicon_for`) and shared by every stream; each
stream has its own `LexiconBeamDecoder` (`reset` / `advance` / `best`, as `BeamDecoder`), which
decodes frame blocks incrementally as they arrive. Finishing the last word ends flashlight's search,
so after a `best()` that is not followed by `reset()` (the endpointer's early EOU result) the next
`advance()` first replays the utterance's frames (about 20 µs a frame).
"""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import logging
import math
import shutil
import tempfile
from collections.abc import Mapping
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
MAX_FLOOR = 0.5  # a boosted word is never made more likely than this after every history


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


def boost_arpa(
    source: Path, target: Path, floors: Mapping[str, float], penalties: Mapping[str, float] | None = None
) -> None:
    """Copy the ARPA file `source` to `target` with words boosted. A word with a floor q (0-1) is
    mixed in: every n-gram ending in it gets P' = (1 - q) P + q, so the word is at least that
    likely after any history the LM has seen (after others, scaled by the history's backoff
    weight); a word the LM lacks is added as a unigram of probability q. A penalty (log10, < 0)
    is added to every n-gram ending in the word. Backoff weights are kept; no probability goes
    above 1, as KenLM requires."""
    penalties = penalties or {}
    lines = source.read_text(encoding="utf-8").split("\n")
    marks = [i for i, line in enumerate(lines) if line.startswith("\\")] + [len(lines)]
    sections = [(lo + 1, hi) for lo, hi in itertools.pairwise(marks) if lines[lo][1:2].isdigit()]
    unigrams: set[str] = set()
    for order, (lo, hi) in enumerate(sections, start=1):
        for i in range(lo, hi):
            if not lines[i]:
                continue
            fields = lines[i].split("\t")
            word = fields[1].rsplit(" ", 1)[-1]
            if order == 1:
                unigrams.add(word)
            if word in floors:
                q = floors[word]
                fields[0] = f"{math.log10((1 - q) * 10 ** float(fields[0]) + q):.6f}"
            elif word in penalties:
                fields[0] = f"{float(fields[0]) + penalties[word]:.6f}"
            else:
                continue
            lines[i] = "\t".join(fields)
    new = [w for w in floors if w not in unigrams]
    if new:
        header = next(i for i, line in enumerate(lines) if line.startswith("ngram 1="))
        lines[header] = f"ngram 1={int(lines[header].split('=')[1]) + len(new)}"
        start = sections[0][0]
        lines[start:start] = [f"{math.log10(floors[w]):.6f}\t{w}\t0.000000" for w in new]
    target.write_text("\n".join(lines), encoding="utf-8")


class Lexicon:
    """The LM's words spelled in the model's tokens (a trie), and the LM loaded by flashlight;
    with `floors` / `penalties`, the LM with those words boosted (see `boost_arpa`)."""

    def __init__(
        self,
        lm: LanguageModel,
        vocabulary: Vocabulary,
        floors: Mapping[str, float] | None = None,
        penalties: Mapping[str, float] | None = None,
    ) -> None:
        if not supports(vocabulary):
            raise ValueError("the lexicon search needs a character vocabulary with a ' ' token")
        self.source = lm
        self.vocabulary = vocabulary
        self.separator = vocabulary.texts.index(SEPARATOR)
        index = {text: i for i, text in enumerate(vocabulary.texts) if len(text) == 1}

        def spellable(word: str) -> bool:
            return bool(word) and all(ch in index for ch in word)

        spelled = {w for w in lm.words if spellable(w)}
        self.floors = {w: q for w, q in (floors or {}).items() if 0 < q < 1 and spellable(w)}
        self.penalties = {w: p for w, p in (penalties or {}).items() if p < 0 and w in spelled}
        words = sorted(spelled | set(self.floors))
        self.words = Dictionary([*words, UNK])
        self.words.set_default_index(self.words.get_index(UNK))
        self.unk = self.words.get_index(UNK)
        arpa = _plain_arpa(lm.path)
        if self.floors or self.penalties:
            with tempfile.TemporaryDirectory(prefix="rivulet-boost-") as tmp:
                boosted = Path(tmp) / "boosted.arpa"
                boost_arpa(arpa, boosted, self.floors, self.penalties)
                self.lm = KenLM(str(boosted), self.words)  # read into memory: the file can go
        else:
            self.lm = KenLM(str(arpa), self.words)
        self.trie = Trie(vocabulary.size, self.separator)
        start = self.lm.start(False)
        for i, word in enumerate(words):
            _, score = self.lm.score(start, i)
            self.trie.insert([index[ch] for ch in word] + [self.separator], i, score)
        self.trie.smear(SmearingMode.MAX)
        log.info(
            "lexicon search: %d of the LM's %d words spelled, %d boosted",
            len(words),
            len(lm.words),
            len(self.floors) + len(self.penalties),
        )


@lru_cache(maxsize=16)
def lexicon_for(
    lm: LanguageModel,
    vocabulary: Vocabulary,
    floors: tuple[tuple[str, float], ...] = (),
    penalties: tuple[tuple[str, float], ...] = (),
) -> Lexicon | None:
    """The shared lexicon of an LM for a model's vocabulary, with words boosted ((word, value)
    pairs, see `boost_arpa`); None where the search cannot be used."""
    if not supports(vocabulary):
        return None
    try:
        return Lexicon(lm, vocabulary, dict(floors), dict(penalties))
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

    def boosted(
        self, boosts: Mapping[str, float], floor_per_unit: float, scale: float
    ) -> LexiconSearch | None:
        """This search with Riva word boosts: a positive boost b makes the word at least
        `min(MAX_FLOOR, b * floor_per_unit)` likely after any history; a negative one costs
        `b * scale` nats each time the word is written. None where it cannot boost (no LM weight)."""
        if not boosts:
            return self
        lm_weight = self.weights.alpha * LN10
        if lm_weight <= 0:
            return None
        floors = tuple(sorted((w, min(MAX_FLOOR, b * floor_per_unit)) for w, b in boosts.items() if b > 0))
        penalties = tuple(sorted((w, b * scale / lm_weight) for w, b in boosts.items() if b < 0))
        lexicon = lexicon_for(self.lexicon.source, self.lexicon.vocabulary, floors, penalties)
        return dataclasses.replace(self, lexicon=lexicon) if lexicon else None


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

    def leading(self) -> Hypothesis:
        """The best path as it stands, a word in progress included (for interim results): only
        lexicon words, so a stray fragment the final will drop is not shown either."""
        if not self._logprobs:
            return Hypothesis("")
        logprobs = np.concatenate(self._logprobs)
        if self._ended:  # best() finished the search: replay it
            self._decoder.decode_begin()
            self._step(logprobs)
            self._ended = False
        result = self._decoder.get_best_hypothesis(0)
        return self._hypothesis(result.tokens, result.score, logprobs)

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
        frames = np.asarray(path[1 : 1 + len(logprobs)], dtype=np.int64)
        collapsed = GreedyDecoder(self.vocabulary)
        collapsed.follow(frames, logprobs[np.arange(len(frames)), frames], self._frame_start)
        return dataclasses.replace(collapsed.hypothesis(), score=score)
