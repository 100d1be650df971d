"""The gateway and a real browser for tests and benchmarks.

`GatewayProcess` runs `python -m rivulet.gateway` against a dialog address; `launch_chromium` starts
the system Chromium headless (Playwright drives it through `executable_path`) with a WAV file as
its microphone; `microphone_wav` writes such a file from user turns spoken by the project's voices
and says where each turn's speech ends; `speech_ends` finds those ends again in the levels the page
captured (its own audio clock), so latency is measured from the page's point of view.
"""

from __future__ import annotations

import shutil
import ssl
import time
import urllib.error
import urllib.request
import wave
from dataclasses import dataclass
from pathlib import Path

from rivulet.core.processes import ServiceProcess, free_port

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
# FACTS.md: a WAV file as the microphone, headless, nothing reaching out.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # keep timers and audio running at full rate in pages that are not in front
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
RATE = 16_000


def chromium_path() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        if path := shutil.which(name):
            return path
    return None


async def launch_chromium(playwright, microphone: Path | None = None):
    """Headless system Chromium; `microphone`: a WAV file it plays (looped) as the microphone."""
    path = chromium_path()
    if path is None:
        raise RuntimeError("chromium is not installed: run `make setup` (scripts/ensure_browser.sh)")
    flags = list(CHROMIUM_FLAGS)
    if microphone is not None:
        flags.append(f"--use-file-for-fake-audio-capture={microphone}")
    return await playwright.chromium.launch(executable_path=path, args=flags, headless=True)


class GatewayProcess(ServiceProcess):
    """`python -m rivulet.gateway` on a fixed free port (a restart reuses it), logs to a file."""

    def __init__(self, dialog_address: str, log_path: Path, port: int = 0, **settings: str | int) -> None:
        self.gateway_port = port or free_port()
        env = {"gateway_port": self.gateway_port, "gateway_dialog_url": dialog_address, "log_format": "text"}
        super().__init__("rivulet.gateway", log_path, {**env, **settings})
        tls = settings.get("gateway_tls_self_signed") or settings.get("gateway_tls_cert")
        self.scheme = "https" if tls else "http"
        # tests and benches reach it by IP: its certificate (self-signed) is checked by the tests
        self.ssl = ssl._create_unverified_context() if tls else None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.gateway_port}"

    def get(self, path: str, timeout_s: float = 5.0) -> tuple[int, str]:
        """GET `path`: (status, body); an HTTP error status is returned, not raised."""
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=timeout_s, context=self.ssl) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def start(self, timeout_s: float = 30.0) -> GatewayProcess:
        """Start and wait until `/healthz` answers; on failure stop it and show its log's tail."""
        super().start()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.get("/healthz", timeout_s=1)[0] == 200:
                    return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the gateway did not start:\n{self.logs()[-3000:]}")
            time.sleep(0.1)

    def metrics(self) -> str:
        return self.get("/metrics")[1]

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass(frozen=True)
class MicrophoneFile:
    path: Path
    duration_s: float
    speech: list[tuple[float, float]]  # (start, end) of each utterance in the file (s)


def microphone_wav(
    path: Path, texts: list[str], gap_s: float = 4.0, lead_s: float = 1.0, voice: str = ""
) -> MicrophoneFile:
    """One 16 kHz mono WAV of `texts` spoken by a project voice (a held-out one by default), each
    followed by `gap_s` of silence (time for the reply); Chromium loops it as the microphone."""
    import numpy as np

    from bench.dialog_support import HELD_OUT_VOICES, user_speech

    pieces = [np.zeros(int(lead_s * RATE), np.int16)]
    speech, t = [], lead_s
    for text in texts:
        pcm, end_s = user_speech(text, voice or HELD_OUT_VOICES[1], lead_s=0.0, tail_s=0.0)
        samples = np.frombuffer(pcm, np.int16)
        speech.append((t, t + end_s))
        pieces += [samples, np.zeros(int(gap_s * RATE), np.int16)]
        t += len(samples) / RATE + gap_s
    audio = np.concatenate(pieces)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(audio.tobytes())
    return MicrophoneFile(path, len(audio) / RATE, speech)


def speech_ends(
    frames: list[list[float]], threshold: float = 0.01, min_silence_s: float = 0.3
) -> list[float]:
    """Audio-clock times where speech ended in the page's captured levels ([time, rms] per 20 ms
    frame): the end of the last loud frame before at least `min_silence_s` of quiet."""
    ends, last_loud, in_speech = [], None, False
    for t, rms in frames:
        if rms >= threshold:
            last_loud, in_speech = t, True
        elif in_speech and last_loud is not None and t - last_loud >= min_silence_s:
            ends.append(last_loud)
            in_speech = False
    return ends


def speech_starts(
    frames: list[list[float]], threshold: float = 0.01, min_silence_s: float = 0.3
) -> list[float]:
    """Audio-clock times where speech started after at least `min_silence_s` of quiet (the start of
    the frame that first went loud)."""
    starts, quiet_since = [], None
    for t, rms in frames:
        if rms >= threshold:
            if quiet_since is not None and t - quiet_since >= min_silence_s:
                starts.append(t - 0.02)
            quiet_since = None
        elif quiet_since is None:
            quiet_since = t
    return starts
