"""Request text → the script a synthesizer model speaks.

Steps: SSML (when the text starts with ``<speak``) or plain text → pieces; each piece's text is
normalized (numbers, dates, ...); words in the request's ``custom_dictionary`` are replaced by
their pronunciation in the form the voice accepts (espeak-ng phoneme input or a respelling, see
``phonemes``); adjacent pieces with the same prosody are merged. The script is what the Triton
model receives (JSON): a list of ``{"text", "rate", "pitch"}`` and ``{"break_ms"}`` entries.

``custom_dictionary`` is Riva's field: comma-separated entries, each ``word  pronunciation``
(two spaces; riva.client writes them so), the pronunciation in IPA or ARPABET.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from rivulet.tts import ssml
from rivulet.tts.normalize import normalize
from rivulet.tts.phonemes import PronunciationError, parse_pronunciation, render

MAX_DICTIONARY_ENTRIES = 256
# A longer "word" is spelled letter by letter in one piece the synthesizer cannot split: 1800 letters
# held the engine for over 10 s (no audio, other streams starved), so such text is refused.
MAX_WORD_CHARS = 100


class FrontEndError(ValueError):
    """Bad request text, SSML or dictionary; the message says what to fix."""


def parse_custom_dictionary(text: str) -> dict[str, list[str]]:
    """``"tomato  T AH0 M AA1 T OW0,rivulet  ˈɹɪvjəlɪt"`` → {word (lower case): ARPABET phones}."""
    entries: dict[str, list[str]] = {}
    if not text.strip():
        return entries
    for n, entry in enumerate(text.split(","), start=1):
        if not entry.strip():
            continue
        word, sep, pronunciation = entry.strip().partition("  ")
        if not sep:
            word, _, pronunciation = entry.strip().partition(" ")
        word, pronunciation = word.strip(), pronunciation.strip()
        if not word or not pronunciation:
            raise FrontEndError(
                f"custom_dictionary entry {n} ({entry.strip()!r}) must be 'word  pronunciation' "
                "(the word, two spaces, then IPA or ARPABET)"
            )
        try:
            entries[word.lower()] = parse_pronunciation(pronunciation)
        except PronunciationError as exc:
            raise FrontEndError(f"custom_dictionary entry {n} ({word!r}): {exc}") from exc
        if len(entries) > MAX_DICTIONARY_ENTRIES:
            raise FrontEndError(f"custom_dictionary has over {MAX_DICTIONARY_ENTRIES} entries")
    return entries


def _apply_dictionary(text: str, dictionary: dict[str, list[str]], phoneme_input: str) -> str:
    if not dictionary:
        return text
    pattern = re.compile(
        r"(?<![\w'])("
        + "|".join(re.escape(w) for w in sorted(dictionary, key=len, reverse=True))
        + r")(?![\w'])",
        re.IGNORECASE,
    )
    return pattern.sub(lambda m: render(dictionary[m[1].lower()], phoneme_input), text)


@dataclass(frozen=True)
class Script:
    """What to speak: entries for the model plus the text as normalized (for response metadata)."""

    entries: list[dict]
    processed_text: str

    def to_json(self) -> str:
        return json.dumps(self.entries, ensure_ascii=False)

    @property
    def empty(self) -> bool:
        return not any(e.get("text", "").strip() for e in self.entries)


def _check_word_lengths(text: str) -> None:
    longest = max(text.split(), key=len, default="")
    if len(longest) > MAX_WORD_CHARS:
        raise FrontEndError(
            f"a word of {len(longest)} characters ({longest[:20]!r}...) is over the "
            f"{MAX_WORD_CHARS}-character limit: put spaces in it, or send it as separate words"
        )


def build_script(text: str, custom_dictionary: str = "", phoneme_input: str = "respell") -> Script:
    """The script for ``text`` (plain or SSML) spoken by a voice taking ``phoneme_input``."""
    dictionary = parse_custom_dictionary(custom_dictionary)
    if ssml.is_ssml(text):
        try:
            pieces = ssml.parse(text)
        except ssml.SsmlError as exc:
            raise FrontEndError(str(exc)) from exc
    else:
        pieces = [ssml.Piece(text=text)]
    entries: list[dict] = []
    spoken: list[str] = []
    for piece in pieces:
        if piece.is_break:
            if piece.break_ms:
                entries.append({"break_ms": piece.break_ms})
            continue
        if piece.phones is not None:
            said, shown = render(piece.phones, phoneme_input), piece.text
        else:
            shown = normalize(piece.text)
            said = _apply_dictionary(shown, dictionary, phoneme_input)
        if not said.strip():
            continue
        _check_word_lengths(shown)
        spoken.append(shown)
        rate, pitch = round(piece.rate, 4), round(piece.pitch, 4)
        last = entries[-1] if entries else None
        if last and "text" in last and (last["rate"], last["pitch"]) == (rate, pitch):
            last["text"] = f"{last['text']} {said}"
        else:
            entries.append({"text": said, "rate": rate, "pitch": pitch})
    for entry in entries:
        if "text" in entry:
            entry["text"] = " ".join(entry["text"].split())
    return Script(entries=entries, processed_text=" ".join(" ".join(spoken).split()))
