"""Pipecat's NVIDIA services (pipecat-ai[nvidia] 1.14, pinned in pipecat.lock.txt) against the
running stack, with their defaults except `server` and `use_ssl=False`: NvidiaSTTService (which
sends no model name) and NvidiaTTSService (default voice Magpie-Multilingual.EN-US.Aria: an alias)."""

from __future__ import annotations

import pytest

from tests.integration.clients.conftest import SPOKEN

pytestmark = pytest.mark.integration


def test_pipecat_stt_transcribes_with_interims(run_client):
    stt = run_client("pipecat")["stt"]
    assert stt["errors"] == []
    # Pipecat asks for punctuation and the spoken form: Whisper's capitals and full stop, words
    assert stt["finals"] == ["Three seven one."], SPOKEN
    assert stt["interims"], "the pipeline saw no interim transcription"


def test_pipecat_tts_default_voice_speaks(run_client):
    tts = run_client("pipecat")["tts"]
    assert tts["voice"] == "Magpie-Multilingual.EN-US.Aria"  # the default was left alone
    assert tts["errors"] == []
    assert tts["sample_rates"] == [24000]  # Pipecat's default output rate
    assert tts["audio_bytes"] / 2 / 24000 > 1.0  # over a second of speech for the sentence
