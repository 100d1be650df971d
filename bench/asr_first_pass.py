"""The first pass on real voices: what the streaming model shows live, and where it ends utterances,
on held-out real speakers (`pipelines.asr.real_speech` test split), for one or more model repositories.

    python -m bench.asr_first_pass [--per-set N] [--model NAME=REPOSITORY ...]
    python -m bench.asr_first_pass --per-set 40 --whisper-interims 500 --name asr_live_captions

Each repository's `asr_streaming` is served by tritonserver + `python -m rivulet.asr` (no Whisper
model loaded, so finals are the streaming model's own, decoded with its LM); each clip is streamed
through `riva.client` in 100 ms messages with `interim_results`, followed by 0.5 s of silence, with
Riva's default endpointing. Per set:

- **interim WER**: the text a live caption shows just before each final (the last interim of each
  utterance, utterances joined), against the reference: what a person watching the web app reads;
- **final WER**: the streaming model's finals (the fallback when the Whisper pass fails);
- **endpoints**: clips with exactly one final, with none (speech missed), with several (split);
  and the finals no interim preceded (nothing shown live: a short word is over before the
  endpointer's 300 ms start window has filled).

`--whisper-interims MS` adds a row served with Whisper too and custom_configuration
`whisper_interims_ms` = MS (`rivulet.asr.live_captions`): the interims are Whisper's transcript of the
utterance so far, the finals Whisper's; its clips are streamed at real-time pace (a caption needs time
to come back), and the streaming model alone is measured the same way beside it.

WER in the canonical form of `bench.asr_real_speech`. Writes bench/reports/<name>.{md,json,png}
(`--name`, default asr_first_pass).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.asr_real_speech import load, recognition_config, score
from bench.local_stack import service_stack
from bench.report_files import write_report_files
from pipelines.asr import real_speech
from rivulet.core import audio

ROOT = Path(__file__).resolve().parents[1]
MESSAGE = 1600  # samples: 100 ms
TRAILING_SILENCE = 8000


def stream_clip(
    asr, samples: np.ndarray, custom: dict[str, str] | None = None, real_time: bool = False
) -> tuple[list[str], list[str]]:
    """(the last interim before each final, the finals) of one clip streamed as fast as it is read,
    or at `real_time` pace; `custom`: the request's custom_configuration."""
    import riva.client

    config = riva.client.StreamingRecognitionConfig(
        config=recognition_config(custom_configuration=custom or {}), interim_results=True
    )
    pcm = audio.encode(
        np.concatenate([samples, np.zeros(TRAILING_SILENCE, np.float32)]), audio.LINEAR_PCM, 16000
    )

    def messages():
        for i in range(0, len(pcm), 2 * MESSAGE):  # 2 bytes a sample
            if real_time:
                time.sleep(MESSAGE / 16000)
            yield pcm[i : i + 2 * MESSAGE]

    chunks = messages()
    shown, finals, last_interim = [], [], ""
    for response in asr.streaming_response_generator(chunks, config):
        for result in response.results:
            if not result.alternatives:
                continue
            text = result.alternatives[0].transcript.strip()
            if result.is_final:
                finals.append(text)
                shown.append(last_interim)
                last_interim = ""
            else:
                last_interim = text
    if last_interim:  # an utterance the endpointer never closed: its caption is what stayed shown
        shown.append(last_interim)
    return shown, finals


def measure(
    repository: Path, sets: dict, log_dir: Path, captions_ms: int = 0, real_time: bool = False
) -> dict:
    """Each set's clips through the repository's streaming model, alone or (`captions_ms` > 0) with
    Whisper writing the finals and a live caption every `captions_ms` of speech."""
    import riva.client

    out: dict = {}
    models = ("asr_streaming", "asr_whisper") if captions_ms else ("asr_streaming",)
    custom = {"whisper_interims_ms": str(captions_ms)} if captions_ms else None
    with service_stack("rivulet.asr", repository, log_dir, models, only_these_models=True) as address:
        asr = riva.client.ASRService(riva.client.Auth(uri=address))
        for name, (clips, samples) in sets.items():
            shown, finals, counts, uncaptioned = [], [], [], 0
            for s in tqdm(samples, desc=f"{repository} {name}", leave=False):
                interims, texts = stream_clip(asr, s, custom, real_time or bool(captions_ms))
                uncaptioned += sum(not i for i in interims)
                shown.append(" ".join(i for i in interims if i))
                finals.append(" ".join(texts))
                counts.append(len(texts))
            refs = [c.text for c in clips]
            out[name] = {
                "interim": score(refs, shown),
                "final": score(refs, finals),
                "endpoints": {
                    "one": sum(c == 1 for c in counts),
                    "none": sum(c == 0 for c in counts),
                    "several": sum(c > 1 for c in counts),
                },
                "finals_without_caption": uncaptioned,
                "examples": [
                    {"ref": r, "interim": i, "final": f}
                    for r, i, f in list(zip(refs, shown, finals, strict=True))[:8]
                ],
            }
    return out


