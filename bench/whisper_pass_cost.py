"""What one Whisper pass costs in process: the dialog's spoken requests, free and with the hints the
dialog sends after an answer (`rivulet.dialog.hints.FOLLOW_UP`), through the engine the Triton model
runs, built with the served config's parameters and asked for the dialog's 10 s window.

    python -m bench.whisper_pass_cost                      # the committed engine
    python -m bench.whisper_pass_cost --engine-dir DIR     # another copy of models/asr_whisper/1, of
                                                           # this revision or later (an A/B: one module
                                                           # from another REV, `git show REV:…`)
    python -m bench.whisper_pass_cost --name NAME          # the report's name (default whisper_pass_cost)

The requests are `bench.dialog_latency`'s, spoken by its six held-out synthetic voices, from 0.1 s
before the words to 60 ms after them (the silence that starts the ASR's pass). Each is decoded
`--repeats` times, one at a time. Prints p50 / p95 and writes bench/reports/<name>.{md,json,png}
with the transcripts, so that two engines can be compared word for word.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
from tqdm import tqdm

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.dialog_latency import REQUESTS
from bench.dialog_support import HELD_OUT_VOICES, user_speech
from bench.report_files import write_report_files
from rivulet.asr.settings import AsrSettings
from rivulet.core.processes import ROOT
from rivulet.dialog import hints
from rivulet.dialog.settings import DialogSettings
from rivulet.stack_models import config_parameters

MODEL = ROOT / "models" / "asr_whisper"
RATE = 16000
SPOKEN_LEAD_S = 0.25  # the silence `user_speech` puts before the words
LEAD_S = 0.1  # kept before the words
# kept after the words: the silence that starts the ASR's pass
TAIL_S = AsrSettings().asr_second_pass_speculate_after_ms / 1000
WINDOW_S = DialogSettings.model_fields["dialog_asr_second_pass_window_s"].default  # the dialog's
_DIALOG = {k: f.default for k, f in DialogSettings.model_fields.items()}
# the boost the dialog gives its follow-up hints (lower than the answers to a question's)
HINT_BOOST = hints.boost(
    hints.FOLLOW_UP, _DIALOG["dialog_asr_hint_boost"], _DIALOG["dialog_asr_follow_up_boost"]
)
BEAM = AsrSettings.model_fields["asr_second_pass_beam_size"].default  # the service's Whisper beam


def load_engine(engine_dir: Path):
    """`whisper_engine` from `engine_dir` (this revision's or later: it builds the engine from the
    config as `model.py` does) and the engine."""
    sys.path.insert(0, str(engine_dir))
    module = importlib.import_module("whisper_engine")
    from rivulet.asr.whisper_weights import check

    params = config_parameters(MODEL)
    weights = check(params.get("whisper_model", "tiny.en-rivulet"), deep=False)
    engine = module.WhisperEngine.from_parameters(str(weights), params)
    engine.warm_up()
    return module, engine


def utterances(texts: tuple[str, ...] | list[str] = tuple(REQUESTS)) -> list[tuple[str, str, np.ndarray]]:
    """(voice, text, samples) of every request (or of `texts`) by every held-out voice, from 0.1 s
    before its words to 60 ms after them."""
    out = []
    for voice in HELD_OUT_VOICES:
        for text in texts:
            pcm, end_s = user_speech(text, voice, lead_s=SPOKEN_LEAD_S)
            samples = np.frombuffer(pcm, np.int16).astype(np.float32) / 32768
            cut = samples[int((SPOKEN_LEAD_S - LEAD_S) * RATE) : int((end_s + TAIL_S) * RATE)]
            out.append((voice, text, cut))
    return out


def measure(module, engine, clips, repeats: int) -> dict:
    phrases = [(p, HINT_BOOST) for p in hints.FOLLOW_UP]
    modes = {"free": [], "follow-up hints": phrases}
    results = {}
    for mode, hinted in modes.items():
        times, texts = [], []
        for rep in range(repeats):
            for _, _, samples in tqdm(clips, desc=f"{mode}, round {rep + 1}/{repeats}", leave=False):
                options = module.DecodeOptions(beam_size=BEAM, phrases=list(hinted), window_s=WINDOW_S)
                started = time.perf_counter()
                [result] = engine.decode([(samples, options)])
                times.append((time.perf_counter() - started) * 1000)
                if rep == 0:
                    texts.append(result["hypotheses"][0]["text"] if result["hypotheses"] else "")
        results[mode] = {
            "p50_ms": float(np.percentile(times, 50)),
            "p95_ms": float(np.percentile(times, 95)),
            "times_ms": times,
            "transcripts": texts,
        }
        print(
            f"{mode:16} p50 {results[mode]['p50_ms']:6.1f} ms  p95 {results[mode]['p95_ms']:6.1f} ms",
            flush=True,
        )
    return results


def plot_pass_times(path: Path, times: dict[str, list[float]], xlabel: str, title: str) -> None:
    """A histogram of each series' pass times (ms), its p95 in the legend, saved to `path`."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, series in times.items():
        ax.hist(series, bins=30, alpha=0.6, label=f"{label} (p95 {np.percentile(series, 95):.0f} ms)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("passes")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine-dir", type=Path, default=MODEL / "1")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--name", default="whisper_pass_cost")
    args = parser.parse_args(argv)
    module, engine = load_engine(args.engine_dir)
    clips = utterances()
    results = measure(module, engine, clips, args.repeats)
    data = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "engine_dir": str(args.engine_dir),
        "load_average": os.getloadavg()[0],
        "requests": [[v, t] for v, t, _ in clips],
        "modes": results,
    }
    lines = [
        "# One Whisper pass in process",
        "",
        f"`python -m bench.whisper_pass_cost --engine-dir {args.engine_dir}`, {data['date']}, the shared "
        f"2-core CPU machine (load average {data['load_average']:.1f} at the end). The dialog latency "
        f"bench's {len(REQUESTS)} requests by {len(HELD_OUT_VOICES)} voices, {args.repeats} rounds, "
        f"one at a time, the dialog's {WINDOW_S:g} s window; hints: the dialog's follow-ups, boost "
        f"{HINT_BOOST:g}.",
        "",
        "| mode | passes | p50 ms | p95 ms |",
        "|---|---|---|---|",
        *(
            f"| {m} | {len(r['times_ms'])} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |"
            for m, r in results.items()
        ),
        "",
        "![pass time](" + f"{args.name}.png)",
        "",
    ]

    def plot(path: Path) -> None:
        times = {mode: r["times_ms"] for mode, r in results.items()}
        plot_pass_times(path, times, "one pass (ms)", "Whisper pass in process, the dialog's requests")

    print(write_report_files(args.name, lines, data, plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
