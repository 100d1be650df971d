"""ASR on real people the models never heard: Whisper (bare and served) beside the streaming model and
pocketsphinx, on held-out speakers of every real-speech set (`pipelines.asr.real_speech`, test split).

    python -m bench.asr_real_speech [--per-set N] [--latency-clips N] [--sizes tiny.en-rivulet tiny.en base]

- bare: `whisper_engine.WhisperEngine` in this process (the code the Triton model runs), 2 threads,
  int8, Whisper's 30 s window: greedy, beam 5, the service's beam (`asr_second_pass_beam_size`),
  that beam with the window cut to 10 s (what the service runs), and with hints (the set's words as
  Riva speech_contexts, boost 30) and as a closed set.
- reference: faster-whisper's own `transcribe()` with its defaults, the bare model that the served
  pipeline must not fall behind.
- served: `riva.client` against tritonserver + `python -m rivulet.asr` (asr_streaming + asr_whisper):
  offline_recognize; streaming at real-time pace for the latency (end of audio → final).
- the streaming model's own finals (the same service, custom_configuration second_pass=false).
- pocketsphinx 5 (bundled en-us model), on fewer clips (it is slow).
WER in one canonical form (`pipelines.asr.canonical`: numbers and spelled letters however written).
Writes bench/reports/asr_real_speech.{md,json,png}.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
import soundfile
from tqdm import tqdm

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.local_stack import service_stack
from pipelines.asr import real_speech
from pipelines.asr.canonical import canonical_words
from pipelines.asr.text import edit_distance
from rivulet.asr.settings import AsrSettings
from rivulet.core import audio
from rivulet.stack_models import config_parameters

ROOT = Path(__file__).resolve().parents[1]
REPORTS = Path(__file__).parent / "reports"
MODELS = ROOT / "models"
HINTS = {"commands": real_speech.COMMAND_WORDS, "fsdd": real_speech.DIGIT_WORDS}
SERVED_BEAM = AsrSettings.model_fields["asr_second_pass_beam_size"].default  # the service's Whisper beam
GOALS = {
    "an4": "WER ≤ 5 %",
    "commands": "≥ 97 % right with hints, ≥ 90 % without",
    "fsdd": "WER ≤ 2 % with hints",
}


def load(clip: real_speech.Clip) -> np.ndarray:
    samples, rate = soundfile.read(clip.path, dtype="float32", always_2d=True)
    return audio.resample(samples[:, 0], rate, 16000)


def score(refs: list[str], hyps: list[str]) -> dict:
    errors = words = right = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        r, h = canonical_words(ref), canonical_words(hyp)
        errors += edit_distance(r, h)
        words += len(r)
        right += r == h
    return {"wer": errors / max(words, 1), "utterances_right": right / max(len(refs), 1), "n": len(refs)}


def engine_module(name: str = "whisper_engine"):
    """A module of the Triton model `asr_whisper` (`whisper_engine`, or a sibling of it such as
    `whisper_text`), imported from the model's directory as the model imports it."""
    folder = str(MODELS / "asr_whisper" / "1")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


def bare(size: str, sets: dict, log: dict, boost_scale: float) -> None:
    from rivulet.asr.whisper_weights import prepare

    module = engine_module()
    engines = {
        "": module.WhisperEngine(prepare(size), cpu_threads=2, min_window_s=30.0, boost_scale=boost_scale),
        # as served: the encoder window cut to max(clip + 1 s, 10 s)
        ", 10 s window": module.WhisperEngine(
            prepare(size), cpu_threads=2, boost_scale=boost_scale, **served_window()
        ),
    }
    for engine in engines.values():
        engine.warm_up()
    for name, (clips, samples) in sets.items():
        modes = {
            "greedy": ("", module.DecodeOptions()),
            "beam 5": ("", module.DecodeOptions(beam_size=5)),
            f"beam {SERVED_BEAM}": ("", module.DecodeOptions(beam_size=SERVED_BEAM)),
            # what the service runs
            f"beam {SERVED_BEAM}, 10 s window": (
                ", 10 s window",
                module.DecodeOptions(beam_size=SERVED_BEAM),
            ),
        }
        if name in HINTS:
            phrases = [(w, 30.0) for w in HINTS[name]]
            modes["hints"] = ("", module.DecodeOptions(phrases=phrases))
            modes["closed"] = ("", module.DecodeOptions(phrases=phrases, closed=True))
            # as served: the service's window rules
            modes["hints, 10 s window"] = (", 10 s window", module.DecodeOptions(phrases=phrases))
            modes["closed, 10 s window"] = (
                ", 10 s window",
                module.DecodeOptions(phrases=phrases, closed=True),
            )
        for mode, (engine_key, options) in modes.items():
            engine = engines[engine_key]
            hyps, seconds = [], []
            for s in tqdm(samples, desc=f"whisper {size} {name} {mode}", leave=False):
                started = time.perf_counter()
                [result] = engine.decode([(s, options)])
                seconds.append(time.perf_counter() - started)
                hyps.append(result["hypotheses"][0]["text"] if result["hypotheses"] else "")
            log.setdefault(name, {})[f"whisper {size} bare, {mode}"] = measured(clips, hyps, seconds)


