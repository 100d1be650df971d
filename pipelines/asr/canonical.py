"""One canonical form for scoring ASR output against references, whatever form either is in.

Numbers and spelled letters count the same however they are written: "two forty", "240" and
"two four zero" all become the digits "2 4 0"; "Q-C-J-K", "QCJK" and "q c j k" become "q c j k";
"July 12th, 1969" and "july twelfth nineteen sixty nine" agree. Punctuation and case are dropped.
Written forms are first read aloud by the ASR service's own rules (`rivulet.asr.transcript_forms`),
then runs of number words are written as digits, one token per digit.
"""

from __future__ import annotations

from rivulet.asr.transcript_forms import spoken_words

_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}  # fmt: skip
_UNITS["oh"] = 0
_TENS = {
    w: 10 * i
    for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split())
    if i > 1
}
_ORDINALS = {"first": "one", "second": "two", "third": "three", "fifth": "five", "eighth": "eight",
             "ninth": "nine", "twelfth": "twelve"}  # fmt: skip
_JOINED = {("rub", "out"): "rubout", ("o", "k"): "ok"}  # the same word written apart


def _ordinal_to_cardinal(word: str) -> str:
    if word in _ORDINALS:
        return _ORDINALS[word]
    if word.endswith("ieth") and word[:-4] + "y" in _TENS:
        return word[:-4] + "y"
    if word.endswith("th") and word[:-2] in _UNITS:
        return word[:-2]
    return word


def _number_groups(words: list[str]) -> str:
    """Digits of a run of number words: each unit, teen or tens(+unit) is a group, hundreds and
    thousands multiply ("nineteen sixty nine" → 1969; "two hundred eighty one" → 281)."""
    groups: list[int] = []
    current: int | None = None
    for word in words:
        if word == "and":
            continue
        if word in ("hundred", "thousand"):
            scale = 100 if word == "hundred" else 1000
            current = (current or 1) * scale
            continue
        value = _UNITS.get(word, _TENS.get(word))
        if current is not None and current >= 100 and current % 100 == 0 and value is not None:
            current += value
            continue
        if (
            current is not None
            and current % 10 == 0
            and 20 <= current % 100
            and value is not None
            and value < 10
        ):
            current += value
            continue
        if current is not None:
            groups.append(current)
        current = value
    if current is not None:
        groups.append(current)
    return "".join(str(g) for g in groups)


def canonical_words(text: str) -> list[str]:
    words = [_ordinal_to_cardinal(w) for w in spoken_words(text.replace("'s", "s"))]
    merged: list[str] = []
    for word in words:
        if merged and (merged[-1], word) in _JOINED:
            merged[-1] = _JOINED[(merged[-1], word)]
        else:
            merged.append(word)
    out: list[str] = []
    run: list[str] = []
    for word in [*merged, ""]:
        if word in _UNITS or word in _TENS or (run and word in ("hundred", "thousand")):
            run.append(word)
            continue
        if word == "and" and run and run[-1] in ("hundred", "thousand"):  # "eight hundred and six"
            run.append(word)
            continue
        if run:
            dangling = run[-1] == "and"  # "five hundred and" then no number: "and" is a word
            out += list(_number_groups(run[:-1] if dangling else run)) + (["and"] if dangling else [])
            run = []
        if word:
            out += list(word) if word == "ok" else [word]
    return out


def canonical(text: str) -> str:
    return " ".join(canonical_words(text))
