"""ASR accuracy on held-out speakers and voices, beside pocketsphinx on the same audio; real-time factors.

    python -m bench.asr_accuracy [--repository models] [--per-set N] [--no-service]

Sets (made by `pipelines.asr.data`, full profile, in the cache; never trained on):

- `digits_real`: FSDD recordings of the two held-out real speakers (lucas, theo; 8 kHz originals
  resampled to 16 kHz), one digit word each;
- `digits_synthetic`, `commands_synthetic`, `snips_synthetic`: digit strings, assistant commands
  (assistant test split) and SNIPS test sentences spoken by the held-out synthetic voices (flite
  rms, festival ked_diphone, espeak-ng variants f3/m3/steph/david in every dialect).

Our model is asked through the real stack: tritonserver serving `asr_streaming` from the repository
and the ASR service (`python -m rivulet.asr`), with `riva.client.ASRService.offline_recognize` on
16 kHz LINEAR_PCM; the service decodes finals by beam search with the model's domain n-gram
LM (`models/asr_streaming/lm`). `--no-service` decodes the Triton model's log-probabilities
with greedy CTC in this process instead (no LM). pocketsphinx 5 (PyPI, bundled en-us acoustic
model, its general en-us language model and dictionary) decodes the same samples. References
and hypotheses are both normalized with `pipelines.asr.text.normalize` (numbers spelled out)
before WER.

Real-time factor (compute time / audio time, one thread each): our runtime in-process
(onnxruntime, `asr_stream.py`, 160 ms chunks, greedy decoding, plus the beam search with the LM
timed separately) and pocketsphinx. Writes
bench/reports/asr_accuracy.{md,json,png}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
from pathlib import Path

import matplotlib
import numpy as np
import soundfile

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.local_stack import service_stack
from bench.report_files import write_report_files
from pipelines.asr import data
from pipelines.asr.export import load_runtime
from pipelines.asr.paths import cache_dir
from pipelines.asr.text import normalize, wer
from rivulet.core import audio

MODEL = "asr_streaming"
SETS = {
    "digits_real": ("eval_digits_real", "FSDD digits, 2 held-out real speakers"),
    "digits_synthetic": ("eval_digits_synthetic", "digit strings, held-out synthetic voices"),
    "commands_synthetic": ("eval_commands_synthetic", "assistant commands, held-out synthetic voices"),
    "snips_synthetic": ("eval_snips_synthetic", "SNIPS test sentences, held-out synthetic voices"),
}
GOAL_REAL_DIGITS_WER = 0.10


def load_sets(per_set: int | None) -> dict[str, list[dict]]:
    root = data.generate_evaluation(data.PROFILES["full"], cache_dir())
    out = {}
    for name, (manifest, _) in SETS.items():
        rows = data.read_manifest(root / f"{manifest}.jsonl")
        out[name] = rows[:per_set] if per_set else rows
    return out


def asr_stack(repository: Path, log_dir: Path) -> contextlib.AbstractContextManager[str]:
    """tritonserver (only asr_streaming) + `python -m rivulet.asr`; yields the service address."""
    return service_stack("rivulet.asr", repository, log_dir, (MODEL,), only_these_models=True)


def recognize_service(address: str, clips: list[np.ndarray]) -> tuple[list[str], list[float]]:
    import riva.client

    asr = riva.client.ASRService(riva.client.Auth(uri=address))
    config = riva.client.RecognitionConfig(
        encoding=riva.client.AudioEncoding.LINEAR_PCM,
        sample_rate_hertz=16000,
        language_code="en-US",
        max_alternatives=1,
        audio_channel_count=1,
    )
    texts, seconds = [], []
    for clip in clips:
        started = time.perf_counter()
        response = asr.offline_recognize(audio.encode(clip, audio.LINEAR_PCM, 16000), config)
        seconds.append(time.perf_counter() - started)
        texts.append(
            " ".join(r.alternatives[0].transcript for r in response.results if r.alternatives).strip()
        )
    return texts, seconds


def recognize_runtime(model_dir: Path, clips: list[np.ndarray]) -> tuple[list[str], float, dict[str, float]]:
    """In-process: the serving runtime (1 onnxruntime thread) in 160 ms chunks + greedy CTC.

    Returns the greedy transcripts, the CPU seconds of runtime + greedy, and, when the model has a
    language model, the CPU seconds the service's final decoding adds with each LM search (its
    default settings and the model's tuned weights): `lexicon` (C++, the default) and `open`
    (Python, for streams with speech_contexts)."""
    from pipelines.asr.triton_config import parameters
    from rivulet.asr.decoding import BeamDecoder
    from rivulet.asr.language_model import FusionWeights, LanguageModel
    from rivulet.asr.lexicon_decoding import Lexicon, LexiconSearch
    from rivulet.asr.settings import AsrSettings
    from rivulet.asr.vocabulary import Vocabulary

    module = load_runtime()
    runtime = module.StreamingRecognizer(str(model_dir / "1"), intra_op_num_threads=1)
    cfg = runtime.config
    params = parameters(model_dir / "config.pbtxt")
    vocabulary = Vocabulary(tuple(cfg.vocabulary), cfg.blank_index, cfg.tokenizer)
    defaults = AsrSettings.model_fields
    searches: dict = {}
    if "language_model" in params:
        lm = LanguageModel.load(model_dir / params["language_model"])
        lexicon = LexiconSearch(
            Lexicon(lm, vocabulary),
            FusionWeights.from_parameters(params, "lexicon"),
            defaults["asr_lexicon_beam_size"].default,
            defaults["asr_lexicon_beam_threshold"].default,
        )
        weights = FusionWeights.from_parameters(params)
        searches = {
            "lexicon": lexicon.decoder,
            "open": lambda: BeamDecoder(
                vocabulary, defaults["asr_beam_size"].default, lm=lm, weights=weights
            ),
        }
    texts, compute, lm_compute = [], 0.0, dict.fromkeys(searches, 0.0)
    for clip in clips:
        started = time.process_time()
        logprobs = runtime.transcribe_logprobs(clip, 2560)
        texts.append(module.greedy_ctc(logprobs, cfg.vocabulary, cfg.blank_index, cfg.tokenizer))
        compute += time.process_time() - started
        for name, make in searches.items():
            started = time.process_time()
            decoder = make()
            for start in range(0, len(logprobs), 4):  # 160 ms chunks of 40 ms frames, as served
                decoder.advance(logprobs[start : start + 4], start)
            decoder.best()
            lm_compute[name] += time.process_time() - started
    return texts, compute, lm_compute


def recognize_pocketsphinx(clips: list[np.ndarray]) -> tuple[list[str], float]:
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=16000, loglevel="FATAL")
    texts, compute = [], 0.0
    for clip in clips:
        pcm = audio.float_to_pcm16(clip).tobytes()
        started = time.process_time()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        compute += time.process_time() - started
        texts.append(hyp.hypstr if hyp else "")
    return texts, compute


def plot(results: dict, path: Path) -> None:
    names = list(results["sets"])
    ours = [100 * results["sets"][n]["ours"]["wer"] for n in names]
    theirs = [100 * results["sets"][n]["pocketsphinx"]["wer"] for n in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 1]})
    x = np.arange(len(names))
    left.bar(x - 0.2, ours, 0.4, label="Rivulet asr_streaming")
    left.bar(x + 0.2, theirs, 0.4, label="pocketsphinx en-us")
    left.axhline(100 * GOAL_REAL_DIGITS_WER, color="grey", ls="--", lw=0.8, label="goal on real digits")
    left.set_xticks(x, names, rotation=10)
    left.set(ylabel="WER %", title="held-out speakers and voices")
    left.legend(fontsize=8)
    rtf = results["rtf"]
    right.bar(["ours", "pocketsphinx"], [rtf["ours"], rtf["pocketsphinx"]], color=["C0", "C1"])
    right.set(ylabel="compute s / audio s", title="real-time factor (1 thread)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results: dict) -> Path:
    lines = [
        "# ASR accuracy: held-out speakers and voices, beside pocketsphinx",
        "",
        f"Reproduce: `{results['command']}` ({results['decoder']}).",
        "",
        "| set | clips | words | Rivulet WER | Rivulet SER | pocketsphinx WER | pocketsphinx SER |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in results["sets"].items():
        ours, theirs = entry["ours"], entry["pocketsphinx"]
        lines.append(
            f"| {name} ({entry['description']}) | {entry['clips']} | {ours['words']} "
            f"| **{100 * ours['wer']:.1f} %** "
            f"| {100 * ours['sentence_error_rate']:.1f} % | {100 * theirs['wer']:.1f} % "
            f"| {100 * theirs['sentence_error_rate']:.1f} % |"
        )
    rtf = results["rtf"]
    real = results["sets"]["digits_real"]["ours"]["wer"]
    beats = "yes" if results["beats_pocketsphinx_everywhere"] else "no"
    lines += [
        "",
        f"Goal: WER ≤ {100 * GOAL_REAL_DIGITS_WER:.0f} % on held-out real speakers saying digits: "
        f"**{'met' if real <= GOAL_REAL_DIGITS_WER else 'not met'}** ({100 * real:.1f} %). "
        f"Lower than pocketsphinx on every set: **{beats}**. SER: sentences with any error.",
        "",
        f"Real-time factor (process CPU time / audio time, one thread, {rtf['audio_s']:.0f} s of audio): "
        f"Rivulet runtime {rtf['ours']:.4f} (160 ms chunks, greedy CTC) "
        f"+ {rtf.get('ours_lm_decoding', 0.0):.4f} for the final beam search with the n-gram LM "
        "(C++ lexicon search, the service's default) "
        f"= {rtf['ours'] + rtf.get('ours_lm_decoding', 0.0):.4f}, "
        f"pocketsphinx {rtf['pocketsphinx']:.4f} "
        f"— ratio {rtf['pocketsphinx'] / max(rtf['ours'] + rtf.get('ours_lm_decoding', 0.0), 1e-9):.1f}×. "
        f"The Python open-vocabulary search (streams with speech_contexts) would add "
        f"{rtf.get('ours_lm_decoding_open', 0.0):.4f} instead.",
    ]
    if results.get("service_request_ms_p50") is not None:
        lines.append(
            "Through the service, one `offline_recognize` per clip: "
            f"p50 {results['service_request_ms_p50']:.1f} ms, p95 {results['service_request_ms_p95']:.1f} ms "
            "(client, service and Triton on the same 2 shared cores)."
        )
    lines += ["", "Examples (reference → Rivulet | pocketsphinx):", ""]
    for name, entry in results["sets"].items():
        for ref, ours_text, theirs_text in entry["examples"][:3]:
            lines.append(f"- {name}: `{ref}` → `{ours_text}` | `{theirs_text}`")
    lines += [
        "",
        f"Model: {results['model']}. Machine: {results['machine']}.",
        "Data: FSDD (CC BY-SA 4.0, Jakobovski et al.), SNIPS (CC0) sentences, the assistant's own commands.",
        "",
        "![WER and RTF](asr_accuracy.png)",
        "",
    ]
    return write_report_files("asr_accuracy", lines, results, lambda path: plot(results, path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.asr_accuracy", description=__doc__)
    parser.add_argument("--repository", type=Path, default=Path("models"))
    parser.add_argument("--per-set", type=int, help="at most this many clips per set (default: all)")
    parser.add_argument("--no-service", action="store_true", help="greedy CTC on the runtime, no ASR service")
    parser.add_argument("--log-dir", type=Path, default=Path(".run/bench_asr_accuracy"))
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sets = load_sets(args.per_set)
    clips = {
        name: [soundfile.read(r["audio_filepath"], dtype="float32")[0] for r in rows]
        for name, rows in sets.items()
    }
    everything = [c for name in sets for c in clips[name]]
    audio_s = sum(c.size for c in everything) / 16000

    runtime_texts, our_compute, lm_compute = recognize_runtime(args.repository / MODEL, everything)
    print(f"runtime: RTF {our_compute / audio_s:.4f} over {audio_s:.0f} s of audio")
    for name, seconds in lm_compute.items():
        print(f"{name} LM search: RTF {seconds / audio_s:.4f} more")
    sphinx_texts, sphinx_compute = recognize_pocketsphinx(everything)
    print(f"pocketsphinx: RTF {sphinx_compute / audio_s:.4f}")
    service_seconds: list[float] = []
    if args.no_service:
        our_texts, decoder = runtime_texts, "greedy CTC on the Triton model's runtime in-process (no service)"
    else:
        with asr_stack(args.repository.resolve(), args.log_dir) as address:
            our_texts, service_seconds = recognize_service(address, everything)
        decoder = "through tritonserver + the ASR service, riva.client offline_recognize"

    results: dict = {"sets": {}, "decoder": decoder}
    position = 0
    for name, rows in sets.items():
        n = len(rows)
        refs = [r["text"] for r in rows]
        ours, theirs = our_texts[position : position + n], sphinx_texts[position : position + n]
        position += n
        results["sets"][name] = {
            "description": SETS[name][1],
            "clips": n,
            "ours": wer(refs, ours),
            "pocketsphinx": wer(refs, theirs),
            "examples": [[refs[i], normalize(ours[i]), normalize(theirs[i])] for i in range(min(n, 5))],
        }
        print(
            f"{name}: ours {100 * results['sets'][name]['ours']['wer']:.1f} % "
            f"pocketsphinx {100 * results['sets'][name]['pocketsphinx']['wer']:.1f} %"
        )
    results["beats_pocketsphinx_everywhere"] = all(
        s["ours"]["wer"] < s["pocketsphinx"]["wer"] for s in results["sets"].values()
    )
    results["rtf"] = {
        "ours": our_compute / audio_s,
        "ours_lm_decoding": lm_compute.get("lexicon", 0.0) / audio_s,
        "ours_lm_decoding_open": lm_compute.get("open", 0.0) / audio_s,
        "pocketsphinx": sphinx_compute / audio_s,
        "audio_s": audio_s,
    }
    if service_seconds:
        results["service_request_ms_p50"] = 1000 * float(np.percentile(service_seconds, 50))
        results["service_request_ms_p95"] = 1000 * float(np.percentile(service_seconds, 95))
        agreement = np.mean(
            [normalize(a) == normalize(b) for a, b in zip(our_texts, runtime_texts, strict=True)]
        )
        results["service_vs_runtime_greedy_agreement"] = float(agreement)
    build = json.loads((args.repository / MODEL / "1" / "build.json").read_text())
    results["model"] = f"{MODEL}, {build.get('params', 0) / 1e6:.2f} M params"
    results["machine"] = f"{platform.machine()}, {os.cpu_count()} cores (shared)"
    command = "PYTHONPATH=services:. .venv/bin/python -m bench.asr_accuracy --repository models"
    results["command"] = command + (" --no-service" if args.no_service else "")
    print(write_report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