def reference(size: str, sets: dict, log: dict) -> None:
    """faster-whisper's own `transcribe()` with its defaults (30 s window, beam 5, timestamps,
    temperature fallback): the bare model the served pipeline must not fall behind."""
    from faster_whisper import WhisperModel

    from rivulet.asr.whisper_weights import prepare

    model = WhisperModel(str(prepare(size)), device="cpu", compute_type="int8", cpu_threads=2)
    for name, (clips, samples) in sets.items():
        hyps, seconds = [], []
        for s in tqdm(samples, desc=f"transcribe() {size} {name}", leave=False):
            started = time.perf_counter()
            segments, _ = model.transcribe(s, language="en")
            hyps.append(" ".join(segment.text for segment in segments))
            seconds.append(time.perf_counter() - started)
        log.setdefault(name, {})[f"faster-whisper transcribe() {size}"] = measured(clips, hyps, seconds)


def measured(clips: list, hyps: list[str], seconds: list[float]) -> dict:
    return {
        **score([c.text for c in clips], hyps),
        "p50_s": float(np.median(seconds)),
        "p95_s": float(np.percentile(seconds, 95)),
        "misheard": [
            [c.text, h]
            for c, h in zip(clips, hyps, strict=True)
            if canonical_words(c.text) != canonical_words(h)
        ][:8],
    }


def served(
    sets: dict, log: dict, latency_clips: int, log_dir: Path, load_levels: list[int], load_seconds: float
) -> None:
    import riva.client

    models = ("asr_streaming", "asr_whisper")
    with service_stack("rivulet.asr", MODELS, log_dir, models, only_these_models=True) as address:
        asr = riva.client.ASRService(riva.client.Auth(uri=address))
        for name, (clips, samples) in sets.items():
            for label, custom in (
                (f"whisper {served_model()} served", {}),
                ("streaming model", {"second_pass": "false"}),
            ):
                config = recognition_config(custom_configuration=custom)
                hyps = []
                for s in tqdm(samples, desc=f"{label} {name}", leave=False):
                    response = asr.offline_recognize(audio.encode(s, audio.LINEAR_PCM, 16000), config)
                    hyps.append(
                        " ".join(r.alternatives[0].transcript for r in response.results if r.alternatives)
                    )
                log.setdefault(name, {})[label] = score([c.text for c in clips], hyps)
        log["latency"] = streaming_latency(asr, sets, latency_clips)
        if load_levels:
            log["load"] = finals_under_load(asr, sets, load_levels, load_seconds)


def served_window() -> dict[str, float]:
    """The served config's encoder window rules (`min_window_s`, `short_clip_s`), as engine arguments."""
    parameters = config_parameters(MODELS / "asr_whisper")
    return {key: float(parameters[key]) for key in ("min_window_s", "short_clip_s") if key in parameters}


def served_model() -> str:
    """The Whisper model the served `asr_whisper` loads (its config's `whisper_model`)."""
    return config_parameters(MODELS / "asr_whisper")["whisper_model"]


def recognition_config(**fields):
    """16 kHz PCM, one alternative, the spoken form (what the references are written in)."""
    import riva.client

    return riva.client.RecognitionConfig(
        encoding=riva.client.AudioEncoding.LINEAR_PCM, sample_rate_hertz=16000, language_code="en-US",
        max_alternatives=1, verbatim_transcripts=True, **fields,
    )  # fmt: skip


