"""The serving runtime's text handling: word splitting, sub-token alignment and BIO -> span decoding."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from pipelines.nlu.runtime import intent_slot

rt = intent_slot()


def words(text: str, apostrophes: str = "split") -> list[tuple[str, str]]:
    """(model word, original text under its offsets)"""
    return [(w.text, text[w.start : w.end]) for w in rt.split_words(text, apostrophes)]


def test_split_words_drops_edge_punctuation_and_lowercases() -> None:
    text = 'Play "Hello" by Adele, please!'
    assert words(text) == [
        ("play", "Play"),
        ("hello", "Hello"),
        ("by", "by"),
        ("adele", "Adele"),
        ("please", "please"),
    ]


def test_split_words_offsets_point_into_the_original_text() -> None:
    text = "  Turn ON   the Kitchen lights?! "
    split = rt.split_words(text)
    assert [w.text for w in split] == ["turn", "on", "the", "kitchen", "lights"]
    assert [(w.start, w.end) for w in split] == [(2, 6), (7, 9), (12, 15), (16, 23), (24, 30)]


def test_apostrophes_split_like_snips_or_stay_like_atis() -> None:
    assert words("What's the time, I'd like?") == [
        ("what", "What"),
        ("s", "s"),
        ("the", "the"),
        ("time", "time"),
        ("i", "I"),
        ("d", "d"),
        ("like", "like"),
    ]
    assert words("What’s up") == [("what", "What"), ("s", "s"), ("up", "up")]
    assert words("i'd fly at 7 o'clock", "keep") == [
        ("i'd", "i'd"),
        ("fly", "fly"),
        ("at", "at"),
        ("7", "7"),
        ("o'clock", "o'clock"),
    ]
    assert words("'quoted'") == [("quoted", "quoted")]


def test_inner_punctuation_stays_in_the_word() -> None:
    assert words("wake me at 6:30, ok.") == [
        ("wake", "wake"),
        ("me", "me"),
        ("at", "at"),
        ("6:30", "6:30"),
        ("ok", "ok"),
    ]


def test_only_punctuation_or_blank_gives_no_words() -> None:
    assert rt.split_words("  ?! ... ") == []
    assert rt.split_words("") == []
    with pytest.raises(ValueError):
        rt.split_words("hi", "sometimes")


def test_tags_to_spans_reads_bio_like_conlleval() -> None:
    assert rt.tags_to_spans(["O", "B-artist", "I-artist", "O", "B-room"]) == [
        ("artist", 1, 3),
        ("room", 4, 5),
    ]
    # an I- without a B- of the same type opens a new span
    assert rt.tags_to_spans(["I-time", "I-time", "I-date"]) == [("time", 0, 2), ("date", 2, 3)]
    # B- after B- of the same type: two spans
    assert rt.tags_to_spans(["B-item", "B-item", "I-item"]) == [("item", 0, 1), ("item", 1, 3)]
    assert rt.tags_to_spans(["O", "O"]) == []
    assert rt.tags_to_spans([]) == []


def tiny_tokenizer() -> Tokenizer:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "play", "the", "kitchen", "light", "##s", "ade", "##le"]
    tokenizer = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return tokenizer


def test_encode_words_marks_each_words_first_sub_token_and_pads() -> None:
    ids, mask, firsts = rt.encode_words(
        tiny_tokenizer(), [["play", "adele"], ["kitchen", "lights", "zzz"]], 16
    )
    assert ids.tolist() == [[2, 4, 9, 10, 3, 0], [2, 6, 7, 8, 1, 3]]
    assert mask.tolist() == [[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]]
    assert firsts.tolist() == [[1, 2, -1], [1, 2, 4]]


def test_encode_words_truncates_but_keeps_the_closing_token() -> None:
    ids, _, firsts = rt.encode_words(tiny_tokenizer(), [["play", "the", "kitchen", "lights"]], 5)
    assert ids.tolist() == [[2, 4, 5, 6, 3]]
    assert firsts.tolist() == [[1, 2, 3, -1]]


def test_decoding_picks_the_best_valid_bio_sequence() -> None:
    tags = ["O", "B-playlist", "I-playlist", "B-entity_name", "I-entity_name"]
    start, allowed = rt.bio_transitions(tags)
    assert (
        not start[2]
        and start[1]
        and allowed[1, 2]
        and allowed[2, 2]
        and not allowed[3, 2]
        and not allowed[0, 4]
    )
    # per-word argmax would read B-entity_name I-playlist I-playlist: two broken spans
    probs = np.array(
        [
            [0.05, 0.40, 0.00, 0.55, 0.00],
            [0.00, 0.00, 0.60, 0.00, 0.40],
            [0.10, 0.00, 0.90, 0.00, 0.00],
        ]
    )
    best = [tags[i] for i in rt.viterbi_bio(probs, start, allowed)]
    assert best == ["B-playlist", "I-playlist", "I-playlist"]
    assert rt.viterbi_bio(np.zeros((0, 5)), start, allowed).tolist() == []
    # a sequence that is already valid is kept as is
    probs = np.eye(5)[[0, 3, 4, 0, 1]] * 0.9 + 0.02
    assert [tags[i] for i in rt.viterbi_bio(probs, start, allowed)] == [
        "O",
        "B-entity_name",
        "I-entity_name",
        "O",
        "B-playlist",
    ]
