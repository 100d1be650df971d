"""Punctuation model labels and decoding (models/punct_capit_en/1/punct_capit.py) and its text corpus."""

from __future__ import annotations

import pytest

from pipelines.punct import corpus
from pipelines.punct.runtime import RUNTIME_DIR, punct_capit
from pipelines.punct.triton_config import MODEL_NAME, config_pbtxt

runtime = punct_capit()
MARKS = corpus.mark_map()


def labelled(text: str) -> list[tuple[str, str, str]]:
    result = runtime.word_labels(text, MARKS)
    return list(zip([w.text for w in result.words], result.marks, result.cases, strict=True))


def test_word_labels_read_marks_and_case_from_punctuated_text():
    assert labelled("Well, NASA said: \"Go!\" Really? I'm sure; it's 09:45 A.M. now.") == [
        ("well", ",", "U"),
        ("nasa", "O", "A"),
        ("said", ",", "O"),  # ':' reads as a comma
        ("go", ".", "U"),  # '!' inside the quote reads as a full stop
        ("really", "?", "U"),
        ("i'm", "O", "U"),
        ("sure", ",", "O"),  # ';'
        ("it's", "O", "O"),
        ("09:45", "O", "O"),  # a mark inside a word is not a label
        ("a.m", ".", "A"),
        ("now", ".", "O"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Can you prove that you are self aware?",
        "Hello, my name is Markus Stoinis. How are you?",
        "The NASA launch was on Tuesday, at noon.",
        '"Take nothing but pictures," he said.',
    ],
)
def test_rewrite_with_the_gold_labels_restores_the_text(text):
    words = runtime.split_words(text, "keep")
    gold = runtime.word_labels(text, MARKS)
    bare = " ".join(w.text for w in words)
    assert bare == bare.lower() and not any(c in bare for c in ",.?")
    rebuilt = runtime.rewrite(bare, runtime.split_words(bare, "keep"), gold.marks, gold.cases, MARKS)
    assert rebuilt == text.replace('"', "")  # quotes are not a label: they are neither added nor kept


def test_rewrite_keeps_what_the_text_already_has():
    text = "the train leaves by 09:45 A.M. and arrives in 3 hours, OK"
    words = runtime.split_words(text, "keep")
    marks = ["O"] * len(words)
    marks[words.index(next(w for w in words if w.text == "a.m"))] = "."  # already followed by '.'
    marks[words.index(next(w for w in words if w.text == "hours"))] = "."  # already followed by ','
    marks[-1] = "?"
    cases = ["O"] * len(words)
    cases[0] = "U"
    out = runtime.rewrite(text, words, marks, cases, MARKS)
    assert out == "The train leaves by 09:45 A.M. and arrives in 3 hours, OK?"  # nothing lowered or doubled


CASES = [("hello", "O"), ("Hello", "U"), ("NASA", "A"), ("I", "U"), ("42", "O"), ("McDonald", "U")]


@pytest.mark.parametrize(("word", "case"), CASES)
def test_case_of(word, case):
    assert runtime.case_of(word) == case
    assert runtime.with_case(word.lower(), case) == (word if case != "U" else word.lower().capitalize())


@pytest.mark.parametrize(
    ("count", "size", "margin"), [(5, 40, 8), (40, 40, 8), (41, 40, 8), (250, 40, 8), (99, 10, 3)]
)
def test_windows_label_every_word_once_with_context(count, size, margin):
    kept = []
    for start, end, keep_from, keep_to in runtime.windows(count, size, margin):
        assert 0 <= start <= keep_from < keep_to <= end <= count and end - start <= size
        assert keep_from == 0 or keep_from - start >= margin
        assert keep_to == count or end - keep_to >= margin
        kept.extend(range(keep_from, keep_to))
    assert kept == list(range(count))


def test_clean_entry_keeps_prose_and_drops_attribution_and_formatted_text():
    entry = "Art is the tree of life.  Science is\nthe tree of death.\n\t\t-- Someone"
    assert corpus.clean_entry(entry) == "Art is the tree of life. Science is the tree of death."
    assert corpus.clean_entry("Wait--what?  Yes.") == "Wait, what? Yes."
    assert corpus.clean_entry("BS:\tYou remind me of a man.\nB:\tWhat man?") is None  # dialogue layout
    assert corpus.clean_entry("x = y[1] + z;") is None
    assert corpus.clean_entry("THE END OF THE WORLD IS NIGH.") is None


def test_examples_are_whole_sentences_within_the_window():
    text = "One two three. Four five six seven? Eight nine ten eleven twelve thirteen fourteen."
    examples = corpus.examples_of(text, max_words=5)
    assert [e.words for e in examples] == [
        ("one", "two", "three"),
        ("four", "five", "six", "seven"),
        ("eight", "nine", "ten", "eleven", "twelve"),
        ("thirteen", "fourteen"),
    ]
    assert examples[1].marks == ("O", "O", "O", "?") and examples[1].cases == ("U", "O", "O", "O")


def test_labels_and_marks_come_from_the_data_file():
    assert corpus.punct_labels()[0] == "O" and set(corpus.punct_labels()[1:]) == {",", ".", "?"}
    assert corpus.capit_labels() == ["O", "U", "A"]
    assert set(MARKS.values()) <= set(corpus.punct_labels())


def test_committed_config_is_the_pipelines():
    assert (RUNTIME_DIR.parent / "config.pbtxt").read_text() == config_pbtxt(MODEL_NAME)
