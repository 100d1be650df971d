"""The gateway's WebSocket protocol: parsing, order, limits, and encoding of dialog responses."""

from __future__ import annotations

import json

import pytest
from riva.proto import riva_audio_pb2 as ra

from rivulet.dialog.v1 import dialog_pb2 as pb
from rivulet.gateway.protocol import (
    Close,
    MessageOrder,
    ProtocolError,
    RateLimit,
    close_reason,
    decode_audio,
    encode_audio,
    encode_response,
    parse_audio,
    parse_json,
    parse_playback,
    parse_start,
    parse_text,
)


def refused(code: Close, fn, *args) -> str:
    with pytest.raises(ProtocolError) as caught:
        fn(*args)
    assert caught.value.code == code
    return caught.value.reason


def test_start_becomes_a_converse_config_for_16k_pcm():
    start = parse_start(
        {"type": "start", "session_id": "web-1", "voice": "English-US.Male-1", "interim": False}
    )
    config = start.config()
    assert config.session_id == "web-1"
    assert (config.audio.encoding, config.audio.sample_rate_hz) == (ra.LINEAR_PCM, 16000)
    assert config.voice.voice_name == "English-US.Male-1" and config.voice.enabled
    assert config.barge_in.enabled and not config.interim_results


@pytest.mark.parametrize(
    "message, says",
    [
        ({"session_id": ""}, "session_id"),
        ({"session_id": "a b"}, "session_id"),
        ({"session_id": "x" * 129}, "session_id"),
        ({"session_id": "ok", "voice": 5}, "'voice' must be a str"),
        ({"session_id": "ok", "barge_in": "yes"}, "'barge_in' must be a bool"),
        ({"session_id": "ok", "stop_silence_ms": True}, "'stop_silence_ms' must be a int"),
        ({"session_id": "ok", "stop_silence_ms": 5000}, "0-2000"),
    ],
)
def test_bad_start_fields_are_named(message, says):
    assert says in refused(Close.BAD_MESSAGE, parse_start, {"type": "start", **message})


@pytest.mark.parametrize("data", ["not json", "[1, 2]", '{"type": "hello"}', '{"text": "no type"}'])
def test_json_messages_need_a_known_type(data):
    assert "type" in refused(Close.BAD_MESSAGE, parse_json, data) or "JSON" in refused(
        Close.BAD_MESSAGE, parse_json, data
    )


def test_text_playback_and_audio_requests():
    assert parse_text({"text": "  what time is it "}).text == "what time is it"
    refused(Close.BAD_MESSAGE, parse_text, {"text": "  "})
    refused(Close.BAD_MESSAGE, parse_text, {"text": "x" * 513})
    playback = parse_playback({"turn_id": "t1", "played_ms": 840, "finished": True}).playback
    assert (playback.turn_id, playback.played_ms, playback.finished) == ("t1", 840, True)
    refused(Close.BAD_MESSAGE, parse_playback, {"turn_id": "", "played_ms": 1})
    refused(Close.BAD_MESSAGE, parse_playback, {"turn_id": "t", "played_ms": -1})
    assert parse_audio(b"\x00\x01" * 320).audio == b"\x00\x01" * 320
    assert "even" in refused(Close.BAD_MESSAGE, parse_audio, b"\x00" * 3)
    refused(Close.BAD_MESSAGE, parse_audio, b"")


def test_start_comes_first_and_once():
    order = MessageOrder()
    assert "before 'start'" in refused(Close.OUT_OF_ORDER, order.check, "audio")
    order.check("start")
    order.check("audio")
    order.check("text")
    assert "already" in refused(Close.OUT_OF_ORDER, order.check, "start")


def test_rate_limit_allows_a_second_of_burst_then_the_rate():
    limit = RateLimit(50, now=0.0)
    assert sum(limit.allow(0.0) for _ in range(80)) == 50
    assert not limit.allow(0.001)
    assert sum(limit.allow(1.0) for _ in range(80)) == 50  # refilled after a second


def test_close_reason_fits_a_close_frame():
    assert len(close_reason("é" * 200).encode()) <= 123
    assert close_reason("short") == "short"


def test_retry_codes():
    assert Close.DIALOG_UNAVAILABLE.retry and Close.BUSY.retry and Close.GOING_AWAY.retry
    assert not Close.BAD_MESSAGE.retry and not Close.TOO_LARGE.retry


def test_responses_become_json_messages():
    transcript = pb.ConverseResponse(turn_id="t", transcript=pb.Transcript(text="<b>hi</b>", is_final=True))
    assert encode_response(transcript) == {
        "type": "transcript", "turn_id": "t", "text": "<b>hi</b>", "is_final": True,
        "confidence": 0.0, "typed": False,
    }  # fmt: skip
    slot = pb.Slot(name="duration", value="ten minutes", score=0.8)
    understanding = pb.ConverseResponse(
        turn_id="t", understanding=pb.Understanding(intent="SetTimer", score=0.9, slots=[slot])
    )
    message = encode_response(understanding)
    assert message["intent"] == "SetTimer" and message["slots"][0]["value"] == "ten minutes"
    event = pb.ConverseResponse(turn_id="t", event=pb.TurnEvent(type=pb.TurnEvent.BARGE_IN, played_ms=420))
    assert encode_response(event)["event"] == "BARGE_IN" and encode_response(event)["played_ms"] == 420
    latency = encode_response(
        pb.ConverseResponse(turn_id="t", latency=pb.TurnLatency(nlu_ms=4.25, total_ms=250))
    )
    assert latency["nlu_ms"] == 4.25 and latency["total_ms"] == 250
    json.dumps(latency)
    assert encode_response(pb.ConverseResponse(turn_id="t", audio=pb.ReplyAudio(audio=b"\0\0"))) is None


@pytest.mark.parametrize("turn_id", ["t", "tu", "turn-1234567"])
def test_reply_audio_frames_carry_their_header_and_aligned_pcm(turn_id):
    pcm = bytes(range(200))
    response = pb.ConverseResponse(
        turn_id=turn_id, audio=pb.ReplyAudio(audio=pcm, sample_rate_hz=16000, offset_ms=40)
    )
    frame = encode_audio(response)
    header, audio = decode_audio(frame)
    assert header == {"turn_id": turn_id, "sample_rate_hz": 16000, "offset_ms": 40}
    assert audio == pcm
    assert (len(frame) - len(pcm)) % 2 == 0  # Int16Array over the rest needs an even offset
