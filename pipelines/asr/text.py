"""Transcript normalization: what the ASR model is trained to write.

The character vocabulary is lower-case a–z, the apostrophe and the space, so every training and
reference text goes through ``normalize``: numbers, times, ordinals and years are spelled out,
symbols become words or disappear, accents are folded to ASCII, and the SNIPS tokenization of
contractions ("what s", "don t") is joined back ("what's", "don't").
"""

from __future__ import annotations

import re
import unicodedata

from rivulet.asr.transcript_forms import cardinal, ordinal

VOCABULARY: tuple[str, ...] = (" ", *"abcdefghijklmnopqrstuvwxyz", "'")

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "@": " at ", "=": " equals ", "#": " number "}
_CONTRACTION_TAILS = {"s", "t", "m", "re", "ll", "ve", "d"}
_CONTRACTION_HEADS_T = {
    "don",
    "can",
    "won",
    "isn",
    "aren",
    "didn",
    "doesn",
    "wasn",
    "weren",
    "shouldn",
    "couldn",
    "wouldn",
    "haven",
    "hasn",
    "hadn",
    "ain",
    "mustn",
    "needn",
}


def number_words(n: int) -> str:
    """An integer in words: 2405 -> "two thousand four hundred five" (the ASR service's reading)."""
    return "minus " + cardinal(-n) if n < 0 else cardinal(n)


def ordinal_words(n: int) -> str:
    """21 -> "twenty first", 12 -> "twelfth"."""
    return ordinal(n)


def year_words(n: int) -> str:
    """1990 -> "nineteen ninety", 2005 -> "two thousand five", 1905 -> "nineteen oh five"."""
    high, low = divmod(n, 100)
    if 2000 <= n < 2010 or (low == 0 and high % 10 == 0):
        return number_words(n)
    if low == 0:
        return number_words(high) + " hundred"
    return number_words(high) + " " + (number_words(low) if low >= 10 else "oh " + _ONES[low])


def digit_words(digits: str) -> str:
    """ "0712" -> "zero seven one two"."""
    return " ".join(_ONES[int(d)] for d in digits)


def _spell_number(token: str) -> str:
    if len(token) > 1 and token.startswith("0"):
        return digit_words(token)
    n = int(token)
    if len(token) == 4 and 1100 <= n <= 2099:
        return year_words(n)
    if len(token) > 9:
        return digit_words(token)
    return number_words(n)


def _time(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    if minute == 0:
        return f" {number_words(hour)} o'clock "
    if minute < 10:
        return f" {number_words(hour)} oh {_ONES[minute]} "
    return f" {number_words(hour)} {number_words(minute)} "


def _decimal(match: re.Match[str]) -> str:
    return f" {_spell_number(match.group(1))} point {digit_words(match.group(2))} "


def _ordinal(match: re.Match[str]) -> str:
    return f" {ordinal_words(int(match.group(1)))} "


def _join_contractions(words: list[str]) -> list[str]:
    out: list[str] = []
    for word in words:
        if out and word in _CONTRACTION_TAILS and (word != "t" or out[-1] in _CONTRACTION_HEADS_T):
            out[-1] += "'" + word
        else:
            out.append(word)
    return out


def normalize(text: str) -> str:
    """Any English text → lower-case words of a–z and apostrophes, numbers spelled out."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("’", "'").replace("‘", "'").replace("o clock", "o'clock")
    text = re.sub(r"(\d{1,2}):(\d{2})", _time, text)
    text = re.sub(r"(\d+)\.(\d+)", _decimal, text)
    text = re.sub(r"(\d+)(?:st|nd|rd|th)\b", _ordinal, text)
    text = re.sub(r"(\d),(\d{3})", r"\1\2", text)
    text = re.sub(r"\d+", lambda m: f" {_spell_number(m.group(0))} ", text)
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    text = re.sub(r"[^a-z' ]+", " ", text)
    words = [w.strip("'") for w in text.split()]
    return " ".join(_join_contractions([w for w in words if w]))


def words_of(text: str) -> list[str]:
    """The words of a normalized transcript (for WER)."""
    return normalize(text).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions + deletions + insertions)."""
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, other in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (word != other))
    return row[-1]


def wer(refs: list[str], hyps: list[str]) -> dict:
    errors = words = wrong = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        r, h = normalize(ref).split(), normalize(hyp).split()
        distance = edit_distance(r, h)
        errors += distance
        words += len(r)
        wrong += distance > 0
    return {
        "wer": errors / max(words, 1),
        "errors": errors,
        "words": words,
        "sentence_error_rate": wrong / len(refs),
    }
