"""The app in real headless Chromium against the real stack (Triton, Redis, ASR, NLU, TTS, dialog,
gateway), a WAV file of a project voice as the microphone: spoken turns, typed turns, barge-in,
two browsers' sessions, a gateway restart mid-conversation, and bad WebSocket messages."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid

import pytest
from playwright.async_api import async_playwright

from bench.gateway_support import GatewayProcess, launch_chromium, microphone_wav
from rivulet.core.processes import ServiceProcess, free_port

pytestmark = pytest.mark.integration
TIMEOUT_MS = 60_000
DIALOG = "rivulet.dialog.v1.Dialog"


def session_of(gateway: GatewayProcess, session_id: str) -> dict:
    with urllib.request.urlopen(f"{gateway.url}/api/session/{session_id}", timeout=10) as reply:
        return json.loads(reply.read())


async def open_app(browser, gateway: GatewayProcess, session: str = ""):
    context = await browser.new_context(bypass_csp=True)  # Playwright evaluates strings: eval
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(gateway.url + (f"/?session={session}" if session else "/"))
    await page.wait_for_function("window.rivulet && window.rivulet.readyCount > 0", timeout=TIMEOUT_MS)
    return context, page, errors


async def type_turn(page, text: str) -> dict:
    """Type a turn and wait for its reply text; returns the turn the page recorded."""
    before = await page.evaluate("Object.keys(window.rivulet.turns).length")
    await page.fill("#text", text)
    await page.press("#text", "Enter")
    await page.wait_for_function(
        f"Object.values(window.rivulet.turns).filter(t => t.reply && t.latency).length > {before}",
        timeout=TIMEOUT_MS,
    )
    return await page.evaluate("Object.values(window.rivulet.turns).filter(t => t.reply).at(-1)")


@pytest.fixture(scope="module")
def spoken_wav(tmp_path_factory):
    return microphone_wav(tmp_path_factory.mktemp("mic") / "turn.wav", ["what time is it"], gap_s=6.0)


async def test_spoken_turn_shows_its_transcript_and_plays_the_reply(voice_gateway, spoken_wav):
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright, spoken_wav.path)
        context, page, errors = await open_app(browser, voice_gateway)
        await page.click("#mic")
        await page.wait_for_function(
            "Object.values(window.rivulet.turns).some(t => t.transcript !== undefined && t.samples > 0"
            " && t.firstPlayAt !== null && t.latency)",
            timeout=TIMEOUT_MS,
        )
        turn = await page.evaluate("Object.values(window.rivulet.turns).find(t => t.samples > 0)")
        scheduled = await page.evaluate("window.rivulet.samplesScheduled")
        assert scheduled >= turn["samples"] > 16000 * 0.5  # over half a second of reply was scheduled
        assert turn["transcript"] and turn["reply"]
        assert await page.locator("#log li.user").count() >= 1
        assert await page.locator("#log li.assistant").count() >= 1
        assert await page.locator("#waterfall li").count() >= 1
        assert turn["latency"]["endpointing_ms"] > 0  # a voice turn: the ASR stages were measured
        # the level meter moved with the speech, redrawn once per five 20 ms frames at most (each
        # redraw costs the renderer: once a frame took a tenth of a core)
        meter = await page.evaluate("window.rivulet.meter")
        assert meter["loudest"] > 0.1 and meter["fewestBetween"] >= 5
        # the page's own audio clock advanced past the reply's start: it was played, not just queued
        await page.wait_for_function(
            f"window.rivulet.audioTime() > {turn['firstPlayAt']} + 0.2", timeout=TIMEOUT_MS
        )
        assert not errors
        await context.close()
        await browser.close()


async def test_typed_turn_text_is_shown_as_text_and_the_reply_plays(voice_gateway):
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        context, page, errors = await open_app(browser, voice_gateway)
        turn = await type_turn(page, "set a timer for ten minutes")
        assert turn["intent"] == "SetTimer" and turn["reply"]
        await page.wait_for_function("window.rivulet.samplesScheduled > 8000", timeout=TIMEOUT_MS)
        assert "SetTimer" in await page.locator("#log li.user").last.text_content()
        await page.wait_for_function(
            "document.querySelector('#session').textContent.includes('timer')", timeout=TIMEOUT_MS
        )
        markup = '<img src="x" onerror="window.pwned = 1"><b>bold</b>'
        await type_turn(page, markup)
        assert await page.locator("#log img, #log b").count() == 0
        assert markup in await page.locator("#log li.user").last.text_content()
        assert await page.evaluate("window.pwned === undefined")
        assert "You said" in await page.locator("#live").text_content()  # the ARIA live region
        # the voice picker lists the voices of GetRivaSynthesisConfig
        voices = [v["name"] for v in json.loads(voice_gateway.get("/api/voices")[1])["voices"]]
        options = await page.locator("#voice option").evaluate_all("options => options.map(o => o.value)")
        assert voices and options == ["", *voices]
        assert not errors
        await context.close()
        await browser.close()


async def test_barge_in_stops_playback_at_once(voice_gateway, tmp_path):
    # a question with a long answer, then new speech 3 s after it ends, while the answer plays (room
    # for a slow second pass on a busy machine: the reply must have started)
    wav = microphone_wav(tmp_path / "barge.wav", ["what can you do", "what time is it"], gap_s=3.0)
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright, wav.path)
        context, page, errors = await open_app(browser, voice_gateway)
        await page.click("#mic")
        await page.wait_for_function("window.rivulet.bargeIns.length > 0", timeout=TIMEOUT_MS)
        barge = await page.evaluate("window.rivulet.bargeIns[0]")
        interrupted = await page.evaluate(f"window.rivulet.turns[{json.dumps(barge['turn_id'])}]")
        reply_ms = 1000 * interrupted["samples"] / 16000
        assert 0 < barge["played_ms"] < reply_ms  # stopped partway through what had arrived
        assert await page.locator("#log li.notice", has_text="interrupted").count() >= 1
        assert not errors
        await context.close()
        await browser.close()


async def test_two_browsers_keep_separate_sessions(voice_gateway):
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        (_context_a, page_a, _), (_context_b, page_b, _) = await asyncio.gather(
            open_app(browser, voice_gateway), open_app(browser, voice_gateway)
        )
        await asyncio.gather(
            type_turn(page_a, "add milk to my shopping list"), type_turn(page_b, "what time is it")
        )
        session_a = await page_a.evaluate("window.rivulet.session")
        session_b = await page_b.evaluate("window.rivulet.session")
        assert session_a != session_b
        history_a = [t["user_text"] for t in session_of(voice_gateway, session_a)["history"]]
        history_b = [t["user_text"] for t in session_of(voice_gateway, session_b)["history"]]
        assert history_a == ["add milk to my shopping list"] and history_b == ["what time is it"]
        await browser.close()


async def test_gateway_restart_the_page_continues_the_same_session(voice_stack, tmp_path):
    gateway = GatewayProcess(voice_stack.dialogs[0].address, tmp_path / "gateway.log").start()
    session = f"restart-{uuid.uuid4().hex[:10]}"
    try:
        async with async_playwright() as playwright:
            browser = await launch_chromium(playwright)
            _context, page, errors = await open_app(browser, gateway, session)
            await type_turn(page, "add eggs to my shopping list")
            gateway.stop()
            await page.wait_for_function("window.rivulet.closes.length > 0", timeout=TIMEOUT_MS)
            assert "reconnecting" in await page.text_content("#status")
            gateway.start()
            await page.wait_for_function("window.rivulet.readyCount >= 2", timeout=TIMEOUT_MS)
            await type_turn(page, "what is on my shopping list")
            stored = session_of(gateway, session)
            assert stored["turns"] == 2
            assert "eggs" in await page.locator("#log li.assistant").last.text_content()
            assert not errors
            await browser.close()
    finally:
        gateway.stop()


async def test_bad_websocket_messages_from_a_page_get_close_codes(voice_gateway):
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        _context, page, _errors = await open_app(browser, voice_gateway)
        result = await page.evaluate(
            """async () => {
                const closed = (send) => new Promise((resolve) => {
                    const ws = new WebSocket(`ws://${location.host}/ws`);
                    ws.onopen = () => send(ws);
                    ws.onclose = (e) => resolve([e.code, e.reason]);
                });
                return [
                    await closed((ws) => ws.send("hello")),
                    await closed((ws) => ws.send(new Uint8Array(640))),
                    await closed((ws) => { ws.send(JSON.stringify({type: "start", session_id: "x"}));
                                           ws.send(new Uint8Array(9000)); }),
                ];
            }"""
        )
        assert result[0][0] == 4400 and "JSON" in result[0][1]
        assert result[1][0] == 4409 and "start" in result[1][1]
        assert result[2][0] == 4413
        turn = await type_turn(page, "what time is it")  # the page's own conversation goes on
        assert turn["reply"]
        await browser.close()


async def test_push_to_talk_sends_speech_only_while_held(voice_gateway, spoken_wav):
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright, spoken_wav.path)
        context, page, errors = await open_app(browser, voice_gateway)
        await page.check("input[value=push-to-talk]")
        await page.click("#mic")
        await asyncio.sleep(spoken_wav.duration_s + 1)  # the whole WAV went by, not held: silence sent
        assert (
            await page.evaluate("Object.values(window.rivulet.turns).filter(t => t.transcript).length") == 0
        )
        await page.focus("#ptt")
        await page.keyboard.down("Space")
        await asyncio.sleep(spoken_wav.duration_s + 0.5)  # held over one whole utterance
        await page.keyboard.up("Space")
        await page.wait_for_function(
            "Object.values(window.rivulet.turns).some(t => t.transcript !== undefined)", timeout=TIMEOUT_MS
        )
        assert not errors
        await context.close()
        await browser.close()


async def test_dialog_service_going_away_is_shown_and_the_page_reconnects(voice_stack, tmp_path):
    port = free_port()
    settings = {**voice_stack.dialog_settings(), "grpc_port": port, "shutdown_grace_s": 1}
    dialog = ServiceProcess("rivulet.dialog", tmp_path / "dialog.log", settings).start_serving(DIALOG)
    gateway = GatewayProcess(dialog.address, tmp_path / "gateway.log").start()
    session = f"dialog-gone-{uuid.uuid4().hex[:10]}"
    try:
        async with async_playwright() as playwright:
            browser = await launch_chromium(playwright)
            _context, page, errors = await open_app(browser, gateway, session)
            await type_turn(page, "add tea to my shopping list")
            dialog.stop()
            await page.wait_for_function(
                "window.rivulet.closes.some(c => c.code === 4503)", timeout=TIMEOUT_MS
            )
            assert "dialog service is unavailable" in await page.text_content("#status")
            dialog = ServiceProcess("rivulet.dialog", tmp_path / "dialog.log", settings).start_serving(DIALOG)
            await page.wait_for_function("window.rivulet.readyCount >= 2", timeout=TIMEOUT_MS)
            await type_turn(page, "what is on my shopping list")
            assert session_of(gateway, session)["turns"] == 2
            assert "tea" in await page.locator("#log li.assistant").last.text_content()
            assert not errors
            await browser.close()
    finally:
        gateway.stop()
        dialog.stop()


async def test_a_timer_firing_is_shown_and_spoken(voice_gateway):
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        _context, page, errors = await open_app(browser, voice_gateway)
        await type_turn(page, "set a timer for two seconds")
        await page.wait_for_function(
            "Object.entries(window.rivulet.turns)"
            ".some(([id, t]) => id.startsWith('announce-') && t.samples > 0)",
            timeout=TIMEOUT_MS,
        )
        assert await page.locator("#log li.notice", has_text="⏰").count() == 1
        assert "Announcement" in await page.locator("#live").text_content()
        assert not errors
        await browser.close()


async def test_headphones_box_turns_echo_cancellation_off_and_is_remembered(voice_gateway, spoken_wav):
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright, spoken_wav.path)
        context, page, errors = await open_app(browser, voice_gateway)
        assert not await page.is_checked("#headphones")  # loudspeakers by default
        await page.click("#mic")
        await page.wait_for_function("window.rivulet.microphone !== null", timeout=TIMEOUT_MS)
        assert await page.evaluate("window.rivulet.microphone.echoCancellation") is True
        await page.check("#headphones")  # the running microphone restarts without echo cancellation
        await page.wait_for_function(
            "window.rivulet.microphone && window.rivulet.microphone.echoCancellation === false",
            timeout=TIMEOUT_MS,
        )
        assert await page.get_attribute("#mic", "aria-pressed") == "true"
        frames = await page.evaluate("window.rivulet.frames.length")
        await page.wait_for_function(f"window.rivulet.frames.length > {frames + 10}", timeout=TIMEOUT_MS)
        await page.reload()  # remembered in localStorage
        await page.wait_for_function("window.rivulet && window.rivulet.readyCount > 0", timeout=TIMEOUT_MS)
        assert await page.is_checked("#headphones")
        await page.click("#mic")
        await page.wait_for_function("window.rivulet.microphone !== null", timeout=TIMEOUT_MS)
        assert await page.evaluate("window.rivulet.microphone.echoCancellation") is False
        assert not errors
        await context.close()
        await browser.close()
