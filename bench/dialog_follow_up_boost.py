"""The follow-up hints' boost: what it hears and what it costs, one Whisper pass in process.

After an answer the dialog allows follow-ups ("what about tomorrow?", `rivulet.dialog.hints.FOLLOW_UP`)
and sends them to the ASR as speech_contexts. They are possible, not expected: the next request may
be anything. This bench decodes, through the engine the Triton model runs (`bench.whisper_pass_cost`),
the dialog latency bench's requests and a set of follow-ups, each spoken by the six held-out synthetic
voices, with the follow-up hints at each boost, and counts the transcripts right in the canonical
form (numbers in any form count the same) and the pass's time.

    python -m bench.dialog_follow_up_boost                     # boosts 0 10 15 30
    python -m bench.dialog_follow_up_boost --boosts 0 5 10     # others

Writes bench/reports/dialog_follow_up_boost.{md,json,png}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time

import matplotlib
import numpy as np
from tqdm import tqdm

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench import whisper_pass_cost as pass_cost
from bench.dialog_latency import REQUESTS
from bench.dialog_support import HELD_OUT_VOICES
from bench.report_files import write_report_files
from pipelines.asr.canonical import canonical_words
from rivulet.dialog import hints
from rivulet.dialog.settings import DialogSettings

# what a user says after an answer with a date or a place (the last two are heard by the days' hints
# only: the cities are no follow-up hints)
FOLLOW_UPS = (
    "what about tomorrow",
    "how about tuesday",
    "and tomorrow",
    "how about this weekend",
    "what about friday in paris",
    "what about tonight",
    "what about london",
)
ANSWER_BOOST = DialogSettings.model_fields["dialog_asr_hint_boost"].default
SERVED = DialogSettings.model_fields["dialog_asr_follow_up_boost"].default


def measure(module, engine, sets: dict[str, list], boosts: list[float]) -> dict:
    results: dict = {}
    for boost in boosts:
        phrases = [(p, boost) for p in hints.FOLLOW_UP] if boost else []
        row: dict = {}
        for name, clips in sets.items():
            times, texts, right = [], [], 0
            for _, text, samples in tqdm(clips, desc=f"boost {boost:g}, {name}", leave=False):
                options = module.DecodeOptions(
                    beam_size=pass_cost.BEAM, phrases=list(phrases), window_s=pass_cost.WINDOW_S
                )
                started = time.perf_counter()
                [result] = engine.decode([(samples, options)])
                times.append((time.perf_counter() - started) * 1000)
                heard = result["hypotheses"][0]["text"] if result["hypotheses"] else ""
                texts.append(heard)
                right += canonical_words(heard) == canonical_words(text)
            row[name] = {
                "right": right,
                "n": len(clips),
                "p50_ms": float(np.percentile(times, 50)),
                "p95_ms": float(np.percentile(times, 95)),
                "times_ms": times,
                "transcripts": texts,
            }
        results[f"{boost:g}"] = row
        print(
            f"boost {boost:4g}: "
            + "  ".join(
                f"{n} {r['right']}/{r['n']} right, p50 {r['p50_ms']:.0f} p95 {r['p95_ms']:.0f} ms"
                for n, r in row.items()
            ),
            flush=True,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--boosts", type=float, nargs="+", default=[0, SERVED, 15, ANSWER_BOOST])
    parser.add_argument("--name", default="dialog_follow_up_boost")
    args = parser.parse_args(argv)
    module, engine = pass_cost.load_engine(pass_cost.MODEL / "1")
    sets = {"requests": pass_cost.utterances(), "follow-ups": pass_cost.utterances(FOLLOW_UPS)}
    results = measure(module, engine, sets, args.boosts)
    data = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": os.getloadavg()[0],
        "clips": {n: [[v, t] for v, t, _ in clips] for n, clips in sets.items()},
        "boosts": results,
    }
    lines = [
        "# The follow-up hints' boost",
        "",
        f"`python -m bench.dialog_follow_up_boost`, {data['date']}, the shared 2-core CPU machine (load "
        f"average {data['load_average']:.1f} at the end). One Whisper pass in process per clip, the "
        f"dialog's {pass_cost.WINDOW_S:g} s window, one at a time: the dialog latency bench's "
        f"{len(REQUESTS)} requests and {len(FOLLOW_UPS)} follow-ups, each by the {len(HELD_OUT_VOICES)} "
        f"held-out synthetic voices, with the follow-up hints ({', '.join(hints.FOLLOW_UP)}) at each "
        f"boost (0: no hints). Right: the transcript's canonical words are the request's. The dialog "
        f"sends the follow-ups at `dialog_asr_follow_up_boost` = {SERVED:g} and the answers to its "
        f"questions at `dialog_asr_hint_boost` = {ANSWER_BOOST:g}.",
        "",
        "| boost | requests right | requests' pass p50 / p95 ms | follow-ups right "
        "| follow-ups' pass p50 / p95 ms |",
        "|---|---|---|---|---|",
    ]
    for boost, row in results.items():
        r, f = row["requests"], row["follow-ups"]
        lines.append(
            f"| {boost} | {r['right']}/{r['n']} | {r['p50_ms']:.0f} / {r['p95_ms']:.0f} | "
            f"{f['right']}/{f['n']} | {f['p50_ms']:.0f} / {f['p95_ms']:.0f} |"
        )
    lines += ["", "Transcripts that differ between boosts:", "", "| voice | said | " + " | ".join(
        f"boost {b}" for b in results
    ) + " |", "|---|---|" + "---|" * len(results)]  # fmt: skip
    for name, clips in sets.items():
        for k, (voice, text, _) in enumerate(clips):
            heard = [row[name]["transcripts"][k] for row in results.values()]
            if len({tuple(canonical_words(h)) for h in heard}) > 1:
                lines.append(f"| {voice} | {text} | " + " | ".join(heard) + " |")
    lines += ["", f"![boost]({args.name}.png)", ""]

    def plot(path) -> None:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        boosts = list(results)
        for name, marker in (("requests", "o"), ("follow-ups", "s")):
            left.plot(boosts, [100 * results[b][name]["right"] / results[b][name]["n"] for b in boosts],
                      marker=marker, label=name)  # fmt: skip
            right.plot(boosts, [results[b][name]["p95_ms"] for b in boosts], marker=marker, label=name)
        left.set_xlabel("follow-up boost")
        left.set_ylabel("% right")
        right.set_xlabel("follow-up boost")
        right.set_ylabel("pass p95 (ms)")
        left.legend()
        right.legend()
        fig.suptitle("Follow-up hints: what they hear and what they cost")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

    print(write_report_files(args.name, lines, data, plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