def report(log: dict, args: argparse.Namespace) -> Path:
    models = list(log["models"])
    command = f"python -m bench.asr_first_pass --per-set {args.per_set}"
    if args.whisper_interims:
        command += f" --whisper-interims {args.whisper_interims} --name {args.name}"
    lines = [
        "# The first pass on held-out real speakers: interims and endpoints",
        "",
        f"`{command}`; speakers of the "
        "`pipelines.asr.real_speech` test split (never trained or tuned on). Interim WER: the last "
        "caption shown before each final; final WER: the streaming model's own finals (LM search), "
        "Whisper's in the rows with Whisper captions; "
        "endpoints: clips with one final / none / several.",
        "",
        "| model | set | clips | interim WER | final WER | one final | none | several | no caption |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model in models:
        for name, m in log["models"][model].items():
            e = m["endpoints"]
            lines.append(
                f"| {model} | {name} | {m['final']['n']} | {100 * m['interim']['wer']:.1f} % | "
                f"{100 * m['final']['wer']:.1f} % | {e['one']} | {e['none']} | {e['several']} | "
                f"{m['finals_without_caption']} |"
            )
    lines += ["", f"![interim WER per set]({args.name}.png)", ""]

    def plot(path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        sets = list(next(iter(log["models"].values())))
        fig, ax = plt.subplots(figsize=(10, 4.5))
        width = 0.8 / (2 * len(models))
        for i, model in enumerate(models):
            for j, kind in enumerate(("interim", "final")):
                values = [100 * log["models"][model][s][kind]["wer"] for s in sets]
                offset = (2 * i + j) * width
                ax.bar(np.arange(len(sets)) + offset, values, width, label=f"{model} {kind}")
        ax.set_xticks(np.arange(len(sets)) + 0.4 - width / 2, sets)
        ax.set_ylabel("canonical WER (%)")
        ax.set_ylim(0, 110)
        ax.legend(fontsize=8)
        ax.set_title("The streaming model on held-out real speakers")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

    path = write_report_files(args.name, lines, log, plot)
    print("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-set", type=int, default=150)
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="NAME=REPOSITORY (repeatable); default: embedded=models",
    )
    parser.add_argument("--sets", nargs="*", default=list(real_speech.SETS))
    parser.add_argument("--log-dir", type=Path, default=Path(".run/bench-asr-first-pass"))
    parser.add_argument(
        "--whisper-interims", type=int, default=0, help="MS: a row with Whisper's live captions every MS"
    )
    parser.add_argument("--name", default="asr_first_pass", help="the report's file name")
    args = parser.parse_args(argv)
    models = dict(m.split("=", 1) for m in args.model) or {"embedded": str(ROOT / "models")}
    sets = {}
    for name in args.sets:
        clips = real_speech.sample(real_speech.clips(name, "test"), args.per_set)
        sets[name] = (clips, [load(c) for c in clips])
    log = {"per_set": args.per_set, "models": {}}
    for label, repository in models.items():
        log["models"][label] = measure(
            Path(repository).resolve(), sets, args.log_dir / label, real_time=bool(args.whisper_interims)
        )
    if args.whisper_interims:
        label, repository = next(iter(models.items()))
        row = f"{label} + Whisper captions every {args.whisper_interims} ms"
        log["models"][row] = measure(
            Path(repository).resolve(), sets, args.log_dir / "captions", args.whisper_interims
        )
    report(log, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
