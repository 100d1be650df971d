"""A Converse stream's first message, checked: audio format, voice, barge-in and endpointing."""

from __future__ import annotations

from dataclasses import dataclass

from riva.proto import riva_audio_pb2 as ra

from rivulet.core.errors import invalid_argument
from rivulet.dialog.clients import TtsClient, Voice
from rivulet.dialog.converse_turns import spoken_words
from rivulet.dialog.engine import DialogEngine
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.state import check_session_id
from rivulet.dialog.v1 import dialog_pb2 as pb

BYTES_PER_SAMPLE = {ra.LINEAR_PCM: 2, ra.MULAW: 1, ra.ALAW: 1}
ENCODINGS = {ra.LINEAR_PCM, ra.MULAW, ra.ALAW, ra.FLAC, ra.OGGOPUS}


@dataclass
class StreamConfig:
    session_id: str
    encoding: int
    sample_rate_hz: int
    language_code: str
    voice: Voice | None
    barge_in: bool
    backchannels: frozenset[str]
    min_words: int
    stop_ms: int
    start_ms: int
    interim_results: bool
    zone: object = None


async def parse_config(
    config: pb.ConverseConfig, settings: DialogSettings, engine: DialogEngine, tts: TtsClient
) -> StreamConfig:
    check_session_id(config.session_id)
    encoding = config.audio.encoding or ra.LINEAR_PCM
    if encoding not in ENCODINGS:
        raise invalid_argument(
            f"audio.encoding {encoding} is not supported: use LINEAR_PCM, MULAW, ALAW, FLAC or OGGOPUS"
        )
    rate = config.audio.sample_rate_hz or 16000
    if not 8000 <= rate <= 48000:
        raise invalid_argument(f"audio.sample_rate_hz {rate} is out of range: send 8000-48000 Hz audio")
    if config.endpointing.stop_silence_ms < 0 or config.endpointing.stop_silence_ms > 5000:
        raise invalid_argument("endpointing.stop_silence_ms must be 0 (default) to 5000 ms")
    if config.barge_in.min_words < 0:
        raise invalid_argument("barge_in.min_words must be >= 0")
    voice = None
    language = config.language_code or "en-US"
    if config.voice.enabled:
        out_encoding = config.voice.encoding or ra.LINEAR_PCM
        if out_encoding != ra.LINEAR_PCM:
            raise invalid_argument("voice.encoding: reply audio is LINEAR_PCM (leave it unset)")
        name = config.voice.voice_name or settings.dialog_default_voice
        out_rate = config.voice.sample_rate_hz or settings.dialog_default_sample_rate_hz
        if out_rate and not 8000 <= out_rate <= 48000:
            raise invalid_argument(f"voice.sample_rate_hz {out_rate} is out of range (8000-48000, or 0)")
        voice = Voice(name, out_rate, out_encoding, language)
    backchannels = settings.backchannel_words
    if config.barge_in.backchannels:
        backchannels = frozenset(w for b in config.barge_in.backchannels for w in spoken_words(b))
    return StreamConfig(
        session_id=config.session_id,
        encoding=encoding,
        sample_rate_hz=rate,
        language_code=language,
        voice=voice,
        barge_in=config.barge_in.enabled,
        backchannels=backchannels,
        min_words=config.barge_in.min_words or 1,
        stop_ms=config.endpointing.stop_silence_ms or settings.dialog_stop_silence_ms,
        start_ms=config.endpointing.start_speech_ms,
        interim_results=config.interim_results,
        zone=engine.zone(config.time_zone),
    )
