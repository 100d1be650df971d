"""The WebSocket message protocol (PROTOCOL.md): parsing and checking what the browser sends, and
encoding what the dialog service answers. Pure functions and data; no I/O.

Browser → gateway: a JSON `start` first, then binary frames of 16 kHz 16-bit little-endian mono PCM
and JSON `text`, `playback` and `ping` messages. Gateway → browser: JSON messages, and reply audio
as binary frames that carry their own JSON header (`encode_audio`).
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from riva.proto import riva_audio_pb2 as ra

from rivulet.dialog.v1 import dialog_pb2 as pb

SAMPLE_RATE_HZ = 16_000
SESSION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
MAX_TEXT_CHARS = 512
MAX_VOICE_CHARS = 128
CLIENT_TYPES = ("start", "text", "playback", "ping")
_HEADER = struct.Struct("<H")  # length of the JSON header in front of reply audio


class Close(IntEnum):
    """WebSocket close codes the gateway uses (4000-4999 are the application's own)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # the gateway is shutting down: reconnect
    BAD_MESSAGE = 4400  # malformed JSON, unknown type, bad field: fix the client
    ORIGIN = 4403  # (only when an Origin is refused after the upgrade; normally HTTP 403)
    OUT_OF_ORDER = 4409  # audio/text before `start`, or a second `start`
    TOO_LARGE = 4413  # a message over gateway_max_frame_bytes
    TOO_FAST = 4429  # over gateway_max_frames_per_s, or the dialog is not keeping up
    DIALOG_ERROR = 4500  # the dialog service ended the stream with an unexpected error
    DIALOG_UNAVAILABLE = 4503  # the dialog service is down or went away: reconnect later
    BUSY = 4508  # too many conversations here or at the dialog service: try again
    START_TIMEOUT = 4408  # no `start` within gateway_start_timeout_s

    @property
    def retry(self) -> bool:
        """The client should reconnect on its own (same session) after this close."""
        return self in (Close.GOING_AWAY, Close.DIALOG_UNAVAILABLE, Close.BUSY)


class ProtocolError(Exception):
    """A message that ends the connection: the close code and a reason the app shows."""

    def __init__(self, code: Close, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def close_reason(text: str) -> str:
    """A WebSocket close reason must fit 123 bytes of UTF-8."""
    data = text.encode()
    return text if len(data) <= 123 else data[:120].decode(errors="ignore") + "..."


@dataclass(frozen=True)
class Start:
    session_id: str
    voice: str = ""
    reply_audio: bool = True
    barge_in: bool = True
    interim: bool = True
    time_zone: str = ""
    stop_silence_ms: int = 0

    def config(self) -> pb.ConverseConfig:
        return pb.ConverseConfig(
            session_id=self.session_id,
            audio=pb.AudioFormat(encoding=ra.LINEAR_PCM, sample_rate_hz=SAMPLE_RATE_HZ),
            voice=pb.VoiceConfig(
                voice_name=self.voice, enabled=self.reply_audio, sample_rate_hz=SAMPLE_RATE_HZ
            ),
            barge_in=pb.BargeInConfig(enabled=self.barge_in),
            endpointing=pb.EndpointingSettings(stop_silence_ms=self.stop_silence_ms),
            interim_results=self.interim,
            time_zone=self.time_zone,
        )


def _field(message: dict, name: str, kind: type, default: Any) -> Any:
    value = message.get(name, default)
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise ProtocolError(Close.BAD_MESSAGE, f"'{name}' must be a {kind.__name__}")
    return value


def parse_json(data: str) -> dict:
    """A client JSON message: an object with a known `type`."""
    try:
        message = json.loads(data)
    except ValueError:
        raise ProtocolError(Close.BAD_MESSAGE, "a text message must be JSON") from None
    if not isinstance(message, dict) or message.get("type") not in CLIENT_TYPES:
        kinds = ", ".join(CLIENT_TYPES)
        raise ProtocolError(Close.BAD_MESSAGE, f"a JSON message needs 'type' (one of {kinds})")
    return message


def parse_start(message: dict) -> Start:
    session_id = _field(message, "session_id", str, "")
    if not SESSION_ID.fullmatch(session_id):
        raise ProtocolError(Close.BAD_MESSAGE, "'session_id' must be 1-128 characters of [A-Za-z0-9._:-]")
    voice = _field(message, "voice", str, "")
    if len(voice) > MAX_VOICE_CHARS:
        raise ProtocolError(Close.BAD_MESSAGE, f"'voice' is over {MAX_VOICE_CHARS} characters")
    stop_silence_ms = _field(message, "stop_silence_ms", int, 0)
    if not 0 <= stop_silence_ms <= 2000:
        raise ProtocolError(Close.BAD_MESSAGE, "'stop_silence_ms' must be 0-2000")
    return Start(
        session_id=session_id,
        voice=voice,
        reply_audio=_field(message, "reply_audio", bool, True),
        barge_in=_field(message, "barge_in", bool, True),
        interim=_field(message, "interim", bool, True),
        time_zone=_field(message, "time_zone", str, "")[:64],
        stop_silence_ms=stop_silence_ms,
    )


def parse_text(message: dict) -> pb.ConverseRequest:
    text = _field(message, "text", str, "").strip()
    if not 1 <= len(text) <= MAX_TEXT_CHARS:
        raise ProtocolError(Close.BAD_MESSAGE, f"'text' must be 1-{MAX_TEXT_CHARS} characters")
    return pb.ConverseRequest(text=text)


def parse_playback(message: dict) -> pb.ConverseRequest:
    turn_id = _field(message, "turn_id", str, "")
    played_ms = _field(message, "played_ms", int, 0)
    if not turn_id or len(turn_id) > 128 or not 0 <= played_ms <= 3_600_000:
        raise ProtocolError(Close.BAD_MESSAGE, "'playback' needs 'turn_id' and 'played_ms' 0-3600000")
    finished = _field(message, "finished", bool, False)
    return pb.ConverseRequest(
        playback=pb.PlaybackEvent(turn_id=turn_id, played_ms=played_ms, finished=finished)
    )


def parse_audio(data: bytes) -> pb.ConverseRequest:
    if len(data) % 2:
        raise ProtocolError(Close.BAD_MESSAGE, "audio frames are 16-bit PCM: an even number of bytes")
    if not data:
        raise ProtocolError(Close.BAD_MESSAGE, "an empty audio frame")
    return pb.ConverseRequest(audio=data)


class MessageOrder:
    """`start` exactly once, first; everything else after it."""

    def __init__(self) -> None:
        self.started = False

    def check(self, kind: str) -> None:
        if kind == "start":
            if self.started:
                raise ProtocolError(Close.OUT_OF_ORDER, "'start' was already sent on this connection")
            self.started = True
        elif not self.started:
            raise ProtocolError(Close.OUT_OF_ORDER, f"'{kind}' before 'start': send 'start' first")


class RateLimit:
    """A token bucket: `per_s` messages a second, bursts up to one second's worth."""

    def __init__(self, per_s: float, now: float) -> None:
        self.per_s, self.tokens, self.last = per_s, per_s, now

    def allow(self, now: float) -> bool:
        self.tokens = min(self.per_s, self.tokens + (now - self.last) * self.per_s)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


# ---- gateway → browser ----------------------------------------------------------------------


def _slots(understanding: pb.Understanding) -> list[dict]:
    return [{"name": s.name, "value": s.value, "score": round(s.score, 4)} for s in understanding.slots]


def encode_response(response: pb.ConverseResponse) -> dict | None:
    """The JSON message for one Converse response (None for audio: see `encode_audio`)."""
    kind = response.WhichOneof("response")
    turn = response.turn_id
    if kind == "transcript":
        t = response.transcript
        return {
            "type": "transcript",
            "turn_id": turn,
            "text": t.text,
            "is_final": t.is_final,
            "confidence": round(t.confidence, 4),
            "typed": t.typed,
        }
    if kind == "understanding":
        u = response.understanding
        return {
            "type": "understanding",
            "turn_id": turn,
            "intent": u.intent,
            "score": round(u.score, 4),
            "slots": _slots(u),
            "low_confidence": u.low_confidence,
        }
    if kind == "reply":
        r = response.reply
        return {
            "type": "reply",
            "turn_id": turn,
            "text": r.text,
            "action": r.action,
            "action_slots": dict(r.action_slots),
            "expecting_slot": r.expecting_slot,
            "expecting_confirmation": r.expecting_confirmation,
        }
    if kind == "event":
        e = response.event
        return {
            "type": "event",
            "turn_id": turn,
            "event": pb.TurnEvent.Type.Name(e.type),
            "detail": e.detail,
            "played_ms": e.played_ms,
            "stream_time_ms": e.stream_time_ms,
        }
    if kind == "error":
        e = response.error
        return {"type": "error", "turn_id": turn, "stage": e.stage, "code": e.code, "message": e.message}
    if kind == "latency":
        lat = response.latency
        stages = ("endpointing_ms", "asr_final_ms", "nlu_ms", "policy_ms", "tts_first_audio_ms", "total_ms")
        out: dict[str, Any] = {"type": "latency", "turn_id": turn}
        out.update({name: round(getattr(lat, name), 2) for name in stages})
        out["speculative"] = lat.speculative
        return out
    return None


def encode_audio(response: pb.ConverseResponse) -> bytes:
    """A binary frame: u16 little-endian header length, the JSON header {turn_id, sample_rate_hz,
    offset_ms}, then the 16-bit PCM (the header length is padded to keep the PCM 2-byte aligned)."""
    a = response.audio
    header = json.dumps(
        {"turn_id": response.turn_id, "sample_rate_hz": a.sample_rate_hz, "offset_ms": a.offset_ms},
        separators=(",", ":"),
    ).encode()
    if len(header) % 2:
        header += b" "
    return _HEADER.pack(len(header)) + header + a.audio


def decode_audio(frame: bytes) -> tuple[dict, bytes]:
    """The inverse of `encode_audio` (tests and benches)."""
    (size,) = _HEADER.unpack_from(frame)
    return json.loads(frame[2 : 2 + size]), frame[2 + size :]
