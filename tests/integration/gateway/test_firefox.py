"""The app in real headless Firefox (Debian's firefox-esr over Marionette) against the real stack:
a typed turn whose reply plays, a spoken turn through Firefox's own capture path (getUserMedia
from a PulseAudio microphone playing a WAV, the AudioWorklet resampling 48 kHz to 16 kHz), and
barge-in stopping Web Audio playback partway."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bench.gateway_firefox import Firefox, PulseAudio, missing_firefox_tools
from bench.gateway_support import GatewayProcess, microphone_wav

pytestmark = pytest.mark.integration
TIMEOUT_S = 60.0


@pytest.fixture
def firefox(tmp_path) -> Iterator[tuple[Firefox, PulseAudio]]:
    if missing := missing_firefox_tools():
        pytest.fail(f"{', '.join(missing)} not installed: run `make setup` (scripts/ensure_browser.sh)")
    with PulseAudio(tmp_path / "pulse") as pulse, Firefox(tmp_path / "firefox", pulse) as browser:
        yield browser, pulse


def open_app(browser: Firefox, gateway: GatewayProcess, query: str = "") -> None:
    # the gateway's own origin as the page sees it (127.0.0.1 is a secure context like localhost)
    browser.open(gateway.url + "/" + query)
    browser.wait_for("window.rivulet && window.rivulet.readyCount > 0", TIMEOUT_S)


def played_turn(browser: Firefox, condition: str) -> dict:
    """The first turn matching `condition` (JS on `t`) whose reply audio the page's clock played."""
    played = "t.samples > 0 && t.firstPlayAt !== null"
    found = f"Object.values(window.rivulet.turns).find(t => {condition} && {played})"
    turn = browser.wait_for(found, TIMEOUT_S)
    browser.wait_for(f"window.rivulet.audioTime() > {turn['firstPlayAt']} + 0.2", TIMEOUT_S)
    return turn


def test_typed_turn_in_firefox(voice_gateway, firefox):
    browser, _pulse = firefox
    open_app(browser, voice_gateway)
    browser.type("#text", "set a timer for ten minutes")
    turn = played_turn(browser, "t.reply && t.latency")
    assert turn["intent"] == "SetTimer" and "timer" in turn["reply"].lower()
    assert turn["samples"] > 16000 * 0.5  # over half a second of reply audio scheduled and played
    assert "SetTimer" in browser.text("#log li.user")
    assert "You said" in browser.evaluate("document.querySelector('#live').textContent")
    assert browser.count("#waterfall li") >= 1
    assert browser.evaluate("window.rivulet.closes.length") == 0


def test_spoken_turn_in_firefox(voice_gateway, firefox, tmp_path):
    browser, pulse = firefox
    wav = microphone_wav(tmp_path / "turn.wav", ["what time is it"], gap_s=4.0)
    open_app(browser, voice_gateway)
    browser.click("#mic")
    browser.wait_for("window.rivulet.frames.length > 10", TIMEOUT_S)  # capturing: frames go out
    pulse.play(wav.path)
    turn = played_turn(browser, "t.transcript !== undefined && t.latency")
    assert turn["latency"]["endpointing_ms"] > 0  # a voice turn: the service's VAD ended it
    assert "time" in turn["transcript"].lower(), turn["transcript"]  # 48 kHz → 16 kHz capture heard right
    assert browser.evaluate("window.rivulet.microphone.echoCancellation") is True  # the default
    assert turn["reply"] and turn["samples"] > 16000 * 0.5
    assert browser.count("#log li.user") >= 1 and browser.count("#log li.assistant") >= 1
    # the capture worklet ran at Firefox's own rate and sent 20 ms frames: levels rose with the speech
    levels = [rms for _t, rms in browser.evaluate("window.rivulet.frames")]
    assert max(levels) > 0.01


def barge_in(browser: Firefox, pulse: PulseAudio, gateway: GatewayProcess, tmp_path, query: str) -> dict:
    """Ask a question with a long answer, then speak again once the answer plays (0.2 s into it,
    however long the machine takes to answer); returns the barge-in the page recorded."""
    question = microphone_wav(tmp_path / "question.wav", ["what can you do"], gap_s=0.5)
    interruption = microphone_wav(tmp_path / "barge.wav", ["what time is it"], gap_s=2.0, lead_s=0.0)
    open_app(browser, gateway, query)
    browser.click("#mic")
    browser.wait_for("window.rivulet.frames.length > 10", TIMEOUT_S)
    pulse.play(question.path)
    played_turn(browser, "t.reply")
    pulse.play(interruption.path)
    return browser.wait_for("window.rivulet.bargeIns[0]", TIMEOUT_S)


def test_barge_in_stops_playback_in_firefox_with_headphones(voice_gateway, firefox, tmp_path):
    browser, pulse = firefox
    barge = barge_in(browser, pulse, voice_gateway, tmp_path, "?headphones=1")
    assert browser.evaluate("window.rivulet.microphone.echoCancellation") is False
    assert browser.evaluate("document.querySelector('#headphones').checked") is True
    interrupted = browser.evaluate(f"window.rivulet.turns[{json.dumps(barge['turn_id'])}]")
    assert 0 < barge["played_ms"] < 1000 * interrupted["samples"] / 16000  # stopped partway
    assert browser.count("#log li.notice") >= 1 and "interrupted" in browser.text("#log li.notice")


@pytest.mark.xfail(
    reason="issue 16: Firefox's echo canceller lets only part of the user's speech through while the "
    "page plays a spoken reply (bench.firefox_echo --far-end speech: 17-62 of ~93 frames, 86-88 with "
    "it off), so the interruption is heard in most runs (every earlier clean-clone make test "
    "since 2026-12-06 03:00) but not always (twice no barge-in within 60 s: once on a "
    "loaded machine, once in the clean-clone make test at fe1dc1a on an idle one); with echo "
    "cancellation off (headphones mode) it is heard every time",
    strict=False,
)
def test_barge_in_stops_playback_in_firefox_with_echo_cancellation(voice_gateway, firefox, tmp_path):
    browser, pulse = firefox
    barge = barge_in(browser, pulse, voice_gateway, tmp_path, "")
    assert browser.evaluate("window.rivulet.microphone.echoCancellation") is True
    interrupted = browser.evaluate(f"window.rivulet.turns[{json.dumps(barge['turn_id'])}]")
    assert 0 < barge["played_ms"] < 1000 * interrupted["samples"] / 16000
