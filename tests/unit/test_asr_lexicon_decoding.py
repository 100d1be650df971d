"""The C++ lexicon beam search (flashlight-text) with the same LM fusion as the Python search."""

from __future__ import annotations

import gzip
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from pipelines.asr.ngram import build_arpa
from rivulet.asr.biasing import ContextGraph, word_boosts
from rivulet.asr.catalog import ModelCatalog
from rivulet.asr.decoding import BeamDecoder, words_of
from rivulet.asr.endpointing import EndpointingParams
from rivulet.asr.language_model import FusionWeights, LanguageModel
from rivulet.asr.lexicon_decoding import (
    Lexicon,
    LexiconBeamDecoder,
    LexiconSearch,
    boost_arpa,
    lexicon_for,
    supports,
)
from rivulet.asr.recognizer import Recognizer
from rivulet.asr.vocabulary import Vocabulary
from rivulet.core.triton import ModelInfo
from tests.unit.test_asr_decoding import VOCAB, ambiguous, frames, spell
from tests.unit.test_asr_language_model import SENTENCES


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> LanguageModel:
    path = tmp_path_factory.mktemp("lm") / "lm.arpa"
    build_arpa([*SENTENCES, "café au lait"], path, order=3)
    return LanguageModel.load(path)


@pytest.fixture(scope="module")
def search(lm: LanguageModel) -> LexiconSearch:
    lexicon = lexicon_for(lm, VOCAB)
    assert lexicon is not None
    return LexiconSearch(lexicon, FusionWeights(0.5, 1.0), beam_size=16)


def decode(search: LexiconSearch, logprobs: np.ndarray, n: int = 1, block: int = 4) -> list:
    decoder = search.decoder()
    for start in range(0, len(logprobs), block):
        decoder.advance(logprobs[start : start + block], start)
    return decoder.best(n)


def test_it_spells_the_word_the_acoustics_leave_open(search: LexiconSearch):
    spec = [*spell("fiv")[:-2], {"e": 0.4, "<blank>": 0.6}, "<blank>", "<blank>"]
    assert decode(search, frames(spec))[0].text == "five"


def test_it_picks_the_word_that_fits_the_sentence(search: LexiconSearch):
    logprobs = np.concatenate([frames(spell("turn on the ")), ambiguous("lights", "nights", 0.5)])
    assert decode(search, logprobs)[0].text == "turn on the lights"


def test_it_writes_only_the_lms_words(search: LexiconSearch, lm: LanguageModel):
    # closed vocabulary: a name the LM never saw cannot be written, however clear the audio
    assert "zoe" not in decode(search, frames(spell("call zoe")))[0].text.split()
    text = decode(search, frames(spell("turn on the radio")))[0].text
    assert text == "turn on the radio" and set(text.split()) <= lm.words
    # words with characters the model cannot emit are left out of the lexicon, the rest are in
    assert "café" in lm.words and search.lexicon.words.get_index("café") == search.lexicon.unk
    assert search.lexicon.words.get_index("lait") != search.lexicon.unk


def test_words_times_and_confidences_across_blocks(search: LexiconSearch):
    logprobs = frames(spell("turn on the lights"))
    decoder = search.decoder()
    decoder.advance(logprobs[:7], 100)
    decoder.advance(logprobs[7:], 107)
    best = decoder.best()[0]
    words = words_of(best, VOCAB)
    assert [w.word for w in words] == ["turn", "on", "the", "lights"]
    assert words[0].start_frame == 102  # two frames of silence first
    assert all(a.end_frame <= b.start_frame for a, b in itertools.pairwise(words))
    assert words[-1].end_frame <= 100 + len(logprobs)
    assert all(0.9 < w.confidence <= 1.0 for w in words)


def test_asking_mid_utterance_does_not_change_what_follows(search: LexiconSearch):
    logprobs = frames(spell("set a timer for five minutes"))
    half = 20
    decoder = search.decoder()
    decoder.advance(logprobs[:half], 0)
    early = decoder.best()[0].text
    assert decoder.best()[0].text == early  # asked twice: the same answer
    decoder.advance(logprobs[half:], half)
    assert early and "set a timer for five minutes".startswith(early.rsplit(" ", 1)[0])
    assert decoder.best()[0].text == decode(search, logprobs)[0].text == "set a timer for five minutes"
    decoder.reset()
    assert decoder.best() == []
    decoder.advance(frames(spell("two")), 0)
    assert decoder.best()[0].text == "two"


def test_alternatives_are_distinct_and_ranked(search: LexiconSearch):
    hypotheses = decode(search, ambiguous("five", "nine", 0.5), n=3)
    texts = [h.text for h in hypotheses]
    assert len(set(texts)) == len(texts) >= 2 and {"five", "nine"} <= set(texts)
    assert [h.score for h in hypotheses] == sorted((h.score for h in hypotheses), reverse=True)


