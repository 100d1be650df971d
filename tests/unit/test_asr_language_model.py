"""The domain n-gram LM (estimated here, written as ARPA, read by KenLM) and its fusion in the beam."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pipelines.asr.ngram import build_arpa
from pipelines.asr.triton_config import parameters, set_parameter
from rivulet.asr.decoding import BeamDecoder
from rivulet.asr.language_model import FusionWeights, LanguageModel, LanguageModels
from tests.unit.test_asr_decoding import VOCAB, ambiguous, frames, spell

SENTENCES = [
    "turn on the lights",
    "turn off the lights",
    "turn on the radio",
    "set a timer for five minutes",
    "set a timer for two minutes",
    "what is the weather",
    "five",
    "two",
    "nine",
]


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> LanguageModel:
    path = tmp_path_factory.mktemp("lm") / "lm.arpa"
    counts = build_arpa(SENTENCES, path, order=3)
    assert counts[1] == len({w for s in SENTENCES for w in s.split()}) + 3  # + <s> </s> <unk>
    return LanguageModel.load(path)


@pytest.mark.parametrize("history", [[], ["turn"], ["turn", "on"], ["set", "a"], ["for", "two"], ["radio"]])
def test_every_context_is_a_probability_distribution(lm: LanguageModel, history: list[str]):
    state = lm.begin()
    for word in history:
        state, _ = lm.score(state, word)
    total = sum(math.exp(lm.score(state, w)[1]) for w in [*lm.words, "</s>", "<unk>"])
    assert total == pytest.approx(1.0, abs=1e-4)


def test_seen_continuations_outrank_unseen_ones(lm: LanguageModel):
    _, seen = lm.score(lm.score(lm.begin(), "turn")[0], "on")
    _, unseen = lm.score(lm.score(lm.begin(), "turn")[0], "minutes")
    assert seen > unseen + 2.0
    assert lm.end(lm.score(lm.begin(), "five")[0]) > lm.end(lm.score(lm.begin(), "set")[0])
    assert "tur" in lm.prefixes and "turx" not in lm.prefixes


def test_the_lm_spells_a_word_the_acoustics_leave_open(lm: LanguageModel):
    # acoustically "fiv" is a little more likely than "five"; the LM knows only "five"
    spec = [*spell("fiv")[:-2], {"e": 0.4, "<blank>": 0.6}, "<blank>", "<blank>"]
    logprobs = frames(spec)
    plain = BeamDecoder(VOCAB, beam_size=8)
    plain.advance(logprobs, 0)
    fused = BeamDecoder(VOCAB, beam_size=8, lm=lm)
    fused.advance(logprobs, 0)
    assert plain.best()[0].text == "fiv"
    assert fused.best()[0].text == "five"


def test_the_lm_picks_the_word_that_fits_the_sentence(lm: LanguageModel):
    # "turn on the ?ights": l and n equally likely; "lights" follows "the" in the LM, "nights" never
    head = frames(spell("turn on the "))
    tail = ambiguous("lights", "nights", 0.5)
    fused = BeamDecoder(VOCAB, beam_size=8, lm=lm)
    fused.advance(np.concatenate([head, tail]), 0)
    assert fused.best()[0].text == "turn on the lights"


def test_unknown_words_survive_when_the_audio_is_clear(lm: LanguageModel):
    decoder = BeamDecoder(VOCAB, beam_size=8, lm=lm, weights=FusionWeights(oov_penalty=-6.0))
    decoder.advance(frames(spell("call zoe")), 0)
    assert decoder.best()[0].text == "call zoe"


def test_an_unreadable_lm_is_reported_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    bad = tmp_path / "broken.arpa"
    bad.write_text("not an arpa file\n")
    models = LanguageModels()
    assert models.get(bad) is None
    assert models.get(tmp_path / "missing.arpa") is None
    assert "decoding without it" in caplog.text


def test_set_parameter_adds_or_replaces_the_lm_parameter(tmp_path: Path):
    config = tmp_path / "config.pbtxt"
    config.write_text('name: "m"\nparameters { key: "tokenizer" value: { string_value: "char" } }\n')
    set_parameter(config, "lm/a.arpa")
    set_parameter(config, "lm/b.arpa")
    text = config.read_text()
    assert text.count('"language_model"') == 1 and '"lm/b.arpa"' in text and '"tokenizer"' in text


def test_domain_lm_is_built_from_train_splits_and_named_in_the_config(tmp_path: Path):
    from pipelines.asr import domain_lm

    (tmp_path / "config.pbtxt").write_text('name: "asr_streaming"\n')
    stats = domain_lm.build(tmp_path)
    assert parameters(tmp_path / "config.pbtxt") == {"language_model": domain_lm.LM_FILE}
    lm = LanguageModel.load(tmp_path / domain_lm.LM_FILE)
    assert {"timer", "weather", "seven", "playlist"} <= lm.words
    assert stats["ngrams"][3] > 10_000 and stats["sentences"]["snips"] > 10_000
    overlap = stats["test_sentences_also_in_train_splits"]
    assert overlap["assistant_test"] <= 0.01 * overlap["assistant_test_total"]


def test_lm_tuning_sentences_are_in_neither_the_lm_nor_the_test_sets():
    from pipelines.asr.domain_lm import corpus
    from pipelines.asr.texts import assistant_commands, snips_sentences
    from pipelines.asr.tune_lm import dev_texts

    dev = dev_texts()
    lm_text = {s for group in corpus().values() for s in group}
    tests = set(snips_sentences("test")) | set(assistant_commands("test"))
    for name in ("commands", "snips"):
        sentences = set(dev[name])
        assert len(sentences) == 100
        # SNIPS has a few sentences in more than one split, and the assistant's short answers ("no",
        # "right", "many thanks") come out of every split's templates; nothing else may be shared
        assert len(sentences & lm_text) <= 8 and not sentences & tests


def _asr_model_info(language_model: str = "lm/a.arpa", **extra: str):
    import json as _json

    from rivulet.core.triton import ModelInfo

    params = {
        "rivulet_task": "asr_streaming",
        "vocabulary": _json.dumps(list(VOCAB.tokens)),
        "blank_index": "0",
        "language_model": language_model,
        **extra,
    }
    return ModelInfo("asr_streaming", "1", params)


def test_the_catalog_loads_a_models_lm_from_the_repository_with_its_tuned_weights(tmp_path: Path):
    from rivulet.asr.catalog import ModelCatalog

    build_arpa(SENTENCES, tmp_path / "asr_streaming" / "lm" / "a.arpa")
    catalog = ModelCatalog("asr_streaming", "triton:8001", tmp_path)
    catalog.update([_asr_model_info(lm_alpha="0.7", lm_beta="3", lm_oov_penalty="-12")])
    model = catalog.select()
    assert model.language_model is not None and "lights" in model.language_model.words
    assert model.fusion == FusionWeights(0.7, 3.0, -12.0)
    catalog.update([_asr_model_info()])  # a refresh reuses the loaded LM
    assert catalog.select().language_model is model.language_model


@pytest.mark.parametrize("settings", [{}, {"asr_language_models": False}])
def test_without_a_repository_or_with_lms_off_the_service_decodes_without_one(
    tmp_path: Path, settings: dict, caplog: pytest.LogCaptureFixture
):
    from rivulet.asr.service import AsrService
    from rivulet.asr.settings import AsrSettings

    build_arpa(SENTENCES, tmp_path / "asr_streaming" / "lm" / "a.arpa")
    if settings:
        settings = {**settings, "asr_model_repository": tmp_path}
    service = AsrService(AsrSettings(**settings))
    service.catalog.update([_asr_model_info()])
    assert service.catalog.select().language_model is None
    assert "decoding without it" in caplog.text
