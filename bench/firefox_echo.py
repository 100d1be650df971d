"""`python -m bench.firefox_echo`: does Firefox hear the user while the page plays audio? (issue 16)

The web app's barge-in in Firefox was an unexplained xfail: the interrupting speech arrived as
silence. This isolates it without the stack: headless Firefox (bench/gateway_firefox.py, a private
PulseAudio microphone) opens `bench/pages/echo_probe.html`, which runs the app's own `Microphone`
(static/js/capture.js: getUserMedia → AudioWorklet, 20 ms frames with their RMS) in an AudioContext
that also plays a tone. Speech is played into the microphone once before the tone and once while
the tone plays (`--far-end speech`: while the page plays a recorded spoken reply instead, as the app
does); the report gives the loudest capture frame in each, by mode:
- `echo-cancellation`: `echoCancellation: true` (the app's default, for loudspeakers);
- `headphones`: `echoCancellation: false` (the app's Headphones box).
A fresh Firefox and PulseAudio for every run. Writes bench/reports/firefox_echo.{md,json,png}.

    python -m bench.firefox_echo [--runs 3] [--modes echo-cancellation headphones] [--far-end speech]
"""

from __future__ import annotations

import argparse
import http.server
import json
import tempfile
import threading
import time
from pathlib import Path

from bench.dialog_support import HELD_OUT_VOICES
from bench.gateway_firefox import Firefox, PulseAudio
from bench.gateway_support import microphone_wav
from bench.report_files import write_report_files
from rivulet.core.processes import ROOT

MODES = {"echo-cancellation": True, "headphones": False}  # mode → echoCancellation
PAGES = Path(__file__).parent / "pages"
STATIC = ROOT / "services" / "rivulet" / "gateway"  # /static/... as the gateway serves it
HEARD = 0.05  # frame RMS: speech played into the microphone reads 0.15-0.6, silence 0.0


FAR_END_TEXTS = [  # the far end for `--far-end speech`: a spoken reply, longer than the speech over it
    "here is what I can do",
    "I can set timers and alarms",
    "turn the lights on and off",
    "and keep your shopping list",
]


class _Files(http.server.SimpleHTTPRequestHandler):
    """/static/... from the gateway's static files, /far_end/... from `far_end_dir`, anything else
    from bench/pages."""

    far_end_dir = PAGES

    def translate_path(self, path: str) -> str:
        path = path.split("?")[0]
        if path.startswith("/far_end/"):
            return str(self.far_end_dir / path.removeprefix("/far_end/"))
        base = STATIC if path.startswith("/static/") else PAGES
        return str(base / path.lstrip("/"))

    def log_message(self, *args: object) -> None:
        pass


def serve_pages() -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def loudest(levels: list, start: float, end: float) -> float:
    return max((rms for t, rms in levels if start <= t < end), default=0.0)


def frames_heard(levels: list, start: float, end: float) -> int:
    """Capture frames louder than HEARD in [start, end): how much of the speech came through."""
    return sum(1 for t, rms in levels if start <= t < end and rms > HEARD)


def one_run(
    mode: str, url: str, speech: Path, directory: Path, far_end: str = "tone", far_end_s: float = 10.0
) -> dict:
    with PulseAudio(directory / "pulse") as pulse, Firefox(directory / "firefox", pulse) as firefox:
        firefox.open(url)
        firefox.wait_for("window.ready === true", 30)
        started = firefox.client.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"window.probe.start({json.dumps(MODES[mode])}).then(done);",
            sandbox=None,
            script_timeout=30_000,
        )
        firefox.wait_for("window.levels.length > 10", 30)
        before = [firefox.evaluate("window.probe.now()")]
        pulse.play(speech).wait()
        before.append(firefox.evaluate("window.probe.now()"))
        if far_end == "tone":
            tone_at = firefox.evaluate("window.probe.tone(10)")
        else:  # a spoken reply, decoded and played by the page as the app plays its replies
            tone_at = firefox.client.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "window.probe.speech('/far_end/reply.wav').then(done);",
                sandbox=None,
                script_timeout=30_000,
            )
        time.sleep(1.0)  # the tone is playing
        during = [firefox.evaluate("window.probe.now()")]
        pulse.play(speech).wait()
        during.append(firefox.evaluate("window.probe.now()"))
        time.sleep(0.3)
        levels = firefox.evaluate("window.levels")
    return {
        "mode": mode,
        "far_end": far_end,
        "far_end_s": far_end_s,
        "settings": started["settings"],
        "shared_context": started["shared"],
        "rate": started["rate"],
        "tone_at_s": tone_at,
        "before_tone": loudest(levels, *before),
        "during_tone": loudest(levels, *during),
        "frames_heard_before": frames_heard(levels, *before),
        "frames_heard_during": frames_heard(levels, *during),
        "levels": levels,
    }


