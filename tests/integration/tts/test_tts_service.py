"""The TTS service against a real tritonserver, called as a Riva user would (riva.client)."""

from __future__ import annotations

import io
import threading
import uuid

import grpc
import numpy as np
import pytest
import riva.client
import soundfile
from riva.client.proto import riva_tts_pb2 as rtts

from rivulet.tts.chunking import SENTENCE_PAUSE_MS
from tests.integration.tts.conftest import SERVICE, pcm, rms, start_tts
from tests.support import ServiceProcess, free_port, metric, wait_for_health, wait_for_metric

pytestmark = pytest.mark.integration

EMBEDDED_VOICES = [
    "English-US.Female-1",
    "English-US.Male-1",
    "English-US.Male-2",
    "English-US.Female-2",
    "English-US.Male-3",
    "English-US.Female-3",
]
NEURAL = "English-US-Tiny.Neural-1"
SENTENCES = [f"This is sentence number {i}, and it keeps going for quite a while." for i in range(1, 30)]
LONG_TEXT = " ".join(SENTENCES)


def list_voices(client: riva.client.SpeechSynthesisService) -> dict:
    """What riva's scripts/tts/talk.py --list-voices prints, computed the same way."""
    response = client.stub.GetRivaSynthesisConfig(rtts.RivaSynthesisConfigRequest())
    models: dict = {}
    for config in response.model_config:
        language = config.parameters["language_code"]
        voice_name = config.parameters["voice_name"]
        subvoices = [v.split(":")[0] for v in config.parameters["subvoices"].split(",")]
        models.setdefault(language, {"voices": []})["voices"].extend(f"{voice_name}.{s}" for s in subvoices)
    return models


def test_list_voices_as_talk_py_reads_them(client):
    voices = list_voices(client)
    assert set(voices) == {"en-US"}
    assert {*EMBEDDED_VOICES, NEURAL} <= set(voices["en-US"]["voices"])
    one = client.stub.GetRivaSynthesisConfig(rtts.RivaSynthesisConfigRequest(model_name="tts_embedded"))
    assert [c.model_name for c in one.model_config] == ["tts_embedded"]
    assert one.model_config[0].parameters["default_voice"] == "true"


def test_unknown_model_in_config_is_not_found(client):
    with pytest.raises(grpc.RpcError) as err:
        client.stub.GetRivaSynthesisConfig(rtts.RivaSynthesisConfigRequest(model_name="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "tts_embedded" in err.value.details()


@pytest.mark.parametrize("voice", EMBEDDED_VOICES)
def test_synthesize_every_voice(client, voice):
    reply = client.synthesize("Set an alarm for 7:30 tomorrow.", voice_name=voice, sample_rate_hz=22050)
    audio = pcm(reply.audio)
    assert 1.0 < audio.size / 22050 < 6.0
    assert rms(audio) > 0.01
    assert reply.meta.processed_text == "Set an alarm for seven thirty tomorrow."


def test_default_voice_and_language_prefix(client):
    by_default = client.synthesize("hello there", sample_rate_hz=16000)
    by_name = client.synthesize("hello there", voice_name="English-US.Male-2", sample_rate_hz=16000)
    by_prefix = client.synthesize("hello there", language_code="en", sample_rate_hz=16000)
    assert by_default.audio == by_name.audio == by_prefix.audio  # kal16 is a deterministic diphone voice
    # flite's clustergen voices excite with random noise: the same voice gives about the same length
    slt = [
        client.synthesize("hello there", voice_name="English-US.Female-1", sample_rate_hz=16000) for _ in "ab"
    ]
    assert len(slt[0].audio) == pytest.approx(len(slt[1].audio), rel=0.03)


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 44100, 48000])
def test_sample_rates_are_resampled(client, rate):
    reply = client.synthesize("one two three", voice_name="English-US.Male-2", sample_rate_hz=rate)
    reference = client.synthesize("one two three", voice_name="English-US.Male-2", sample_rate_hz=16000)
    seconds, expected = len(reply.audio) / 2 / rate, len(reference.audio) / 2 / 16000
    assert seconds == pytest.approx(expected, rel=0.01)


