"""The app in real headless Firefox (Debian's `firefox-esr`), its microphone a WAV file.

Playwright's Firefox support needs its own patched build (not downloadable here), and its WebDriver
BiDi mode for stock Firefox (`channel="moz-firefox"`) sends commands Firefox ESR 153 does not know
yet. So Firefox is driven over Marionette, its own remote protocol (what geckodriver wraps), with
Mozilla's `marionette-driver` client. Firefox has no switch to play a file as its microphone: it
records from a private PulseAudio server (null sinks, started here, nothing touches the machine's
sound) whose default source is the monitor of a sink `paplay` plays the WAV into. Its speaker is
another null sink, so reply audio plays on a real audio clock.

    with PulseAudio(tmp) as pulse, Firefox(tmp, pulse) as firefox:
        firefox.open(url); firefox.click("#mic"); pulse.play(wav)
        firefox.wait_for("window.rivulet.bargeIns.length > 0")
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from marionette_driver.by import By
from marionette_driver.keys import Keys
from marionette_driver.marionette import Marionette

from rivulet.core.processes import free_port

FIREFOX_CANDIDATES = ("firefox-esr", "firefox")
PULSE_TOOLS = ("pulseaudio", "paplay")
MIC_SINK = "micfeed"  # the WAV is played into this sink; the microphone is its monitor
# Prefs of the fresh profile: microphone without a prompt, Web Audio without a user gesture, and
# nothing reaching out (updates, telemetry, first-run pages).
FIREFOX_PREFS: dict[str, Any] = {
    "media.navigator.permission.disabled": True,
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": False,
    "media.cubeb.backend": "pulse",
    "app.update.disabledForTesting": True,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "extensions.update.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/",
    "dom.disable_beforeunload": True,
}


def firefox_path() -> str | None:
    for name in FIREFOX_CANDIDATES:
        if path := shutil.which(name):
            return path
    return None


def missing_firefox_tools() -> list[str]:
    """What `make setup` (scripts/ensure_browser.sh) installs for Firefox that is not here."""
    missing = [] if firefox_path() else ["firefox-esr"]
    return missing + [tool for tool in PULSE_TOOLS if shutil.which(tool) is None]


class PulseAudio:
    """A private PulseAudio server in `directory`: sinks `speaker` (default) and `micfeed`, the
    microphone (default source) is `micfeed`'s monitor. `play(wav)` feeds the microphone."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "native"
        self.process: subprocess.Popen | None = None
        self.players: list[subprocess.Popen] = []

    @property
    def env(self) -> dict[str, str]:
        return {"PULSE_SERVER": f"unix:{self.socket}"}

    def start(self, timeout_s: float = 15.0) -> PulseAudio:
        self.directory.mkdir(parents=True, exist_ok=True)
        modules = [
            f"module-native-protocol-unix socket={self.socket} auth-anonymous=1",
            "module-null-sink sink_name=speaker rate=48000",
            f"module-null-sink sink_name={MIC_SINK} rate=48000",
            f"module-remap-source source_name=mic master={MIC_SINK}.monitor",
        ]
        command = ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no"]
        command += ["--disable-shm=yes", *(f"--load={m}" for m in modules)]
        env = {**os.environ, "HOME": str(self.directory), "XDG_RUNTIME_DIR": str(self.directory)}
        log = (self.directory / "pulseaudio.log").open("w")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while not self._ctl("set-default-source", "mic"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log_text = (self.directory / "pulseaudio.log").read_text()
                raise RuntimeError(f"pulseaudio did not start: {log_text}")
            time.sleep(0.1)
        self._ctl("set-default-sink", "speaker")
        return self

    def _ctl(self, *args: str) -> bool:
        env = {**os.environ, **self.env}
        return subprocess.run(["pactl", *args], env=env, capture_output=True).returncode == 0

    def play(self, wav: Path) -> subprocess.Popen:
        """Start playing `wav` into the microphone (real time); returns the player process."""
        player = subprocess.Popen(
            ["paplay", f"--device={MIC_SINK}", str(wav)],
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.players.append(player)
        return player

    def stop(self) -> None:
        for process in [*self.players, self.process]:
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.players = []
        self.process = None

    def __enter__(self) -> PulseAudio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Firefox:
    """Headless Firefox with a fresh profile, driven over Marionette. Scripts run in the page's own
    scope (like Playwright's `evaluate`): `evaluate("window.rivulet.turns")`."""

    def __init__(self, directory: Path, pulse: PulseAudio) -> None:
        path = firefox_path()
        if path is None:
            raise RuntimeError("firefox-esr is not installed: run `make setup` (scripts/ensure_browser.sh)")
        self.path = path
        self.directory = directory
        self.pulse = pulse
        self.process: subprocess.Popen | None = None
        self.client: Marionette | None = None

    def start(self) -> Firefox:
        profile = self.directory / "profile"
        profile.mkdir(parents=True, exist_ok=True)
        port = free_port()
        prefs = {**FIREFOX_PREFS, "marionette.port": port}
        lines = [f"user_pref({json.dumps(k)}, {json.dumps(v)});" for k, v in prefs.items()]
        (profile / "user.js").write_text("\n".join(lines) + "\n")
        # Firefox refuses a $HOME it does not own (root under another HOME): give it its own.
        env = {**os.environ, **self.pulse.env, "HOME": str(self.directory), "MOZ_CRASHREPORTER_DISABLE": "1"}
        command = [self.path, "--headless", "--marionette", "--no-remote", "--profile", str(profile)]
        log = (self.directory / "firefox.log").open("w")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.client = Marionette(host="127.0.0.1", port=port, startup_timeout=60)
        self.client.start_session()
        return self

    @property
    def version(self) -> str:
        return self.client.session_capabilities["browserVersion"]

    def open(self, url: str) -> None:
        self.client.navigate(url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-like values)."""
        return self.client.execute_script(f"return ({expression});", sandbox=None)

    def wait_for(self, expression: str, timeout_s: float = 60.0) -> Any:
        """Poll until the expression is truthy; returns its value (TimeoutError after timeout_s)."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"not true after {timeout_s:.0f} s: {expression}")
            time.sleep(0.1)

    def click(self, selector: str) -> None:
        """A real (trusted) click, which also gives the page its user activation."""
        self.client.find_element(By.CSS_SELECTOR, selector).click()

    def type(self, selector: str, text: str, submit: bool = True) -> None:
        element = self.client.find_element(By.CSS_SELECTOR, selector)
        element.clear()
        element.send_keys(text + (Keys.ENTER if submit else ""))

    def text(self, selector: str) -> str:
        return self.client.find_element(By.CSS_SELECTOR, selector).text

    def count(self, selector: str) -> int:
        return len(self.client.find_elements(By.CSS_SELECTOR, selector))

    def screenshot(self, path: Path) -> None:
        path.write_bytes(self.client.screenshot(format="binary"))

    def stop(self) -> None:
        if self.client is not None:
            try:
                self.client.delete_session()
            except Exception:  # the browser may already be gone; it is stopped below either way
                pass
            self.client = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> Firefox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