def test_a_gzipped_arpa_is_read(tmp_path: Path, lm: LanguageModel):
    packed = tmp_path / "lm.arpa.gz"
    packed.write_bytes(gzip.compress(lm.path.read_bytes()))
    search = LexiconSearch(Lexicon(LanguageModel.load(packed), VOCAB), FusionWeights(0.5, 1.0), 16)
    assert decode(search, frames(spell("what is the weather")))[0].text == "what is the weather"


def test_models_it_cannot_decode_get_none(lm: LanguageModel):
    bpe = Vocabulary(("<unk>", "▁se", "ven", "▁t", "en", "<blank>"), blank=5, tokenizer="bpe")
    no_space = Vocabulary(("<blank>", "a", "b"), blank=0)
    assert not supports(bpe) and not supports(no_space) and supports(VOCAB)
    assert lexicon_for(lm, bpe) is None and lexicon_for(lm, no_space) is None
    with pytest.raises(ValueError, match="character vocabulary"):
        Lexicon(lm, bpe)


def test_the_recognizer_decodes_finals_with_the_lexicon_search_it_is_given(
    search: LexiconSearch, lm: LanguageModel
):
    plain = Recognizer(VOCAB, EndpointingParams(), 40, lm=lm, lexicon_search=search)
    assert isinstance(plain.beam, LexiconBeamDecoder)
    results = plain.process(frames(spell("turn on the lights", silence=12)), 0) + plain.finish()
    assert [r.alternatives[0].text for r in results if r.is_final] == ["turn on the lights"]
    # the open search only where no lexicon search is given (the caller boosts the lexicon's words)
    graph = ContextGraph([("zoe", 4.0)])
    opened = Recognizer(VOCAB, EndpointingParams(), 40, lm=lm, context=graph)
    assert isinstance(opened.beam, BeamDecoder)
    results = opened.process(frames(spell("call zoe", silence=12)), 0) + opened.finish()
    assert [r.alternatives[0].text for r in results if r.is_final] == ["call zoe"]


# -- word boosting (speech_contexts) ----------------------------------------------------------------


def test_boosting_mixes_a_floor_into_every_history(tmp_path: Path, lm: LanguageModel):
    boosted = tmp_path / "boosted.arpa"
    boost_arpa(lm.path, boosted, floors={"radio": 0.2, "zoe": 0.1}, penalties={"lights": -0.5})
    again = LanguageModel.load(boosted)  # KenLM reads it: no probability above 1
    assert again.words == lm.words | {"zoe"}
    assert f"{math.log10(0.1):.6f}\tzoe\t" in boosted.read_text()

    def p(model: LanguageModel, history: list[str], word: str) -> float:
        state = model.begin()
        for w in history:
            state, _ = model.score(state, w)
        return math.exp(model.score(state, word)[1])

    # an n-gram the LM has: mixed with the floor, exactly
    assert p(again, ["on", "the"], "radio") == pytest.approx(
        0.8 * p(lm, ["on", "the"], "radio") + 0.2, rel=1e-4
    )
    for history in ([], ["turn", "on", "the"], ["the"], ["five"], ["set", "a"]):  # seen and backed off
        assert p(again, history, "radio") > p(lm, history, "radio")
        assert p(again, history, "lights") == pytest.approx(p(lm, history, "lights") * 10**-0.5, rel=1e-4)
        assert p(again, history, "timer") == pytest.approx(p(lm, history, "timer"), rel=1e-4)
        assert p(again, history, "zoe") > p(lm, history, "zoe")


def test_a_boost_changes_the_decision_and_can_add_a_word(search: LexiconSearch):
    def boosted(**boosts: float) -> LexiconSearch:
        return search.boosted(boosts, floor_per_unit=1 / 300, scale=0.2)

    close = ambiguous("five", "nine", 0.6)
    assert decode(search, close)[0].text == "five"
    assert decode(boosted(nine=150), close)[0].text == "nine"  # at least 0.5 likely
    assert decode(boosted(five=-150), close)[0].text != "five"  # -30 nats
    # a word the LM lacks is written once it is boosted
    assert "zoe" not in decode(search, frames(spell("turn on zoe")))[0].text.split()
    assert decode(boosted(zoe=30), frames(spell("turn on zoe")))[0].text == "turn on zoe"
    # the same boosts share one lexicon; none at all is the search itself
    assert boosted(zoe=30).lexicon is boosted(zoe=30).lexicon
    assert boosted(zoe=30).lexicon.floors == {"zoe": pytest.approx(0.1)}
    assert search.boosted({}, 1 / 300, 0.2) is search
    # no LM weight to carry a boost: the caller falls back to the open search
    assert LexiconSearch(search.lexicon, FusionWeights(0.0, 1.0)).boosted({"zoe": 30}, 1 / 300, 0.2) is None


def test_phrases_boost_each_of_their_words_by_the_strongest_phrase():
    boosts = word_boosts([(["What about", "tomorrow"], 20.0), (["about"], 40.0), (["no"], -10.0)], VOCAB)
    assert boosts == {"what": 20.0, "about": 40.0, "tomorrow": 20.0, "no": -10.0}