def short_clips(sets: dict, n: int) -> list[np.ndarray]:
    """Up to n clips of at most 5 s, spread over the sets."""
    pool = [s for _, samples in sets.values() for s in samples if len(s) <= 5 * 16000]
    return pool[:: max(1, len(pool) // n)][:n]


def stream_once(asr, samples: np.ndarray) -> tuple[float | None, str, str]:
    """One clip streamed at real-time pace in 100 ms messages (then 0.2 s of silence): seconds from
    the last message to the last final (None: no final), which pass wrote the finals, and their
    transcript."""
    import riva.client

    config = riva.client.StreamingRecognitionConfig(config=recognition_config(), interim_results=True)
    pcm = audio.encode(np.concatenate([samples, np.zeros(3200, np.float32)]), audio.LINEAR_PCM, 16000)
    sent_at = {}

    def chunks():
        start = time.perf_counter()
        for i, offset in enumerate(range(0, len(pcm), 3200)):
            time.sleep(max(0.0, start + i * 0.1 - time.perf_counter()))
            yield pcm[offset : offset + 3200]
        sent_at["end"] = time.perf_counter()

    final_at, finals = None, []
    call = asr.stub.StreamingRecognize(riva.client.asr.streaming_request_generator(chunks(), config))
    for response in call:
        for result in response.results:
            if result.is_final:
                final_at = time.perf_counter()
                finals += [result.alternatives[0].transcript] if result.alternatives else []
    passes = dict(call.trailing_metadata()).get("rivulet-final-passes", "")
    return (None if final_at is None else max(0.0, final_at - sent_at["end"])), passes, " ".join(finals)


def streaming_latency(asr, sets: dict, n: int) -> dict:
    """End of audio (the client's last message) → final, one stream, clips ≤ 5 s."""
    latencies, passes = [], []
    for samples in tqdm(short_clips(sets, n), desc="streaming latency", leave=False):
        seconds, written_by, _ = stream_once(asr, samples)
        passes.append(written_by)
        if seconds is not None:
            latencies.append(seconds)
    ms = np.array(latencies) * 1000
    return {
        "clips": len(passes),
        "finals": len(latencies),
        "p50_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "passes": passes,
    }


def finals_under_load(asr, sets: dict, levels: list[int], seconds: float) -> dict:
    """N streams at once, each streaming clips back to back for `seconds`: end of audio → final
    p50/p95 per level (Triton batches the streams' second passes)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = short_clips(sets, 64)
    out = {}
    for level in levels:
        deadline = time.perf_counter() + seconds

        def worker(k: int, deadline: float = deadline, level: int = level) -> list[float | None]:
            got, i = [], k
            while time.perf_counter() < deadline:
                got.append(stream_once(asr, pool[i % len(pool)])[0])
                i += level
            return got

        with ThreadPoolExecutor(level) as threads:
            results = [x for got in threads.map(worker, range(level)) for x in got]
        ms = np.array([x for x in results if x is not None]) * 1000
        out[str(level)] = {
            "utterances": len(results),
            "no_final": sum(x is None for x in results),
            "p50_ms": float(np.median(ms)) if len(ms) else float("nan"),
            "p95_ms": float(np.percentile(ms, 95)) if len(ms) else float("nan"),
        }
        print(f"{level} streams: {out[str(level)]}", flush=True)
    return out


def pocketsphinx(sets: dict, log: dict, n: int) -> None:
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=16000, loglevel="FATAL")
    for name, (clips, samples) in sets.items():
        hyps = []
        for s in tqdm(samples[:n], desc=f"pocketsphinx {name}", leave=False):
            decoder.start_utt()
            decoder.process_raw(audio.encode(s, audio.LINEAR_PCM, 16000), full_utt=True)
            decoder.end_utt()
            hyps.append(decoder.hyp().hypstr if decoder.hyp() else "")
        log.setdefault(name, {})["pocketsphinx"] = score([c.text for c in clips[:n]], hyps)


def report(log: dict, args: argparse.Namespace) -> None:
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "asr_real_speech.json").write_text(json.dumps(log, indent=1) + "\n")
    lines = [
        "# ASR on held-out real speakers",
        "",
        f"`python -m bench.asr_real_speech --per-set {args.per_set}` (canonical WER: numbers and "
        "spelled letters in any form count the same). Speakers: `pipelines.asr.real_speech` test "
        "split (never used for tuning).",
        "",
    ]
    for name in real_speech.SETS:
        if name not in log:
            continue
        lines += [
            f"## {name}" + (f" (goal: {GOALS[name]})" if name in GOALS else ""),
            "",
            "| system | clips | WER | utterances right | latency p50 / p95 |",
            "|---|---|---|---|---|",
        ]
        for system, m in log[name].items():
            lat = f"{1000 * m['p50_s']:.0f} / {1000 * m['p95_s']:.0f} ms" if "p50_s" in m else "–"
            wer, right = 100 * m["wer"], 100 * m["utterances_right"]
            lines.append(f"| {system} | {m['n']} | {wer:.1f} % | {right:.1f} % | {lat} |")
        lines.append("")
    if "latency" in log:
        lat = log["latency"]
        lines += [
            "## Streaming: end of audio → final (real-time pace, clips ≤ 5 s, 1 stream)",
            "",
            f"{lat['finals']} finals of {lat['clips']} clips: p50 {lat['p50_ms']:.0f} ms, "
            f"p95 {lat['p95_ms']:.0f} ms "
            f"(goal p95 ≤ 250 ms); finals by pass: {sorted(set(lat['passes']))}",
            "",
        ]
    if "load" in log:
        lines += [
            "## Concurrent streams: end of audio → final (goal: p95 < 500 ms at ≥ 16 streams)",
            "",
            "| streams | utterances | no final | p50 ms | p95 ms |",
            "|---|---|---|---|---|",
        ]
        for level, m in log["load"].items():
            lines.append(
                f"| {level} | {m['utterances']} | {m['no_final']} | {m['p50_ms']:.0f} | {m['p95_ms']:.0f} |"
            )
        held = [int(k) for k, m in log["load"].items() if m["p95_ms"] < 500 and not m["no_final"]]
        lines += ["", f"Most streams with finals under 500 ms p95: {max(held, default=0)}.", ""]
    lines += ["![WER per set](asr_real_speech.png)", ""]
    (REPORTS / "asr_real_speech.md").write_text("\n".join(lines))
    sets = [n for n in real_speech.SETS if n in log]
    systems = sorted({s for n in sets for s in log[n]})
    fig, ax = plt.subplots(figsize=(12, 5))
    width = 0.8 / max(len(systems), 1)
    for i, system in enumerate(systems):
        values = [100 * log[n].get(system, {}).get("wer", np.nan) for n in sets]
        ax.bar(np.arange(len(sets)) + i * width, values, width, label=system)
    ax.set_xticks(np.arange(len(sets)) + 0.4, sets)
    ax.set_ylabel("canonical WER (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("ASR on held-out real speakers")
    fig.tight_layout()
    fig.savefig(REPORTS / "asr_real_speech.png", dpi=110)
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-set", type=int, default=150)
    parser.add_argument("--pocketsphinx-per-set", type=int, default=40)
    parser.add_argument("--latency-clips", type=int, default=40)
    parser.add_argument("--sizes", nargs="*", default=["tiny.en-rivulet", "tiny.en", "base"])
    parser.add_argument("--no-service", action="store_true")
    parser.add_argument("--load-levels", type=int, nargs="*", default=[1, 2, 4, 8, 16])
    parser.add_argument("--load-seconds", type=float, default=40.0, help="per concurrency level")
    parser.add_argument("--no-reference", action="store_true", help="skip faster-whisper's transcribe()")
    parser.add_argument("--log-dir", type=Path, default=Path(".run/bench-asr-real"))
    parser.add_argument("--split", choices=("test", "dev"), default="test", help="dev: for tuning only")
    parser.add_argument("--boost-scale", type=float, default=0.2, help="nats per unit of boost (bare runs)")
    parser.add_argument(
        "--update", action="store_true", help="add to the last report instead of replacing it"
    )
    parser.add_argument("--sets", nargs="*", default=list(real_speech.SETS))
    args = parser.parse_args(argv)
    sets = {}
    for name in args.sets:
        clips = real_speech.sample(real_speech.clips(name, args.split), args.per_set)
        if clips:
            sets[name] = (clips, [load(c) for c in clips])
    log: dict = {}
    if args.update and (REPORTS / "asr_real_speech.json").exists():
        log = json.loads((REPORTS / "asr_real_speech.json").read_text())
    for size in args.sizes:
        bare(size, sets, log, args.boost_scale)
        if not args.no_reference:
            reference(size, sets, log)
    if not args.no_service:
        served(sets, log, args.latency_clips, args.log_dir, args.load_levels, args.load_seconds)
    if args.pocketsphinx_per_set:
        pocketsphinx(sets, log, args.pocketsphinx_per_set)
    if args.split == "test":
        report(log, args)
    else:  # tuning runs print, and never overwrite the report
        print(
            json.dumps(
                {
                    n: {k: (round(v["wer"], 4), round(v["utterances_right"], 4)) for k, v in m.items()}
                    for n, m in log.items()
                    if n not in ("latency", "load")
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