def report_lines(
    results: list[dict], runs: int, far_end: str = "tone", name: str = "firefox_echo"
) -> list[str]:
    played = "a tone" if far_end == "tone" else "a recorded spoken reply (another voice)"
    option = "" if far_end == "tone" else f" --far-end {far_end} --report {name}"
    lines = [
        "# Firefox: the microphone while the page plays audio",
        "",
        f"`python -m bench.firefox_echo --runs {runs}{option}`: the app's `Microphone` in headless "
        f"Firefox, speech played into a PulseAudio microphone before and while the page plays {played} "
        f'("the tone" below); the loudest 20 ms capture frame (RMS) in each; heard = above {HEARD}; '
        "frames heard: how many 20 ms frames of the same speech were above it, before and during.",
        "",
        "| mode | echoCancellation applied | runs | loudest before the tone | loudest during the tone | "
        "heard during the tone | frames heard before / during (each run) |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode in dict.fromkeys(r["mode"] for r in results):
        rows = [r for r in results if r["mode"] == mode]
        before = [r["before_tone"] for r in rows]
        during = [r["during_tone"] for r in rows]
        heard = sum(d > HEARD for d in during)
        applied = sorted({str(r["settings"]["echoCancellation"]) for r in rows})
        frames = ", ".join(
            f"{r.get('frames_heard_before', '?')} / {r.get('frames_heard_during', '?')}" for r in rows
        )
        lines.append(
            f"| {mode} | {', '.join(applied)} | {len(rows)} | {min(before):.3f}–{max(before):.3f} | "
            f"{min(during):.4f}–{max(during):.4f} | {heard} of {len(rows)} | {frames} |"
        )
    lines += ["", f"![capture levels]({name}.png)", ""]
    return lines


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(r["mode"] for r in results))
    fig, axes = plt.subplots(len(modes), 1, figsize=(9, 2.8 * len(modes)), sharex=True, squeeze=False)
    for ax, mode in zip(axes[:, 0], modes, strict=True):
        for i, r in enumerate(x for x in results if x["mode"] == mode):
            t = [p[0] - r["tone_at_s"] for p in r["levels"]]
            ax.plot(t, [p[1] for p in r["levels"]], lw=0.8, label=f"run {i + 1}")
        tone = results[0].get("far_end", "tone") == "tone"
        ax.axvspan(0, results[0].get("far_end_s", 10.0), color="orange", alpha=0.12,
                   label="tone playing" if tone else "reply playing")  # fmt: skip
        ax.set_title(mode)
        ax.set_ylabel("capture RMS")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("seconds from the start of the page's sound")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--far-end", choices=("tone", "speech"), default="tone", help="what the page plays")
    parser.add_argument("--report", default="firefox_echo", help="report name ('' writes none)")
    args = parser.parse_args(argv)
    server = serve_pages()
    url = f"http://127.0.0.1:{server.server_address[1]}/echo_probe.html"
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="rivulet-ffecho-") as tmp:
            speech = microphone_wav(Path(tmp) / "speech.wav", ["what time is it", "turn on the lights"], 0.5)
            far_end_s = 10.0  # the tone's length
            if args.far_end == "speech":
                voice = HELD_OUT_VOICES[0]  # not the microphone's voice
                far_end_s = microphone_wav(Path(tmp) / "reply.wav", FAR_END_TEXTS, 0.2, 0.0, voice).duration_s
                _Files.far_end_dir = Path(tmp)
            for run in range(args.runs):
                for mode in args.modes:
                    directory = Path(tmp) / f"{mode}-{run}"
                    results.append(one_run(mode, url, speech.path, directory, args.far_end, far_end_s))
                    r = results[-1]
                    print(
                        f"{mode} run {run + 1}: echoCancellation {r['settings']['echoCancellation']}, "
                        f"loudest before the tone {r['before_tone']:.3f}, during it {r['during_tone']:.4f}",
                        flush=True,
                    )
    finally:
        server.shutdown()
    if args.report:
        lines = report_lines(results, args.runs, args.far_end, args.report)
        path = write_report_files(args.report, lines, results, lambda p: plot(results, p))
        print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
