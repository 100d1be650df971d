"""The Whisper engine of the second pass (`models/asr_whisper/1/whisper_engine.py`) in this process,
with the pinned tiny.en weights, on a held-out real speaker: how it scores a forced transcript (what
hints and closed sets are chosen by) and Whisper's continuation after a forced phrase."""

from __future__ import annotations

import ctranslate2
import numpy as np
import pytest
import soundfile

from bench.asr_real_speech import engine_module
from pipelines.asr import real_speech
from rivulet.asr.whisper_weights import prepare
from rivulet.core import audio


@pytest.fixture(scope="module")
def module():
    return engine_module()


@pytest.fixture(scope="module")
def engine(module):
    return module.WhisperEngine(prepare("tiny.en"), cpu_threads=2)


@pytest.fixture(scope="module")
def spoken(engine):
    """A held-out AN4 speaker's clip Whisper writes in many tokens: its encoding, and Whisper's own
    greedy untimed transcript with the exact log-probability of every token and of the end."""
    for clip in real_speech.sample(real_speech.clips("an4", "test"), 40):
        samples, rate = soundfile.read(clip.path, dtype="float32", always_2d=True)
        feats, _ = engine.features([audio.resample(samples[:, 0], rate, 16000)])
        encoded = np.array(engine.model.encode(ctranslate2.StorageView.from_array(feats), to_cpu=True))
        [result] = engine.model.generate(
            ctranslate2.StorageView.from_array(encoded), [engine.prompt], beam_size=1, max_length=448,
            return_logits_vocab=True, suppress_blank=False, suppress_tokens=[],
        )  # fmt: skip
        tokens = list(result.sequences_ids[0])
        steps = [np.asarray(s, dtype=np.float64) for s in result.logits[0]]
        if len(tokens) >= 6 and len(steps) == len(tokens) + 1:
            lsm = [s - s.max() - np.log(np.exp(s - s.max()).sum()) for s in steps]
            logprob = sum(float(st[t]) for st, t in zip(lsm, [*tokens, engine.tokenizer.eot], strict=True))
            return encoded, tokens, logprob
    pytest.fail("no held-out AN4 clip of 6 tokens or more in the sample")


def test_a_long_forced_transcript_is_scored_exactly(engine, spoken):
    """Forcing Whisper's own transcript gives its own log-probability, however many tokens it has
    (CTranslate2 returns max_length // 2 tokens: a budget counted in tokens cut long forms off)."""
    encoded, tokens, logprob = spoken
    [forced] = engine._forced(encoded, [tokens])
    assert forced.whole == pytest.approx(logprob, abs=1e-2)


def test_whisper_continues_after_a_forced_start(engine, spoken):
    """A phrase forced as the start ("four" of "four people") is followed by what Whisper hears next,
    scored over the whole: the greedy transcript again, from its first two tokens."""
    encoded, tokens, logprob = spoken
    [forced] = engine._forced(encoded, [tokens[:2]], budget=len(tokens) + 8)
    assert tokens[:2] + forced.continued == tokens
    assert forced.continued_logprob == pytest.approx(logprob, abs=1e-2)
    # as a whole transcript the start alone is less likely than with what follows it
    assert forced.whole < forced.continued_logprob


def test_phrase_forms_allow_an_answer_to_go_on(module):
    assert module.phrase_forms("four") == [" 4", " 4.", " Four", " Four.", " four"]
    assert " The bedroom" in module.lead_in_forms("bedroom")


def test_a_request_may_ask_for_a_smaller_window(module, engine):
    """A 2 s clip is encoded in Whisper's whole 30 s window by default, in 10 s when its request asks
    (`window_s`); a batch takes the largest window any of its clips needs."""
    clip = np.zeros(2 * 16000, dtype=np.float32)
    assert module.DecodeOptions.from_dict({"window_s": 10}).window_s == 10.0
    assert engine.features([clip])[0].shape[-1] == 3000
    assert engine.features([clip], [10.0])[0].shape[-1] == 1000
    assert engine.features([clip, clip], [10.0, 0.0])[0].shape[-1] == 3000
