"""Pronunciations: read IPA or ARPABET, and hand them to a synthesizer in the form it accepts.

Riva's ``custom_dictionary`` and SSML ``<phoneme>`` carry pronunciations as IPA (``təˈmɑːtoʊ``)
or ARPABET (``T AH0 M AA1 T OW2``). Inside Rivulet a pronunciation is a list of ARPABET phones
with stress digits on vowels. Synthesizers differ in what they accept:

- ``espeak``: espeak-ng reads phoneme mnemonics between ``[[`` and ``]]`` in its text, so the
  pronunciation is spoken exactly (``[[t@m'A:toU]]``);
- ``respell``: engines without phoneme input (flite, festival via text, the character-level
  neural model) get a respelling (``tuh-MAH-toh`` → ``tuh mah toh``) that their letter-to-sound
  rules read close to the intended sounds.
"""

from __future__ import annotations

import re

VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
CONSONANTS = {
    "B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T",
    "TH", "V", "W", "Y", "Z", "ZH",
}  # fmt: skip

# IPA symbol(s) → ARPABET base phone; longest symbols first when parsing.
IPA_TO_ARPABET = {
    "aɪ": "AY", "aʊ": "AW", "eɪ": "EY", "oʊ": "OW", "əʊ": "OW", "ɔɪ": "OY", "tʃ": "CH", "dʒ": "JH",
    "ɝ": "ER", "ɚ": "ER", "ɜ": "ER", "ɑ": "AA", "ɒ": "AA", "æ": "AE", "ʌ": "AH", "ə": "AH", "ɐ": "AH",
    "ɔ": "AO", "ɛ": "EH", "e": "EY", "ɪ": "IH", "i": "IY", "o": "OW", "ʊ": "UH", "u": "UW", "a": "AA",
    "b": "B", "d": "D", "ð": "DH", "f": "F", "ɡ": "G", "g": "G", "h": "HH", "k": "K", "l": "L",
    "ɫ": "L", "m": "M", "n": "N", "ŋ": "NG", "p": "P", "ɹ": "R", "r": "R", "ɾ": "T", "s": "S",
    "ʃ": "SH", "t": "T", "θ": "TH", "v": "V", "w": "W", "j": "Y", "z": "Z", "ʒ": "ZH", "x": "HH",
}  # fmt: skip
_IPA_IGNORED = set("ː.ˑ̃ ‿/[]")
_IPA_STRESS = {"ˈ": "1", "ˌ": "2", "'": "1", ",": "2"}

# ARPABET → espeak-ng English phoneme mnemonics.
ARPABET_TO_ESPEAK = {
    "AA": "A:", "AE": "a", "AH": "V", "AO": "O:", "AW": "aU", "AY": "aI", "EH": "E", "ER": "3:",
    "EY": "eI", "IH": "I", "IY": "i:", "OW": "oU", "OY": "OI", "UH": "U", "UW": "u:", "B": "b",
    "CH": "tS", "D": "d", "DH": "D", "F": "f", "G": "g", "HH": "h", "JH": "dZ", "K": "k", "L": "l",
    "M": "m", "N": "n", "NG": "N", "P": "p", "R": "r", "S": "s", "SH": "S", "T": "t", "TH": "T",
    "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "Z",
}  # fmt: skip
# ARPABET → letters an English letter-to-sound system reads back as the same sound.
ARPABET_TO_LETTERS = {
    "AA": "ah", "AE": "a", "AH": "uh", "AO": "aw", "AW": "ow", "AY": "eye", "EH": "eh", "ER": "er",
    "EY": "ay", "IH": "ih", "IY": "ee", "OW": "oh", "OY": "oy", "UH": "oo", "UW": "oo", "B": "b",
    "CH": "ch", "D": "d", "DH": "th", "F": "f", "G": "g", "HH": "h", "JH": "j", "K": "k", "L": "l",
    "M": "m", "N": "n", "NG": "ng", "P": "p", "R": "r", "S": "s", "SH": "sh", "T": "t", "TH": "th",
    "V": "v", "W": "w", "Y": "y", "Z": "z", "ZH": "zh",
}  # fmt: skip

_ARPABET_TOKEN = re.compile(r"^([A-Z]{1,2})([012])?$")


