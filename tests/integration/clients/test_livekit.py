"""LiveKit's NVIDIA plugin (livekit-plugins-nvidia 1.8.9, pinned in livekit.lock.txt) against the running
stack, with its defaults except `server` and `use_ssl=False`: STT (default model
parakeet-1.1b-en-US-asr-streaming-silero-vad-sortformer, an alias; before the alias table the app
saw no event at all) and TTS (default voice Magpie-Multilingual.EN-US.Leo, an alias; before it,
`APIError: no audio frames were pushed`)."""

from __future__ import annotations

import pytest

from tests.integration.clients.conftest import SPOKEN

pytestmark = pytest.mark.integration


def test_livekit_stt_default_model_transcribes(run_client):
    stt = run_client("livekit")["stt"]
    assert stt["model"] == "parakeet-1.1b-en-US-asr-streaming-silero-vad-sortformer"  # left at its default
    # LiveKit leaves verbatim_transcripts off and asks for punctuation: Riva's written form, a
    # closed sentence, as Riva itself answers it
    assert stt["finals"] == ["371."], SPOKEN
    assert {"START_OF_SPEECH", "INTERIM_TRANSCRIPT", "FINAL_TRANSCRIPT", "END_OF_SPEECH"} <= set(
        stt["events"]
    )


def test_livekit_tts_default_voice_speaks_chunked_and_streamed(run_client):
    tts = run_client("livekit")["tts"]
    assert tts["voice"] == "Magpie-Multilingual.EN-US.Leo"
    assert tts["sample_rates"] == [16000]
    assert tts["synthesize_samples"] / 16000 > 1.0 and tts["stream_samples"] / 16000 > 1.0
