"""Riva's transcript options applied to a written-form transcript (Whisper writes digits and capitals).

- `verbatim_transcripts=true`: the spoken form: numbers and spelled letters as words ("Q-C-J-K 858"
  → "q c j k eight five eight"), no punctuation, lower case.
- `verbatim_transcripts=false`: the written form, as the model wrote it (digits, "7:30", "$5").
- `enable_automatic_punctuation`: keep the punctuation and capitals; without it they are removed
  (lower case), as Riva's transcripts are without its punctuation model.

Numbers: 1100–1999 and 2010–2099 as years ("nineteen sixty nine"); other strings of three or more
digits digit by digit ("371" → "three seven one": codes, phone numbers, PINs; Whisper writes them
so), except round hundreds and thousands ("300", "2000"); one or two digits as cardinals; "12th"
as an ordinal. A word in capitals of two to eight letters, letters joined by hyphens ("PITTSBU-RGH"
too), and letters written straight before digits ("xcivy1") are read letter by letter (Whisper's
ways of writing spelled letters; acronyms read the same).
"""

from __future__ import annotations

import re

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()  # fmt: skip
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
            "nine": "ninth", "twelve": "twelfth"}  # fmt: skip
_CAPITAL_WORDS = {"OK": "okay", "Ok": "okay", "AM": "am", "PM": "pm"}
_AM_PM = re.compile(r"\b([AaPp])\.\s?[Mm]\.?")  # "7 p.m." → "7 pm"
_SYMBOLS = {"%": "percent", "&": "and", "+": "plus", "@": "at", "$": "dollars"}
_TOKEN = re.compile(
    r"\d{1,2}:\d{2}|\$?\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th)?%?|[A-Za-z]+(?:[-'][A-Za-z]+)*|[%&+@]"
)
_SPELLED_PART = re.compile(r"[A-Z]{1,8}")  # a part of a hyphenated spelling
_GLUED_TO_DIGITS = re.compile(r"\b[A-Za-z]{1,8}(?=\d)")  # "xcivy1": spelled letters, then digits
# "3-7-1", "3 7 1", "3, 7, 1": digits said one by one, written "371" (as Riva's inverse
# normalisation writes them)
_DIGITS_APART = re.compile(r"\b\d(?:(?:-|,? )\d)+\b")
_PUNCT = re.compile(r"[^\w\s'\-:$%&+@.]|(?<!\d)\.|\.(?!\d)")


def cardinal(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for scale, name in (
        (1_000_000_000, "billion"),
        (1_000_000, "million"),
        (1000, "thousand"),
        (100, "hundred"),
    ):
        if n >= scale:
            rest = n % scale
            return f"{cardinal(n // scale)} {name}" + (f" {cardinal(rest)}" if rest else "")
    raise AssertionError(n)


def ordinal(n: int) -> str:
    words = cardinal(n).split()
    last = words[-1]
    if last in _ORDINAL:
        words[-1] = _ORDINAL[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def number_words(digits: str) -> str:
    """A digit string as spoken (see the module doc for the rules)."""
    n = int(digits)
    if len(digits) == 4 and (1100 <= n <= 1999 or 2010 <= n <= 2099) and n % 100:
        return f"{cardinal(n // 100)} {'oh ' + _ONES[n % 100] if n % 100 < 10 else cardinal(n % 100)}"
    if len(digits) >= 3 and (digits[0] == "0" or n % 100 or len(digits) > 5):
        return " ".join(_ONES[int(d)] for d in digits)
    return cardinal(n)


def _spoken_token(token: str) -> str:
    if re.fullmatch(r"\d{1,2}:\d{2}", token):
        hours, minutes = token.split(":")
        m = int(minutes)
        return cardinal(int(hours)) + ("" if m == 0 else " oh " + _ONES[m] if m < 10 else " " + cardinal(m))
    if token in _SYMBOLS:
        return _SYMBOLS[token]
    match = re.fullmatch(r"(\$)?([\d,]+)(?:\.(\d+))?(st|nd|rd|th)?(%)?", token)
    if match:
        dollar, whole, decimals, suffix, percent = match.groups()
        whole = whole.replace(",", "")
        if not whole:
            return ""
        words = ordinal(int(whole)) if suffix else number_words(whole)
        if decimals:
            words += " point " + " ".join(_ONES[int(d)] for d in decimals)
        return words + (" percent" if percent else "") + (" dollars" if dollar else "")
    if token in _CAPITAL_WORDS:  # words written in capitals, not spelled letters
        return _CAPITAL_WORDS[token]
    parts = token.split("-")
    if len(parts) > 1 and all(len(p) == 1 for p in parts):
        return " ".join(p.lower() for p in parts)
    if len(parts) > 1 and all(_SPELLED_PART.fullmatch(p) for p in parts):  # "PITTSBU-RGH"
        return " ".join(_spoken_token(p) for p in parts)
    if 2 <= len(token) <= 8 and token.isupper() and token.isalpha():
        return " ".join(token.lower())
    return token.lower().replace("-", " ")


def spoken_words(text: str) -> list[str]:
    """The spoken form of `text`, as words."""
    words: list[str] = []
    text = _AM_PM.sub(lambda m: m.group(1).lower() + "m", text)
    text = _GLUED_TO_DIGITS.sub(lambda m: m.group(0).upper(), text)
    for token in _TOKEN.findall(text):
        words += _spoken_token(token).split()
    return words


def written_form(text: str, punctuation: bool) -> str:
    text = _DIGITS_APART.sub(lambda m: re.sub("[-, ]", "", m.group(0)), " ".join(text.split()))
    if punctuation:
        return text
    return " ".join(_PUNCT.sub(" ", text).lower().split())


def format_transcript(text: str, *, verbatim: bool, punctuation: bool, sentence: bool = True) -> str:
    """`text` (as Whisper wrote it) in the form asked for. With punctuation, a whole transcript
    (`sentence`) is a sentence, capitalised and closed, whichever form and however Whisper wrote it
    ("turn on the lights." → "Turn on the lights."); a single word of it (`sentence=False`, for
    word times) is left as it is."""
    if verbatim:
        spoken = " ".join(spoken_words(text))
        return as_sentence(spoken, text) if punctuation and sentence else spoken
    written = written_form(text, punctuation)
    return as_sentence(written, written) if punctuation and sentence else written


def as_sentence(words: str, written: str) -> str:
    """`words` with a capital first letter and the closing mark of `written` (else a full stop)."""
    if not words:
        return words
    words = words[0].upper() + words[1:]
    if words[-1] in ".?!":
        return words
    end = written.rstrip()[-1:]
    return words + (end if end in ("?", "!") else ".")
