"""TTS as third-party Riva clients call it with their defaults: Magpie voice names (Pipecat, LiveKit)
and talk.py's OGGOPUS at its default 44100 Hz, streaming and not, through riva.client."""

from __future__ import annotations

import io

import grpc
import pytest
import riva.client
import soundfile

from tests.integration.tts.conftest import pcm, rms

pytestmark = pytest.mark.integration

TEXT = "Your table is booked for four. See you at seven."
TALK_PY_RATE = 44100  # python-clients scripts/tts/talk.py --sample-rate-hz default


@pytest.mark.parametrize("online", [False, True])
@pytest.mark.parametrize("voice", ["", "Magpie-Multilingual.EN-US.Aria"])
def test_oggopus_at_44100_hz_is_coded_at_48000(client, voice, online):
    kwargs = {"voice_name": voice, "language_code": "en-US", "sample_rate_hz": TALK_PY_RATE}
    kwargs["encoding"] = riva.client.AudioEncoding.OGGOPUS
    if online:
        data = b"".join(r.audio for r in client.synthesize_online(TEXT, **kwargs))
    else:
        data = client.synthesize(TEXT, **kwargs).audio
    samples, rate = soundfile.read(io.BytesIO(data))
    reference = pcm(client.synthesize(TEXT, voice_name=voice, sample_rate_hz=16000).audio)
    assert rate == 48000
    assert samples.size / rate == pytest.approx(reference.size / 16000, abs=0.1)
    assert rms(samples) > 0.01


@pytest.mark.parametrize(
    ("alias", "voice"),
    [
        ("Magpie-Multilingual.EN-US.Aria", "English-US.Female-1"),  # Pipecat NvidiaTTSService default
        ("Magpie-Multilingual.EN-US.Leo", "English-US.Male-2"),  # LiveKit nvidia.TTS default
        ("Magpie-Multilingual.EN-US.Leo.Calm", "English-US.Male-2"),  # a Magpie emotion
    ],
)
def test_magpie_voice_names_speak_with_their_alias_voice(client, alias, voice):
    by_alias = client.synthesize(
        "one two three", voice_name=alias, language_code="en-US", sample_rate_hz=16000
    )
    direct = client.synthesize("one two three", voice_name=voice, language_code="en-US", sample_rate_hz=16000)
    assert abs(len(by_alias.audio) - len(direct.audio)) < 0.1 * len(direct.audio)
    if voice == "English-US.Male-2":
        assert by_alias.audio == direct.audio  # kal16 is deterministic


def test_another_languages_voice_is_not_found_listing_what_exists(client):
    with pytest.raises(grpc.RpcError) as err:
        client.synthesize("hola", voice_name="Magpie-Multilingual.ES-US.Diego", language_code="es-US")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert (
        "English-US.Male-2" in err.value.details() and "Magpie-Multilingual.EN-US.Aria" in err.value.details()
    )
