"""Intelligibility of Rivulet's voices and of each candidate synthesizer, judged by pocketsphinx.

    python -m bench.tts_intelligibility [--sentences 100] [--skip-direct] [--skip-service]

An independent recognizer (pocketsphinx 5, its bundled en-us acoustic model and language model)
transcribes speech for the first N SNIPS test sentences (/work/shared/data/nlu/snips/test/seq.in,
RIVULET_DATA_DIR) and we score its word error rate against the text that was spoken:

- "direct": each candidate engine voice (flite, espeak-ng, festival) run on its own command line
  (rivulet.voices), on the text after Rivulet's normalization (so both sides speak the same words);
- "rivulet": every voice of the deployed ``tts_embedded`` model through the TTS service
  (riva.client ``synthesize``, LINEAR_PCM at 16 kHz), i.e. after chunking, trimming, resampling.

The reference is the normalized sentence, lower-cased, hyphens as spaces, punctuation removed.
Also reported: synthesis time per sentence and real-time factor (synthesis time / audio duration)
of each direct engine. pocketsphinx is a weak, old recognizer: absolute WERs are high for every
voice and what matters is the comparison. Writes bench/reports/tts_intelligibility.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import tempfile
import time
from pathlib import Path

import editdistance
import grpc
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import riva.client
from pocketsphinx import Decoder
from riva.client.proto import riva_tts_pb2 as rtts

from bench.tts_stack import embedded_repository, tts_stack
from rivulet import voices
from rivulet.core.audio import resample
from rivulet.tts.normalize import normalize

REPORTS = Path(__file__).parent / "reports"
CANDIDATES = (
    "flite:slt",
    "flite:rms",
    "flite:awb",
    "flite:kal16",
    "flite:kal",
    "espeak-ng:en-us",
    "espeak-ng:en-us+f3",
    "espeak-ng:en-us+klatt",
    "festival:cmu_us_slt_arctic_hts",
    "festival:kal_diphone",
    "festival:ked_diphone",
)
RATE = 16000


def sentences(limit: int) -> list[str]:
    data = Path(os.environ.get("RIVULET_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    lines = (data / "nlu" / "snips" / "test" / "seq.in").read_text().splitlines()
    return [" ".join(line.split()) for line in lines if line.strip()][:limit]


def reference_words(text: str) -> list[str]:
    text = normalize(text).lower().replace("-", " ")
    return re.sub(r"[^a-z' ]+", " ", text).split()


class Recognizer:
    def __init__(self) -> None:
        self.decoder = Decoder(samprate=RATE, logfn=os.devnull)

    def __call__(self, samples: np.ndarray) -> list[str]:
        pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return [w for w in (hyp.hypstr if hyp else "").split() if not w.startswith("<")]


def score(refs: list[list[str]], hyps: list[list[str]]) -> float:
    errors = sum(editdistance.eval(r, h) for r, h in zip(refs, hyps, strict=True))
    return errors / max(1, sum(len(r) for r in refs))


def run_direct(texts: list[str], refs: list[list[str]], recognize: Recognizer) -> dict:
    results = {}
    for voice_id in CANDIDATES:
        voice = voices.Voice.parse(voice_id)
        if not voices.engine_available(voice.engine):
            continue
        hyps, synth_s, audio_s = [], 0.0, 0.0
        for text in texts:
            start = time.perf_counter()
            samples, rate = voices.synthesize(voice, normalize(text))
            synth_s += time.perf_counter() - start
            audio_s += samples.size / rate
            hyps.append(recognize(resample(samples, rate, RATE)))
        results[voice_id] = {
            "wer": score(refs, hyps),
            "synth_ms_per_sentence": 1000 * synth_s / len(texts),
            "rtf": synth_s / audio_s,
            "gender": voice.gender,
        }
        r = results[voice_id]
        print(f"direct {voice_id:32s} WER {r['wer']:.3f} {r['synth_ms_per_sentence']:.0f} ms/sentence "
              f"RTF {r['rtf']:.3f}", flush=True)  # fmt: skip
    return results


def run_service(texts: list[str], refs: list[list[str]], recognize: Recognizer, log_dir: Path) -> dict:
    results = {}
    with tempfile.TemporaryDirectory(prefix="rivulet-tts-bench-") as tmp:
        repository = embedded_repository(Path(tmp) / "models")
        with tts_stack(repository, log_dir) as address:
            service = riva.client.SpeechSynthesisService(riva.client.Auth(uri=address))
            config = service.stub.GetRivaSynthesisConfig(rtts.RivaSynthesisConfigRequest())
            for model in config.model_config:
                details = json.loads(model.parameters.get("voice_details", "{}"))
                for sub in model.parameters["subvoices"].split(","):
                    sub = sub.split(":")[0]
                    name = f"{model.parameters['voice_name']}.{sub}"
                    hyps, synth_s, audio_s, failures = [], 0.0, 0.0, []
                    for text in texts:
                        start = time.perf_counter()
                        try:
                            reply = service.synthesize(text, voice_name=name, sample_rate_hz=RATE)
                        except grpc.RpcError as exc:  # counted: every word of the sentence is lost
                            failures.append(f"{text!r}: {exc.code().name} {exc.details()}")
                            hyps.append([])
                            continue
                        synth_s += time.perf_counter() - start
                        samples = np.frombuffer(reply.audio, dtype="<i2").astype(np.float32) / 32768
                        audio_s += samples.size / RATE
                        hyps.append(recognize(samples))
                    results[name] = {
                        "wer": score(refs, hyps),
                        "engine_voice": details.get(sub, {}).get("engine_voice", ""),
                        "gender": details.get(sub, {}).get("gender", ""),
                        "synth_ms_per_sentence": 1000 * synth_s / len(texts),
                        "rtf": synth_s / audio_s,
                        "failures": failures,
                    }
                    r = results[name]
                    print(f"rivulet {name:24s} ({r['engine_voice']}) WER {r['wer']:.3f}", flush=True)
    return results


def write_report(direct: dict, service: dict, n: int) -> None:
    REPORTS.mkdir(exist_ok=True)
    payload = {
        "sentences": n,
        "source": "SNIPS test seq.in, first sentences",
        "recognizer": "pocketsphinx 5 (bundled en-us model and LM)",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "direct": direct,
        "rivulet": service,
    }
    (REPORTS / "tts_intelligibility.json").write_text(json.dumps(payload, indent=2))
    lines = [
        "# TTS intelligibility (pocketsphinx WER)",
        "",
        f"{n} SNIPS test sentences, normalized by Rivulet's front-end; recognizer: pocketsphinx 5 with its "
        "bundled en-us model. Lower is better; pocketsphinx is weak, compare voices rather than read "
        "absolute values. `python -m bench.tts_intelligibility` reproduces this.",
        "",
        "## Rivulet voices (through the TTS service, 16 kHz LINEAR_PCM)",
        "",
        "| voice | engine voice | gender | WER | same engine run directly | failed sentences |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in service.items():
        d = direct.get(r["engine_voice"], {})
        lines.append(
            f"| {name} | {r['engine_voice']} | {r['gender']} | {r['wer']:.3f} | "
            + (f"{d['wer']:.3f}" if d else "-")
            + f" | {len(r.get('failures', []))} |"
        )
    lines += [
        "",
        "## Candidate synthesizers run directly (command line, one process per sentence)",
        "",
        "| engine voice | gender | WER | synthesis ms / sentence | RTF |",
        "|---|---|---|---|---|",
    ]
    for name, r in sorted(direct.items(), key=lambda kv: kv[1]["wer"]):
        lines.append(
            f"| {name} | {r['gender']} | {r['wer']:.3f} | {r['synth_ms_per_sentence']:.0f} | {r['rtf']:.3f} |"
        )
    (REPORTS / "tts_intelligibility.md").write_text("\n".join(lines) + "\n")

    fig, ax = plt.subplots(figsize=(10, 4.5))
    names = sorted(direct, key=lambda k: direct[k]["wer"])
    ax.bar(range(len(names)), [direct[k]["wer"] for k in names], color="#999", label="run directly")
    for i, k in enumerate(names):
        via = [r["wer"] for r in service.values() if r["engine_voice"] == k]
        if via:
            ax.scatter([i], via[:1], color="#c33", zorder=3, label="through Rivulet" if i == 0 else None)
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("pocketsphinx WER")
    ax.set_title(f"Intelligibility on {n} SNIPS sentences (lower is better)")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(
        dict(zip(labels, handles, strict=True)).values(), dict(zip(labels, handles, strict=True)).keys()
    )
    fig.tight_layout()
    fig.savefig(REPORTS / "tts_intelligibility.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sentences", type=int, default=100)
    parser.add_argument(
        "--skip-direct", action="store_true", help="reuse the direct figures of the last report"
    )
    parser.add_argument("--skip-service", action="store_true")
    parser.add_argument("--log-dir", type=Path, default=Path(".run/bench-tts"))
    args = parser.parse_args()
    texts = sentences(args.sentences)
    refs = [reference_words(t) for t in texts]
    recognize = Recognizer()
    previous = REPORTS / "tts_intelligibility.json"
    if args.skip_direct and previous.exists():  # reuse the engines' figures of the last run
        direct = json.loads(previous.read_text()).get("direct", {})
    else:
        direct = run_direct(texts, refs, recognize)
        write_report(direct, {}, len(texts))  # saved before the (long) service run
    service = {} if args.skip_service else run_service(texts, refs, recognize, args.log_dir)
    write_report(direct, service, len(texts))
    print((REPORTS / "tts_intelligibility.md").read_text())


if __name__ == "__main__":
    main()
