"""TTS service settings (`RIVULET_*` environment variables)."""

from __future__ import annotations

from pydantic import Field

from rivulet.core.aliases import alias_setting
from rivulet.core.settings import ServiceSettings


class TtsSettings(ServiceSettings):
    tts_default_voice: str = Field(
        "English-US.Male-2",
        description=(
            "Voice used when a request names none (and its language matches); must be deployed. "
            "English-US.Male-2 (flite kal16) is the voice that meets the first-audio budget at 16 streams."
        ),
    )
    tts_max_text_chars: int = Field(
        2000,
        gt=0,
        description="Longest text of one request (one SynthesizeOnline message); longer → INVALID_ARGUMENT.",
    )
    tts_max_stream_chars: int = Field(
        20000, gt=0, description="Most text in one SynthesizeOnline stream; more → RESOURCE_EXHAUSTED."
    )
    tts_voice_aliases: dict[str, str] = alias_setting(
        "tts", "TTS voice", "voice_name (also with a Magpie `.Emotion` suffix)"
    )
