"""ASR transcript normalization (pipelines.asr.text): what the model learns to write and WER compares."""

from __future__ import annotations

import pytest

from pipelines.asr.text import VOCABULARY, normalize, number_words, ordinal_words, year_words


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Set an alarm for 7:30 PM", "set an alarm for seven thirty pm"),
        ("wake me at 6:05", "wake me at six oh five"),
        ("it's 10:00", "it's ten o'clock"),
        ("what s the weather", "what's the weather"),  # SNIPS tokenization joined back
        ("i don t know and i m sure it s fine", "i don't know and i'm sure it's fine"),
        ("a t shirt", "a t shirt"),  # a lone "t" is a word unless it follows don/can/...
        ("play 50 clásicos from 1990", "play fifty clasicos from nineteen ninety"),
        ("rate it 3.5 of 6", "rate it three point five of six"),
        ("on the 21st & 2nd", "on the twenty first and second"),
        ("100% of 12,500", "one hundred percent of twelve thousand five hundred"),
        ("call 007", "call zero zero seven"),
        ('Rock–n–Roll!!  "Hits"', "rock n roll hits"),
        ("追 楽", ""),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_normalized_text_uses_only_the_vocabulary():
    text = normalize("Hello, World! 2005 ½ café — it’s 3rd; #1 @ 9:45 + x=y")
    assert set(text) <= set(VOCABULARY)
    assert "  " not in text and text == text.strip()


def test_number_words():
    assert number_words(0) == "zero"
    assert number_words(19) == "nineteen"
    assert number_words(40) == "forty"
    assert number_words(101) == "one hundred one"
    assert number_words(2405) == "two thousand four hundred five"
    assert number_words(3_000_017) == "three million seventeen"
    assert (
        ordinal_words(12) == "twelfth"
        and ordinal_words(30) == "thirtieth"
        and ordinal_words(23) == "twenty third"
    )
    assert (
        year_words(1905) == "nineteen oh five"
        and year_words(2000) == "two thousand"
        and year_words(1800) == "eighteen hundred"
    )