def _catalog(tmp_path: Path, **extra: str) -> tuple[ModelCatalog, ModelInfo]:
    """A catalog holding one model whose LM (built from SENTENCES) is in the repository."""
    build_arpa(SENTENCES, tmp_path / "asr_streaming" / "lm" / "a.arpa")
    params = {
        "rivulet_task": "asr_streaming",
        "vocabulary": json.dumps(list(VOCAB.tokens)),
        "blank_index": "0",
        "language_model": "lm/a.arpa",
        **extra,
    }
    info = ModelInfo("asr_streaming", "1", params)
    catalog = ModelCatalog("asr_streaming", "triton:8001", tmp_path)
    catalog.update([info])
    return catalog, info


def test_the_catalog_builds_the_lexicon_once_with_its_tuned_weights(tmp_path: Path):
    catalog, info = _catalog(tmp_path, lexicon_alpha="0.6", lexicon_beta="-0.5")
    model = catalog.select()
    assert model.lexicon is not None and model.lexicon_fusion == FusionWeights(0.6, -0.5)
    catalog.update([info])
    assert catalog.select().lexicon is model.lexicon


@pytest.mark.parametrize(
    ("setting", "custom", "boost", "expected"),
    [
        ("lexicon", {}, False, LexiconBeamDecoder),
        ("open", {}, False, BeamDecoder),
        ("open", {"lm_search": "lexicon"}, False, LexiconBeamDecoder),
        ("lexicon", {"lm_search": "open"}, False, BeamDecoder),
        ("lexicon", {}, True, LexiconBeamDecoder),  # speech_contexts: the lexicon search, boosted
        ("lexicon", {"lm_search": "open"}, True, BeamDecoder),
    ],
)
def test_each_stream_gets_the_search_its_request_and_the_settings_ask_for(
    tmp_path: Path, setting: str, custom: dict, boost: bool, expected: type
):
    from riva.proto import riva_asr_pb2 as asr

    from rivulet.asr.options import recognition_options
    from rivulet.asr.session import make_recognizer
    from rivulet.asr.settings import AsrSettings

    catalog, _ = _catalog(tmp_path)
    settings = AsrSettings(asr_lm_search=setting)
    config = asr.RecognitionConfig(language_code="en-US", custom_configuration=custom)
    if boost:
        config.speech_contexts.add(phrases=["zoe"], boost=20.0)
    options = recognition_options(config, catalog, settings, streaming=False)
    beam = make_recognizer(options, settings).beam
    assert isinstance(beam, expected)
    if boost and expected is LexiconBeamDecoder:
        assert set(beam.lexicon.floors) == {"zoe"} and not catalog.select().lexicon.floors


def test_a_final_keeps_words_the_model_heard_when_the_lm_prefers_none(search: LexiconSearch):
    """A weakly heard "two" that the LM's weights would rather drop (the empty transcript scores
    best, as a short "yes" can): the final takes the best transcript with words; silence stays
    silent."""
    harsh = LexiconSearch(search.lexicon, FusionWeights(5.0, -10.0), 16, 30.0)
    spec = ["<blank>"] * 12 + [{c: 0.7, "<blank>": 0.3} for c in "ttwwoo"] + ["<blank>"] * 12
    decoder = harsh.decoder()
    decoder.advance(frames(spec), 0)
    assert [h.text for h in decoder.best(2)] == ["", "two"]
    recognizer = Recognizer(VOCAB, EndpointingParams(), 40, lexicon_search=harsh)
    results = recognizer.process(frames(spec), 0) + recognizer.finish()
    assert [r.alternatives[0].text for r in results if r.is_final] == ["two"]
    silent = Recognizer(VOCAB, EndpointingParams(), 40, lexicon_search=harsh)
    assert silent.process(frames(["<blank>"] * 30), 0) + silent.finish() == []


def test_interims_hold_no_stray_fragment_the_final_drops(search: LexiconSearch):
    """A half-heard sound before the words ("te") is in the greedy path, not in the final: interims
    come from the lexicon search's leading path (lexicon words only), so they only ever show what
    the final will keep."""
    noise = [{"t": 0.55, "<blank>": 0.45}, {"e": 0.55, "<blank>": 0.45}, {" ": 0.55, "<blank>": 0.45}]
    logprobs = frames([*noise, *spell("set a timer for five minutes")])
    params = EndpointingParams(start_history_ms=40, start_threshold=0.2, stop_history_ms=400)
    rec = Recognizer(VOCAB, params, 40, interim_results=True, lexicon_search=search)
    results = [
        r for start in range(0, len(logprobs), 4) for r in rec.process(logprobs[start : start + 4], start)
    ]
    results += rec.finish()
    interims = [r.alternatives[0].text for r in results if not r.is_final]
    final = next(r.alternatives[0].text for r in results if r.is_final)
    assert final == "set a timer for five minutes"
    assert interims and not any(i.startswith("te") for i in interims)
    assert all(final.startswith(i.rsplit(" ", 1)[0]) for i in interims)  # they grow into the final
