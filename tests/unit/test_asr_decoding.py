"""CTC decoding, contextual biasing, endpointing and the recognizer on constructed log-probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from rivulet.asr.biasing import ContextGraph
from rivulet.asr.decoding import BeamDecoder, GreedyDecoder, words_of
from rivulet.asr.endpointing import Endpointer, EndpointingParams, Event
from rivulet.asr.recognizer import Recognizer
from rivulet.asr.vocabulary import Vocabulary

CHARS = ["<blank>", " ", "'", *"abcdefghijklmnopqrstuvwxyz"]
VOCAB = Vocabulary(tuple(CHARS), blank=0, tokenizer="char")


def frames(spec: list[dict[str, float] | str], vocab: Vocabulary = VOCAB) -> np.ndarray:
    """Rows of log-probabilities: a token string means ~certain; a dict spreads probability."""
    rows = []
    for item in spec:
        p = np.full(vocab.size, 1e-6)
        if isinstance(item, str):
            item = {item: 1.0}
        for token, prob in item.items():
            p[vocab.tokens.index(token)] = prob
        rows.append(np.log(p / p.sum()))
    return np.array(rows, dtype=np.float32)


def spell(text: str, silence: int = 2) -> list[str]:
    """CTC frames for text: each character twice, a blank between repeated letters."""
    out = ["<blank>"] * silence
    for i, ch in enumerate(text):
        if i and text[i - 1] == ch:
            out.append("<blank>")
        out += [ch, ch]
    return out + ["<blank>"] * silence


def test_vocabulary_texts_and_normalize():
    assert VOCAB.text([VOCAB.tokens.index(c) for c in "  hi  there "]) == "hi there"
    assert VOCAB.normalize("Turn-ON the Lights!") == "turn on the lights"
    bpe = Vocabulary(("<unk>", "▁se", "ven", "▁t", "en", "<blank>"), blank=5, tokenizer="bpe")
    assert bpe.texts[0] == "" and bpe.texts[1] == " se"
    assert bpe.text([1, 2, 3, 4]) == "seven ten"
    with pytest.raises(ValueError):
        Vocabulary(("a",), blank=3)


def test_greedy_merges_repeats_and_tracks_frames():
    decoder = GreedyDecoder(VOCAB)
    logprobs = frames(spell("hello world"))
    decoder.advance(logprobs[:7], 0)  # across a block boundary
    decoder.advance(logprobs[7:], 7)
    hyp = decoder.hypothesis()
    assert hyp.text == "hello world"
    words = words_of(hyp, VOCAB)
    assert [w.word for w in words] == ["hello", "world"]
    assert words[0].start_frame == 2 and words[0].end_frame < words[1].start_frame
    assert all(0.9 < w.confidence <= 1.0 for w in words)


def test_beam_finds_the_sum_over_alignments_that_greedy_misses():
    # blank is the best token of both frames, so greedy says nothing; but "a" summed over its
    # three alignments (a a, a _, _ a) = 0.39 beats the all-blank path (0.25).
    spec = [{"a": 0.3, "b": 0.2, "<blank>": 0.5}] * 2
    greedy = GreedyDecoder(VOCAB)
    greedy.advance(frames(spec), 0)
    beam = BeamDecoder(VOCAB, beam_size=8)
    beam.advance(frames(spec), 0)
    assert greedy.hypothesis().text == ""
    best = beam.best(3)
    assert [h.text for h in best][:2] == ["a", ""]
    assert np.exp(best[0].score) == pytest.approx(0.39, rel=1e-3)
    assert best[0].score >= best[1].score >= best[2].score


def ambiguous(word_a: str, word_b: str, p_a: float) -> np.ndarray:
    """Frames where word_a and word_b (same length) compete letter by letter."""
    spec: list[dict[str, float] | str] = ["<blank>"]
    for ca, cb in zip(word_a, word_b, strict=True):
        row = {ca: p_a, cb: 1 - p_a} if ca != cb else {ca: 1.0}
        spec += [row, "<blank>"]
    return frames(spec)


def test_boost_turns_a_close_decision_and_negative_boost_lowers():
    logprobs = ambiguous("bat", "pat", 0.6)
    plain = BeamDecoder(VOCAB)
    plain.advance(logprobs, 0)
    assert plain.best()[0].text == "bat"
    graph = ContextGraph.from_speech_contexts([(["Pat"], 10.0)], VOCAB, scale=0.2)
    boosted = BeamDecoder(VOCAB, context=graph)
    boosted.advance(logprobs, 0)
    assert boosted.best()[0].text == "pat"
    penalty = ContextGraph.from_speech_contexts([(["bat"], -10.0)], VOCAB, scale=0.2)
    lowered = BeamDecoder(VOCAB, context=penalty)
    lowered.advance(logprobs, 0)
    assert lowered.best()[0].text == "pat"


def test_boost_needs_whole_words():
    graph = ContextGraph.from_speech_contexts([(["pa"], 50.0)], VOCAB, scale=0.2)
    decoder = BeamDecoder(VOCAB, context=graph)
    decoder.advance(ambiguous("bat", "pat", 0.6), 0)
    # "pa" is boosted but "pat" is a different word: the partial bonus is taken back
    assert decoder.best()[0].text == "bat"


def test_context_graph_phrase_and_revocation():
    graph = ContextGraph([("turn on", 4.0), ("seven", 5.0)])
    from rivulet.asr.biasing import ContextState

    state, delta = graph.step(ContextState(), "turn on")
    assert delta == pytest.approx(4.0 * 7 / 7)
    state, end = graph.step(state, " ")
    assert end == pytest.approx(0.0) and state.held == 0.0  # committed, back at a word start
    state, delta = graph.step(ContextState(), "sev")
    assert delta == pytest.approx(3.0)
    state, delta2 = graph.step(state, "x")
    assert delta2 == pytest.approx(-3.0)
    assert graph.finish(graph.step(ContextState(), "seven")[0]) == pytest.approx(0.0)
    assert ContextGraph.from_speech_contexts([(["x"], 0.0)], VOCAB, 0.2) is None


def test_endpointer_start_stop_and_eou():
    params = EndpointingParams(
        start_history_ms=120, start_threshold=0.5, stop_history_ms=160, stop_threshold=1.0,
        stop_history_eou_ms=80, stop_threshold_eou=1.0,
    )  # fmt: skip
    ep = Endpointer(params, frame_ms=40)
    events = [ep.push(s) for s in [False, True, False, True, True, False, False, False, False]]
    assert events == [None, None, None, Event.START, None, None, Event.EOU, None, Event.END]
    assert not ep.active
    assert EndpointingParams(stop_history_ms=0, start_threshold=2).problems() == [
        "stop_history=0 must be > 0 ms",
        "start_threshold=2 must be a fraction from 0.0 to 1.0",
    ]


def test_recognizer_splits_utterances_and_keeps_the_first_word():
    params = EndpointingParams(start_history_ms=120, start_threshold=0.3, stop_history_ms=200)
    rec = Recognizer(VOCAB, params, 40, interim_results=True, max_alternatives=2)
    logprobs = frames(spell("one", 3) + ["<blank>"] * 6 + spell("two", 2))
    results = []
    for start in range(0, len(logprobs), 4):  # blocks of 4 frames as from 160 ms chunks
        results += rec.process(logprobs[start : start + 4], start)
    results += rec.finish()
    finals = [r.alternatives[0].text for r in results if r.is_final]
    assert finals == ["one", "two"]
    interims = [r for r in results if not r.is_final]
    assert interims and all(0.0 <= r.stability <= 1.0 for r in interims)
    first = next(r for r in results if r.is_final)
    word = words_of(first.alternatives[0], VOCAB)[0]
    assert word.start_frame == 3  # the frames before START were decoded too


@pytest.mark.parametrize("use_beam", [True, False])
def test_short_speech_that_never_started_still_gets_a_final(use_beam):
    params = EndpointingParams(start_history_ms=400, start_threshold=0.9)
    rec = Recognizer(VOCAB, params, 40, use_beam=use_beam)
    assert (rec.beam is not None) == use_beam
    assert rec.process(frames(spell("no", 1)), 0) == []
    assert [r.alternatives[0].text for r in rec.finish()] == ["no"]
    silent = Recognizer(VOCAB, params, 40, use_beam=use_beam)
    silent.process(frames(["<blank>"] * 10), 0)
    assert silent.finish() == []
    # with the stream closed 400 ms after it (the dialog's VAD ends such a turn), the word is
    # still decoded: the frames kept before an utterance reach back a second, not one start window
    late = Recognizer(VOCAB, params, 40, use_beam=use_beam)
    assert late.process(frames(spell("no", 1) + ["<blank>"] * 10), 0) == []
    assert [r.alternatives[0].text for r in late.finish()] == ["no"]


def test_beam_is_used_when_boosting_or_alternatives_need_it():
    graph = ContextGraph([("pat", 2.0)])
    assert Recognizer(VOCAB, EndpointingParams(), 40, use_beam=False, context=graph).beam is not None
    assert Recognizer(VOCAB, EndpointingParams(), 40, use_beam=False, max_alternatives=2).beam is not None