def test_oggopus_is_a_valid_ogg_file(client):
    reply = client.synthesize(
        "one two three",
        voice_name="English-US.Male-2",
        sample_rate_hz=48000,
        encoding=riva.client.AudioEncoding.OGGOPUS,
    )
    samples, rate = soundfile.read(io.BytesIO(reply.audio))
    assert rate == 48000 and 0.5 < samples.size / rate < 4 and rms(samples) > 0.01


def test_synthesize_online_one_text_streams_sentence_by_sentence(client):
    text = "Good morning. The weather today is sunny. Your first meeting is at 9 am."
    responses = list(client.synthesize_online(text, voice_name="English-US.Male-2", sample_rate_hz=16000))
    assert len(responses) >= 3  # at least one piece per sentence
    streamed = b"".join(r.audio for r in responses)
    whole = client.synthesize(text, voice_name="English-US.Male-2", sample_rate_hz=16000).audio
    assert streamed == whole  # the same pieces, concatenated
    assert responses[0].meta.processed_text.endswith("at nine a m.")


def test_synthesize_online_several_texts_in_order(client):
    texts = ["Hello there. ", "How are ", "you today? I am", " fine, thanks."]
    responses = list(client.synthesize_online(texts, voice_name="English-US.Male-3", sample_rate_hz=16000))
    units = [r.meta.text for r in responses if r.meta.text]
    assert units == ["Hello there. ", "How are you today? ", "I am fine, thanks."]
    streamed = pcm(b"".join(r.audio for r in responses))
    parts = [
        pcm(client.synthesize(u, voice_name="English-US.Male-3", sample_rate_hz=16000).audio) for u in units
    ]
    pauses = (len(units) - 1) * SENTENCE_PAUSE_MS * 16  # units join with a sentence pause
    assert streamed.size == pytest.approx(sum(p.size for p in parts) + pauses, rel=0.02)
    # in order: the stream starts with the first unit's audio
    head = parts[0][: parts[0].size // 2]
    assert np.allclose(streamed[: head.size], head, atol=2e-3)


def test_cancel_mid_stream_stops_the_reply_and_drains_the_triton_stream(client, tts, triton):
    """A client that hangs up mid-reply (barge-in) gets nothing more, and the service lets Triton end
    the stream (drained) rather than cancel it: mid-reply cancels crash tritonserver 2.51."""
    name, model = "rivulet_tts_triton_streams_total", "tts_embedded"
    drained = metric(tts, name, model=model, ending="drained")
    cancelled = metric(tts, name, model=model, ending="cancelled")
    request_id = f"cancel-{uuid.uuid4().hex[:8]}"
    auth = riva.client.Auth(uri=tts.address, metadata_args=[["x-request-id", request_id]])
    stream = riva.client.SpeechSynthesisService(auth).synthesize_online(
        LONG_TEXT, voice_name="English-US.Male-1", sample_rate_hz=16000
    )
    first = next(stream)
    assert first.audio
    stream.cancel()
    with pytest.raises(grpc.RpcError) as err:
        list(stream)
    assert err.value.code() == grpc.StatusCode.CANCELLED
    # draining lets Triton finish LONG_TEXT: over 15 s on 2 busy cores (a clean run beside a make run)
    wait_for_metric(tts, name, lambda v: v >= drained + 1, timeout_s=60.0, model=model, ending="drained")
    assert metric(tts, name, model=model, ending="cancelled") == cancelled
    assert f"tts request {request_id} cancelled" not in triton.log_file.read_text(errors="replace")
    # the service is fine afterwards
    assert client.synthesize("still here", sample_rate_hz=16000).audio


def test_cancelling_one_stream_does_not_disturb_another(client, tts):
    results: dict = {}

    def full() -> None:
        results["full"] = list(
            client.synthesize_online(
                " ".join(SENTENCES[:8]), voice_name="English-US.Male-2", sample_rate_hz=16000
            )
        )

    thread = threading.Thread(target=full)
    thread.start()
    cancelled = client.synthesize_online(LONG_TEXT, voice_name="English-US.Male-2", sample_rate_hz=16000)
    next(cancelled)
    cancelled.cancel()
    thread.join(60)
    whole = client.synthesize(
        " ".join(SENTENCES[:8]), voice_name="English-US.Male-2", sample_rate_hz=16000
    ).audio
    assert b"".join(r.audio for r in results["full"]) == whole


def test_custom_dictionary_and_phoneme_tag_change_the_pronunciation(client):
    voice = "English-US.Male-3"  # espeak-ng takes exact phonemes
    plain = client.synthesize("I like tomato", voice_name=voice, sample_rate_hz=16000).audio
    custom = client.synthesize(
        "I like tomato",
        voice_name=voice,
        sample_rate_hz=16000,
        custom_dictionary={"tomato": "T AH0 M AA1 T OW0"},
    ).audio
    ssml = '<speak>I like <phoneme alphabet="x-arpabet" ph="T AH0 M AA1 T OW0">tomato</phoneme></speak>'
    tagged = client.synthesize(ssml, voice_name=voice, sample_rate_hz=16000).audio
    assert custom != plain
    assert custom == tagged
    ipa = client.synthesize(
        "I like tomato", voice_name=voice, sample_rate_hz=16000, custom_dictionary={"tomato": "təˈmɑːtoʊ"}
    ).audio
    assert ipa == custom


def test_ssml_break_sub_and_prosody(client):
    voice = "English-US.Male-2"
    with_break = pcm(
        client.synthesize(
            '<speak>one <break time="1500ms"/> two</speak>', voice_name=voice, sample_rate_hz=16000
        ).audio
    )
    without = pcm(client.synthesize("<speak>one two</speak>", voice_name=voice, sample_rate_hz=16000).audio)
    assert (with_break.size - without.size) / 16000 == pytest.approx(1.5, abs=0.25)
    slow = client.synthesize(
        '<speak><prosody rate="x-slow">one two three four</prosody></speak>',
        voice_name=voice,
        sample_rate_hz=16000,
    ).audio
    fast = client.synthesize(
        '<speak><prosody rate="x-fast">one two three four</prosody></speak>',
        voice_name=voice,
        sample_rate_hz=16000,
    ).audio
    assert len(slow) > 1.5 * len(fast)
    sub = client.synthesize('<speak><sub alias="World Wide Web">WWW</sub></speak>', voice_name=voice)
    assert sub.meta.processed_text == "World Wide Web"


def _error(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


@pytest.mark.parametrize(
    ("kwargs", "code", "needle"),
    [
        ({"text": ""}, grpc.StatusCode.INVALID_ARGUMENT, "text is empty"),
        ({"text": "x" * 2001}, grpc.StatusCode.INVALID_ARGUMENT, "the limit is 2000"),
        (
            {"text": "hi", "voice_name": "English-US.Robot-9"},
            grpc.StatusCode.NOT_FOUND,
            "English-US.Female-1",
        ),
        ({"text": "hi", "language_code": "de-DE"}, grpc.StatusCode.NOT_FOUND, "available languages: en-US"),
        (
            {"text": "hi", "voice_name": "English-US.Male-1", "language_code": "fr-FR"},
            grpc.StatusCode.NOT_FOUND,
            "speaks en-US",
        ),
        (
            {"text": "<speak>hi <emphasis>x</emphasis></speak>"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "line 1, column 11, <emphasis>",
        ),
        ({"text": "<speak>hi\n<break time='x'/></speak>"}, grpc.StatusCode.INVALID_ARGUMENT, "line 2"),
        ({"text": "<speak>hi"}, grpc.StatusCode.INVALID_ARGUMENT, "malformed SSML at line 1"),
        ({"text": "hi", "sample_rate_hz": 4000}, grpc.StatusCode.INVALID_ARGUMENT, "from 8000 to 48000"),
        (
            {"text": "hi", "encoding": riva.client.AudioEncoding.FLAC},
            grpc.StatusCode.INVALID_ARGUMENT,
            "use LINEAR_PCM or OGGOPUS",
        ),
        ({"text": "hi", "custom_dictionary": {"hi": "K Q1"}}, grpc.StatusCode.INVALID_ARGUMENT, "'Q1'"),
        ({"text": '<speak><break time="1s"/></speak>'}, grpc.StatusCode.INVALID_ARGUMENT, "nothing to speak"),
    ],
)
def test_bad_requests_say_what_to_fix(client, kwargs, code, needle):
    kwargs.setdefault("sample_rate_hz", 16000)
    error = _error(lambda: client.synthesize(**kwargs))
    assert error.code() == code
    assert needle in error.details()


def test_bad_online_streams_say_what_to_fix(client):
    error = _error(lambda: list(client.synthesize_online(["Hello. ", "x" * 2001], sample_rate_hz=16000)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "the limit is 2000" in error.details()
    error = _error(lambda: list(client.synthesize_online(["", "  "], sample_rate_hz=16000)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "nothing to speak" in error.details()
    error = _error(lambda: list(client.synthesize_online("hi", voice_name="Nope.X", sample_rate_hz=16000)))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_neural_voice_streams_vocoder_chunks(client):
    responses = list(
        client.synthesize_online(
            "Please set an alarm for seven thirty.", voice_name=NEURAL, sample_rate_hz=22050
        )
    )
    sizes = [len(r.audio) // 2 for r in responses]
    assert len(sizes) >= 3  # the first short chunk, then the rest of the spectrogram in chunks
    assert sizes[0] == 16 * 256  # first_chunk_frames × hop at the native 22.05 kHz
    whole = client.synthesize(
        "Please set an alarm for seven thirty.", voice_name=NEURAL, sample_rate_hz=22050
    )
    assert b"".join(r.audio for r in responses) == whole.audio
    resampled = client.synthesize(
        "Please set an alarm for seven thirty.", voice_name=NEURAL, sample_rate_hz=16000
    )
    assert len(resampled.audio) / 2 / 16000 == pytest.approx(len(whole.audio) / 2 / 22050, rel=0.01)


def test_triton_down_is_unavailable(tmp_path):
    dead = f"127.0.0.1:{free_port()}"
    process = ServiceProcess(
        "rivulet.tts", tmp_path / "tts.log", {"triton_url": dead, "readiness_interval_s": 0.2}
    )
    process.start()
    try:
        wait_for_health(process.address, want="NOT_SERVING", service=SERVICE, timeout_s=30)
        client = riva.client.SpeechSynthesisService(riva.client.Auth(uri=process.address))
        error = _error(lambda: client.synthesize("hello", sample_rate_hz=16000))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "no TTS model is ready" in error.details()
    finally:
        process.stop()


def test_stream_text_limit_is_resource_exhausted(triton, tmp_path):
    service = start_tts(triton.grpc_url, tmp_path / "tts.log", tts_max_stream_chars=100)
    try:
        client = riva.client.SpeechSynthesisService(riva.client.Auth(uri=service.address))
        texts = ["This sentence has a few words. "] * 5  # 160 characters in all
        error = _error(lambda: list(client.synthesize_online(texts, voice_name="English-US.Male-2")))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "over 100 characters" in error.details()
    finally:
        service.stop()


@pytest.mark.parametrize("voice", ["English-US.Female-1", "English-US.Female-3", NEURAL])
def test_prosody_rate_reaches_every_engine(client, voice):
    def seconds(rate: str) -> float:
        ssml = f'<speak><prosody rate="{rate}">please set an alarm</prosody></speak>'
        return len(client.synthesize(ssml, voice_name=voice, sample_rate_hz=16000).audio) / 32000

    assert seconds("x-slow") > 1.5 * seconds("x-fast")


def test_synthesize_online_oggopus_is_one_ogg_stream(client):
    responses = list(
        client.synthesize_online(
            ["Good morning. ", "The weather today is sunny and warm."],
            voice_name="English-US.Male-2",
            sample_rate_hz=24000,
            encoding=riva.client.AudioEncoding.OGGOPUS,
        )
    )
    samples, rate = soundfile.read(io.BytesIO(b"".join(r.audio for r in responses)))
    pcm_reply = client.synthesize(
        "Good morning. The weather today is sunny and warm.",
        voice_name="English-US.Male-2",
        sample_rate_hz=24000,
    )
    assert rate == 24000
    assert samples.size / rate == pytest.approx(len(pcm_reply.audio) / 2 / rate, abs=0.4)
