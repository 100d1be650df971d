"""What a hinted Whisper pass costs and writes, in process: the three kinds of hints the dialog and Riva
clients send, through the engine the Triton model runs (`bench.whisper_pass_cost.load_engine`).

- follow-up hints: the dialog latency bench's 8 requests and 7 follow-ups, spoken by the six held-out
  synthetic voices, with the follow-ups the dialog allows after an answer (`hints.FOLLOW_UP`) at the
  dialog's follow-up boost, in the dialog's 10 s window;
- answers: answers to the dialog's questions ("four people", "the bedroom", "yes", "ten minutes",
  "paris", ...) by the same voices, with the hints of the question they answer at the dialog's boost;
- real commands: 150 held-out Speech Commands clips (real speakers never trained or tuned on) with
  the command list as Riva speech_contexts (boost 30) and the service's window rules.

    python -m bench.whisper_hinted_passes                          # the committed engine
    python -m bench.whisper_hinted_passes --engine-dir DIR --name whisper_hinted_passes_before
    python -m bench.whisper_hinted_passes --compare bench/reports/whisper_hinted_passes_before.json

Each pass is decoded one at a time. Prints, per kind, how many are right (canonical words) and the
pass's p50 / p95 / mean, and with `--compare` every transcript that differs from the other report's
(so an A/B of two engines, run minutes apart on the same machine, shows both the cost and whether
any word changed). Writes bench/reports/<name>.{md,json,png}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from bench import whisper_pass_cost as pass_cost
from bench.dialog_follow_up_boost import FOLLOW_UPS
from bench.dialog_latency import REQUESTS
from bench.report_files import write_report_files
from pipelines.asr import real_speech
from pipelines.asr.canonical import canonical_words
from rivulet.core import audio
from rivulet.dialog import hints
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills.lights import ROOMS

ANSWER_BOOST = DialogSettings.model_fields["dialog_asr_hint_boost"].default
COMMAND_BOOST = 30.0
COMMANDS = 150
# what people answer to the dialog's questions, with the hints of the question (a slot's hints and
# "cancel", as `Policy.hints` sends them; the confirmation's own list)
ANSWERS = {
    "four people": (*hints.PARTY, "cancel"),
    "just me": (*hints.PARTY, "cancel"),
    "two of us": (*hints.PARTY, "cancel"),
    "the bedroom": (*ROOMS, "cancel"),
    "in the kitchen": (*ROOMS, "cancel"),
    "living room": (*ROOMS, "cancel"),
    "yes": hints.CONFIRM,
    "no thanks": hints.CONFIRM,
    "ten minutes": (*hints.DURATION, "cancel"),
    "about five minutes": (*hints.DURATION, "cancel"),
    "paris": (*hints.CITIES, "cancel"),
    "in london": (*hints.CITIES, "cancel"),
    "fifty percent": (*hints.PERCENT, "cancel"),
    "tomorrow at seven": (*hints.DAYS_AHEAD, *hints.CLOCK, "cancel"),
}


def passes(module) -> list[tuple[str, str, np.ndarray, object]]:
    """(kind, said, samples, DecodeOptions) of every pass, in a fixed order."""
    window = pass_cost.WINDOW_S
    follow_ups = [(p, pass_cost.HINT_BOOST) for p in hints.FOLLOW_UP]
    out = []
    for _, text, samples in pass_cost.utterances([*REQUESTS, *FOLLOW_UPS]):
        options = module.DecodeOptions(beam_size=pass_cost.BEAM, phrases=follow_ups, window_s=window)
        out.append(("follow-up hints", text, samples, options))
    for _, text, samples in pass_cost.utterances(list(ANSWERS)):
        phrases = [(p, ANSWER_BOOST) for p in ANSWERS[text]]
        options = module.DecodeOptions(beam_size=pass_cost.BEAM, phrases=phrases, window_s=window)
        out.append(("answers", text, samples, options))
    commands = [(w, COMMAND_BOOST) for w in real_speech.COMMAND_WORDS]
    for clip in real_speech.sample(real_speech.clips("commands", "test"), COMMANDS):
        samples, rate = soundfile.read(clip.path, dtype="float32", always_2d=True)
        options = module.DecodeOptions(phrases=commands)
        out.append(("real commands", clip.text, audio.resample(samples[:, 0], rate, 16000), options))
    return out


def measure(engine, items) -> list[dict]:
    rows = []
    for kind, said, samples, options in tqdm(items, desc="hinted passes"):
        started = time.perf_counter()
        [result] = engine.decode([(samples, options)])
        ms = (time.perf_counter() - started) * 1000
        written = result["hypotheses"][0]["text"] if result["hypotheses"] else ""
        right = canonical_words(written) == canonical_words(said)
        rows.append({"kind": kind, "said": said, "written": written, "ms": ms, "right": right})
    return rows


def summary(rows: list[dict]) -> dict[str, dict]:
    out = {}
    for kind in dict.fromkeys(r["kind"] for r in rows):
        times = [r["ms"] for r in rows if r["kind"] == kind]
        out[kind] = {
            "passes": len(times),
            "right": sum(r["right"] for r in rows if r["kind"] == kind),
            "p50_ms": float(np.percentile(times, 50)),
            "p95_ms": float(np.percentile(times, 95)),
            "mean_ms": float(np.mean(times)),
        }
    return out


def differences(rows: list[dict], other: list[dict]) -> list[list[str]]:
    """[kind, said, other's transcript, this one's] of every pass whose transcript differs."""
    return [
        [r["kind"], r["said"], o["written"], r["written"]]
        for r, o in zip(rows, other, strict=True)
        if r["written"] != o["written"]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine-dir", type=Path, default=pass_cost.MODEL / "1")
    parser.add_argument("--name", default="whisper_hinted_passes")
    parser.add_argument("--compare", type=Path, help="another run's JSON report: list what differs")
    args = parser.parse_args(argv)
    module, engine = pass_cost.load_engine(args.engine_dir)
    rows = measure(engine, passes(module))
    kinds = summary(rows)
    other = json.loads(args.compare.read_text()) if args.compare else None
    changed = differences(rows, other["passes"]) if other else []
    data = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "engine_dir": str(args.engine_dir),
        "load_average": os.getloadavg()[0],
        "kinds": kinds,
        "passes": rows,
        "compared_with": str(args.compare) if args.compare else "",
        "differences": changed,
    }
    for kind, s in kinds.items():
        print(
            f"{kind:16} right {s['right']}/{s['passes']}  p50 {s['p50_ms']:.1f}  p95 {s['p95_ms']:.1f}  "
            f"mean {s['mean_ms']:.1f} ms",
            flush=True,
        )
    if other:
        print(f"{len(changed)} of {len(rows)} transcripts differ from {args.compare}")
        for kind, said, before, now in changed:
            print(f"  {kind}: {said!r}: {before!r} -> {now!r}")
    lines = [
        "# Hinted Whisper passes in process",
        "",
        f"`python -m bench.whisper_hinted_passes --engine-dir {args.engine_dir} --name {args.name}`, "
        f"{data['date']}, the shared 2-core CPU machine (load average {data['load_average']:.1f} at the "
        "end). One pass at a time: the dialog's requests and follow-ups with its follow-up hints "
        f"(boost {pass_cost.HINT_BOOST:g}, 10 s window), answers to its questions with their hints "
        f"(boost {ANSWER_BOOST:g}), {COMMANDS} held-out real Speech Commands clips with the command "
        f"list (boost {COMMAND_BOOST:g}). Right: the transcript's canonical words are what was said.",
        "",
        "| hints | passes | right | p50 ms | p95 ms | mean ms |",
        "|---|---|---|---|---|---|",
        *(
            f"| {k} | {s['passes']} | {s['right']} | {s['p50_ms']:.1f} | {s['p95_ms']:.1f} "
            f"| {s['mean_ms']:.1f} |"
            for k, s in kinds.items()
        ),
        "",
    ]
    if other:
        lines += [
            f"Compared with `{args.compare}` ({other['date']}, engine `{other['engine_dir']}`): "
            f"{len(changed)} of {len(rows)} transcripts differ.",
            "",
        ]
        if changed:
            lines += ["| hints | said | before | now |", "|---|---|---|---|"]
            lines += [f"| {k} | {s} | {b} | {n} |" for k, s, b, n in changed]
            lines += [""]
    lines += [f"![pass time]({args.name}.png)", ""]

    def plot(path: Path) -> None:
        times = {kind: [r["ms"] for r in rows if r["kind"] == kind] for kind in kinds}
        pass_cost.plot_pass_times(path, times, "one hinted pass (ms)", "Hinted Whisper passes in process")

    print(write_report_files(args.name, lines, data, plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