class PronunciationError(ValueError):
    """A pronunciation that cannot be read; the message names the bad symbol."""


def parse_arpabet(text: str) -> list[str]:
    """'T AH0 M AA1 T OW2' → ['T', 'AH0', 'M', 'AA1', 'T', 'OW2'] (vowels without a digit get 0)."""
    phones = []
    for token in text.upper().split():
        m = _ARPABET_TOKEN.match(token)
        if not m or m[1] not in VOWELS | CONSONANTS:
            raise PronunciationError(f"{token!r} is not an ARPABET phone")
        base, stress = m[1], m[2]
        if base in CONSONANTS and stress:
            raise PronunciationError(f"{token!r}: stress digits belong on vowels only")
        phones.append(base + (stress or "0") if base in VOWELS else base)
    if not phones:
        raise PronunciationError("the pronunciation is empty")
    return phones


def parse_ipa(text: str) -> list[str]:
    """'təˈmɑːtoʊ' → ['T', 'AH0', 'M', 'AA1', 'T', 'OW0']: stress marks apply to the next vowel."""
    phones: list[str] = []
    stress = "0"
    i = 0
    text = text.strip()
    while i < len(text):
        ch = text[i]
        if ch in _IPA_STRESS:
            stress = _IPA_STRESS[ch]
            i += 1
            continue
        if ch in _IPA_IGNORED or ch.isspace() or ch == "\u0329":
            i += 1
            continue
        for size in (2, 1):
            piece = text[i : i + size]
            if piece in IPA_TO_ARPABET:
                base = IPA_TO_ARPABET[piece]
                if base in VOWELS:
                    phones.append(base + stress)
                    stress = "0"
                else:
                    phones.append(base)
                i += size
                break
        else:
            raise PronunciationError(f"IPA symbol {ch!r} (U+{ord(ch):04X}) is not supported for English")
    if not phones:
        raise PronunciationError("the pronunciation is empty")
    return phones


def looks_like_arpabet(text: str) -> bool:
    """Upper-case ASCII tokens of one or two letters and an optional stress digit (IPA has no capitals)."""
    return bool(re.fullmatch(r"\s*[A-Z]{1,2}[012]?(?:\s+[A-Z]{1,2}[012]?)*\s*", text))


def parse_pronunciation(text: str, alphabet: str = "") -> list[str]:
    """ARPABET when ``alphabet`` says so (``x-arpabet``/``arpabet``) or the text looks like it;
    IPA otherwise."""
    alphabet = alphabet.lower()
    if alphabet in ("x-arpabet", "arpabet", "cmu") or (not alphabet and looks_like_arpabet(text)):
        return parse_arpabet(text)
    if alphabet not in ("", "ipa"):
        raise PronunciationError(f"alphabet {alphabet!r} is not supported: use 'ipa' or 'x-arpabet'")
    return parse_ipa(text)


def to_espeak(phones: list[str]) -> str:
    """ARPABET → ``[[...]]`` espeak-ng phoneme input (stress mark before the stressed vowel)."""
    out = []
    for phone in phones:
        base, stress = phone.rstrip("012"), phone[len(phone.rstrip("012")) :]
        symbol = ARPABET_TO_ESPEAK[base]
        if base == "AH" and stress == "0":
            symbol = "@"
        elif base == "ER" and stress == "0":
            symbol = "3"
        out.append({"1": "'", "2": ","}.get(stress, "") + symbol)
    return "[[" + "".join(out) + "]]"


def to_respelling(phones: list[str]) -> str:
    """ARPABET → space-separated syllables of plain letters (onset consonants + vowel)."""
    syllables: list[str] = []
    onset = ""
    for phone in phones:
        base = phone.rstrip("012")
        letters = ARPABET_TO_LETTERS[base]
        if base in VOWELS:
            syllables.append(onset + letters)
            onset = ""
        else:
            onset += letters
    if onset:
        if syllables:
            syllables[-1] += onset
        else:
            syllables.append(onset)
    return " ".join(syllables)


def render(phones: list[str], phoneme_input: str) -> str:
    """The pronunciation in the form a synthesizer accepts (``espeak`` or ``respell``)."""
    return to_espeak(phones) if phoneme_input == "espeak" else to_respelling(phones)
