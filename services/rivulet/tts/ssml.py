"""The SSML subset Rivulet speaks, parsed into a flat list of pieces.

Supported (the subset Riva documents for its English voices):

- ``<speak>`` root (attributes ``version``, ``xml:lang``, ``xmlns`` are accepted and ignored);
- ``<prosody rate="..." pitch="...">``: rate ``x-slow|slow|medium|fast|x-fast|default`` or a
  percentage ``25%``–``250%``; pitch ``x-low|low|medium|high|x-high|default``, a relative
  percentage ``+10%``/``-20%``, semitones ``+2st``/``-3st``, or Riva's bare number in [-3, 3]
  (each unit is 10 % of the voice's pitch); nested prosody multiplies;
- ``<break time="500ms"|"1.5s" strength="none|x-weak|weak|medium|strong|x-strong"/>`` (≤ 10 s);
- ``<sub alias="spoken">written</sub>``;
- ``<phoneme alphabet="ipa|x-arpabet" ph="...">word</phoneme>``.

Anything else — malformed XML, DOCTYPE/entities, other tags, unknown attributes or values — raises
``SsmlError`` whose message names the line, the tag and what to change; the service answers
INVALID_ARGUMENT with it. Parsing uses the standard library's expat with DTDs refused, so entity
expansion attacks are impossible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.parsers import expat

from rivulet.tts.phonemes import PronunciationError, parse_pronunciation

MAX_BREAK_MS = 10_000
# Nested <prosody> multiplies; the product stays within what one element may ask for (without this,
# 20 nested rate="150%" asked for 3325x speed and synthesis returned no audio at all).
RATE_RANGE = (0.25, 2.5)
PITCH_RANGE = (0.5, 2.0)
RATE_WORDS = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.75}
PITCH_WORDS = {"x-low": 0.7, "low": 0.85, "medium": 1.0, "default": 1.0, "high": 1.15, "x-high": 1.3}
BREAK_STRENGTHS = {"none": 0, "x-weak": 100, "weak": 250, "medium": 400, "strong": 700, "x-strong": 1200}
ALLOWED_ATTRIBUTES = {
    "speak": {"version", "xml:lang", "xmlns", "xmlns:xsi", "xsi:schemaLocation"},
    "prosody": {"rate", "pitch"},
    "break": {"time", "strength"},
    "sub": {"alias"},
    "phoneme": {"alphabet", "ph"},
}


class SsmlError(ValueError):
    """Malformed or unsupported SSML; the message says where and what to fix."""


@dataclass
class Piece:
    """Text spoken with one prosody, or a pause (``break_ms``), or a fixed pronunciation."""

    text: str = ""
    rate: float = 1.0
    pitch: float = 1.0
    break_ms: int = 0
    phones: list[str] | None = None  # ARPABET: speak exactly this (from <phoneme>)
    literal: bool = False  # from <sub alias>: spoken as given (still normalized)

    @property
    def is_break(self) -> bool:
        return not self.text and self.phones is None


def is_ssml(text: str) -> bool:
    """SSML is a document starting with <speak> (or an XML declaration or DOCTYPE before it)."""
    return text.lstrip().startswith(("<speak", "<?xml", "<!DOCTYPE"))


def _rate(value: str, where: str) -> float:
    v = value.strip().lower()
    if v in RATE_WORDS:
        return RATE_WORDS[v]
    m = re.fullmatch(r"(\d+(?:\.\d+)?)%", v)
    if m and 25 <= float(m[1]) <= 250:
        return float(m[1]) / 100
    raise SsmlError(
        f"{where}: prosody rate={value!r} is not supported: use x-slow, slow, medium, fast, x-fast, "
        "default or a percentage from 25% to 250%"
    )


def _pitch(value: str, where: str) -> float:
    v = value.strip().lower()
    if v in PITCH_WORDS:
        return PITCH_WORDS[v]
    if m := re.fullmatch(r"([+-]?\d+(?:\.\d+)?)%", v):
        factor = 1 + float(m[1]) / 100
        if 0.5 <= factor <= 2.0:
            return factor
    elif m := re.fullmatch(r"([+-]?\d+(?:\.\d+)?)st", v):
        if abs(float(m[1])) <= 12:
            return 2 ** (float(m[1]) / 12)
    elif m := re.fullmatch(r"[+-]?\d+(?:\.\d+)?", v):
        if abs(float(v)) <= 3:
            return 1 + float(v) / 10
    raise SsmlError(
        f"{where}: prosody pitch={value!r} is not supported: use x-low, low, medium, high, x-high, "
        "default, a change from -50% to +100%, semitones from -12st to +12st, or a number in [-3, 3]"
    )


def _break_ms(attributes: dict[str, str], where: str) -> int:
    if "time" in attributes:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*", attributes["time"])
        if not m:
            raise SsmlError(f"{where}: break time={attributes['time']!r} must look like '500ms' or '1.5s'")
        ms = float(m[1]) * (1000 if m[2] == "s" else 1)
        if ms > MAX_BREAK_MS:
            raise SsmlError(f"{where}: break time={attributes['time']!r} is over the {MAX_BREAK_MS} ms limit")
        return round(ms)
    strength = attributes.get("strength", "medium")
    if strength not in BREAK_STRENGTHS:
        raise SsmlError(f"{where}: break strength={strength!r} is not one of {', '.join(BREAK_STRENGTHS)}")
    return BREAK_STRENGTHS[strength]


@dataclass
class _Frame:
    tag: str
    rate: float
    pitch: float
    line: int
    skip_text: bool = False  # inside <sub> or <phoneme>: the element's text is replaced
    children_text: list[str] = field(default_factory=list)


class _Parser:
    def __init__(self) -> None:
        self.pieces: list[Piece] = []
        self.stack: list[_Frame] = []
        self.parser = expat.ParserCreate()
        self.parser.StartElementHandler = self.start
        self.parser.EndElementHandler = self.end
        self.parser.CharacterDataHandler = self.data
        self.parser.StartDoctypeDeclHandler = self.refuse_dtd
        self.parser.EntityDeclHandler = self.refuse_entity
        self.parser.ProcessingInstructionHandler = lambda target, data: None

    def where(self, tag: str = "") -> str:
        line = self.parser.CurrentLineNumber
        col = self.parser.CurrentColumnNumber + 1
        return f"SSML line {line}, column {col}" + (f", <{tag}>" if tag else "")

    def refuse_dtd(self, *args: object) -> None:
        raise SsmlError(f"{self.where()}: DOCTYPE declarations are not allowed in SSML")

    def refuse_entity(self, *args: object) -> None:
        raise SsmlError(f"{self.where()}: entity declarations are not allowed in SSML")

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        where = self.where(tag)
        if not self.stack and tag != "speak":
            raise SsmlError(f"{where}: the root element must be <speak>, not <{tag}>")
        if self.stack and tag == "speak":
            raise SsmlError(f"{where}: <speak> cannot be nested")
        if tag not in ALLOWED_ATTRIBUTES:
            raise SsmlError(
                f"{where}: tag <{tag}> is not supported; supported tags: "
                + ", ".join(f"<{t}>" for t in ALLOWED_ATTRIBUTES)
            )
        unknown = sorted(set(attributes) - ALLOWED_ATTRIBUTES[tag])
        if unknown:
            allowed = ", ".join(sorted(ALLOWED_ATTRIBUTES[tag])) or "none"
            raise SsmlError(
                f"{where}: attribute {unknown[0]!r} is not supported on <{tag}> (allowed: {allowed})"
            )
        parent = self.stack[-1] if self.stack else None
        if parent and parent.skip_text:
            raise SsmlError(f"{where}: <{parent.tag}> may contain only text, not <{tag}>")
        rate = parent.rate if parent else 1.0
        pitch = parent.pitch if parent else 1.0
        frame = _Frame(tag, rate, pitch, self.parser.CurrentLineNumber)
        if tag == "prosody":
            if not attributes:
                raise SsmlError(f"{where}: <prosody> needs a rate or pitch attribute")
            if "rate" in attributes:
                frame.rate = min(max(rate * _rate(attributes["rate"], where), RATE_RANGE[0]), RATE_RANGE[1])
            if "pitch" in attributes:
                frame.pitch = min(
                    max(pitch * _pitch(attributes["pitch"], where), PITCH_RANGE[0]), PITCH_RANGE[1]
                )
        elif tag == "break":
            self.pieces.append(Piece(break_ms=_break_ms(attributes, where), rate=rate, pitch=pitch))
        elif tag == "sub":
            if not attributes.get("alias", "").strip():
                raise SsmlError(f"{where}: <sub> needs a non-empty alias attribute")
            frame.skip_text = True
            self.pieces.append(Piece(text=attributes["alias"], rate=rate, pitch=pitch, literal=True))
        elif tag == "phoneme":
            if not attributes.get("ph", "").strip():
                raise SsmlError(f"{where}: <phoneme> needs a non-empty ph attribute")
            try:
                phones = parse_pronunciation(attributes["ph"], attributes.get("alphabet", "ipa"))
            except PronunciationError as exc:
                raise SsmlError(f"{where}: ph={attributes['ph']!r}: {exc}") from exc
            frame.skip_text = True
            self.pieces.append(Piece(phones=phones, rate=rate, pitch=pitch))
        self.stack.append(frame)

    def end(self, tag: str) -> None:
        frame = self.stack.pop()
        if frame.tag == "break" and frame.children_text and "".join(frame.children_text).strip():
            raise SsmlError(f"SSML line {frame.line}, <break>: break must be empty (<break time='1s'/>)")
        if frame.tag == "phoneme":
            word = " ".join("".join(frame.children_text).split())
            piece = next(p for p in reversed(self.pieces) if p.phones is not None)
            piece.text = word or "phoneme"

    def data(self, text: str) -> None:
        if not self.stack:
            return
        frame = self.stack[-1]
        if frame.skip_text or frame.tag == "break":
            frame.children_text.append(text)
            return
        if text:
            self.pieces.append(Piece(text=text, rate=frame.rate, pitch=frame.pitch))

    def parse(self, document: str) -> list[Piece]:
        try:
            self.parser.Parse(document, True)
        except expat.ExpatError as exc:
            message = expat.errors.messages.get(exc.code, str(exc))
            raise SsmlError(
                f"malformed SSML at line {exc.lineno}, column {exc.offset + 1}: {message}"
            ) from exc
        return self.pieces


def parse(document: str) -> list[Piece]:
    """Pieces of a ``<speak>`` document in reading order (adjacent text pieces not yet merged)."""
    return _Parser().parse(document.strip())
