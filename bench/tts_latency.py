"""Time to first audio and real-time factor of SynthesizeOnline, per voice, at concurrency 1, 4 and 16.

    python -m bench.tts_latency [--requests 40] [--concurrency 1 4 16] [--voices English-US.Female-1 ...]

Starts the real tritonserver (``tts_embedded``, plus the tiny FastPitch + HiFi-GAN from the test
cache when it is built: ``python -m pipelines.tts tiny-model``) and ``python -m rivulet.tts`` on
free ports. Closed-loop load: N concurrent callers each open a ``SynthesizeOnline`` stream with one
10-word sentence (a different one each time), read it to the end, and start the next. Time to
first audio = from opening the stream to the first audio response; RTF = (time to the last
response) / (audio duration), at concurrency 1. Client, service, Triton and the engines share
this machine's cores (with whatever else runs), so quote medians and ratios.
Goal (DESIGN.md budget): first audio ≤ 60 ms p95 at concurrency 1, ≤ 150 ms p95 at 16.
Writes bench/reports/tts_latency.{md,json,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import grpc
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from riva.client.proto import riva_tts_pb2 as rtts
from riva.client.proto import riva_tts_pb2_grpc

from bench.tts_stack import embedded_repository, tts_stack

REPORTS = Path(__file__).parent / "reports"
RATE = 16000
GOALS_MS = {1: 60, 16: 150}
# Ten words each (numbers are written out by the front-end, so they count as spoken words).
SENTENCES = [
    "please set an alarm for seven thirty tomorrow morning, thanks.",
    "turn off the lights in the kitchen and living room.",
    "what is the weather going to be like this weekend?",
    "play some relaxing jazz by miles davis in the bedroom.",
    "remind me to call my mother when I get home.",
    "add milk, eggs and bread to my shopping list please.",
    "how long will it take to drive to the airport?",
    "your next meeting with the design team starts in ten.",
    "I found three italian restaurants near you open right now.",
    "the timer for the pasta goes off in five minutes.",
]


async def one_stream(stub, voice: str, text: str) -> tuple[float, float, float]:
    """(time to first audio, time to last response, audio seconds) of one SynthesizeOnline call."""
    request = rtts.SynthesizeSpeechRequest(
        text=text, voice_name=voice, language_code="en-US", sample_rate_hz=RATE, encoding=1
    )
    start = time.perf_counter()
    first, samples = None, 0
    async for response in stub.SynthesizeOnline(iter([request]), timeout=60):
        if first is None and response.audio:
            first = time.perf_counter() - start
        samples += len(response.audio) // 2
    return first or float("nan"), time.perf_counter() - start, samples / RATE


async def load(address: str, voice: str, concurrency: int, requests: int) -> dict:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = riva_tts_pb2_grpc.RivaSpeechSynthesisStub(channel)
        for text in SENTENCES[:2]:  # warm-up
            await one_stream(stub, voice, text)
        results: list[tuple[float, float, float]] = []
        counter = iter(range(requests))

        async def caller() -> None:
            for i in counter:
                results.append(await one_stream(stub, voice, SENTENCES[i % len(SENTENCES)]))

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    ttfa = np.array([r[0] for r in results]) * 1000
    total = np.array([r[1] for r in results])
    audio = np.array([r[2] for r in results])
    return {
        "voice": voice,
        "concurrency": concurrency,
        "requests": len(results),
        "ttfa_ms": {q: float(np.percentile(ttfa, int(q[1:]))) for q in ("p50", "p95", "p99")},
        "ttfa_mean_ms": float(ttfa.mean()),
        "total_p50_ms": float(np.percentile(total, 50) * 1000),
        "audio_s_mean": float(audio.mean()),
        "rtf_p50": float(np.percentile(total / audio, 50)),
        "throughput_audio_s_per_s": float(audio.sum() / wall),
    }


def tiny_neural_model(repository: Path) -> bool:
    """Copy the cached tiny FastPitch + HiFi-GAN into the repository if it was built."""
    cache = Path(os.environ.get("RIVULET_CACHE_DIR", Path.home() / ".cache" / "rivulet"))
    try:
        from pipelines.tts.cache import TINY_NAME, source_key
    except ImportError:
        return False
    built = cache / "tts" / source_key() / TINY_NAME
    if not (built / "config.pbtxt").exists():
        return False
    import shutil

    shutil.copytree(built, repository / TINY_NAME)
    return True


def write_report(rows: list[dict], machine: str) -> None:
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "tts_latency.json").write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    lines = [
        "# TTS latency: SynthesizeOnline time to first audio",
        "",
        f"Machine: {machine}. One 10-word sentence per stream, 16 kHz LINEAR_PCM, closed loop; "
        "service, tritonserver, engines and client on the same cores. RTF = time to the last response "
        "/ audio duration. Goal: first audio ≤ 60 ms p95 at concurrency 1, ≤ 150 ms p95 at 16. "
        "`python -m bench.tts_latency` reproduces this.",
        "",
        "| voice | concurrency | requests | first audio p50 ms | p95 ms | p99 ms | whole stream p50 ms "
        "| RTF p50 | goal met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        goal = GOALS_MS.get(r["concurrency"])
        met = "-" if goal is None else ("yes" if r["ttfa_ms"]["p95"] <= goal else "no")
        t = r["ttfa_ms"]
        lines.append(
            f"| {r['voice']} | {r['concurrency']} | {r['requests']} | {t['p50']:.0f} | {t['p95']:.0f} | "
            f"{t['p99']:.0f} | {r['total_p50_ms']:.0f} | {r['rtf_p50']:.3f} | {met} |"
        )
    (REPORTS / "tts_latency.md").write_text("\n".join(lines) + "\n")

    voices = list(dict.fromkeys(r["voice"] for r in rows))
    levels = sorted({r["concurrency"] for r in rows})
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(1, len(levels))
    for j, level in enumerate(levels):
        values = [
            next((r["ttfa_ms"]["p95"] for r in rows if r["voice"] == v and r["concurrency"] == level), 0)
            for v in voices
        ]
        ax.bar(np.arange(len(voices)) + j * width, values, width, label=f"concurrency {level}")
    for level, goal in GOALS_MS.items():
        ax.axhline(goal, linestyle="--", color="gray", linewidth=0.8)
        ax.text(len(voices) - 0.5, goal, f"goal c{level}", fontsize=7, va="bottom", ha="right")
    ax.set_xticks(np.arange(len(voices)) + width * (len(levels) - 1) / 2, voices, rotation=20, fontsize=8)
    ax.set_ylabel("time to first audio p95 (ms)")
    ax.set_title("SynthesizeOnline time to first audio, p95")
    ax.legend()
    fig.tight_layout()
    fig.savefig(REPORTS / "tts_latency.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=40, help="streams per voice at concurrency 1")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--voices", nargs="*", default=None, help="default: every deployed voice")
    parser.add_argument("--log-dir", type=Path, default=Path(".run/bench-tts-latency"))
    args = parser.parse_args()
    machine = f"{platform.machine()}, {os.cpu_count()} cores (shared)"
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="rivulet-tts-latency-") as tmp:
        repository = embedded_repository(Path(tmp) / "models")
        models = ["tts_embedded"] + (["tts_fastpitch_tiny"] if tiny_neural_model(repository) else [])
        with tts_stack(repository, args.log_dir, tuple(models)) as address:
            voices = args.voices
            if not voices:
                import riva.client

                service = riva.client.SpeechSynthesisService(riva.client.Auth(uri=address))
                config = service.stub.GetRivaSynthesisConfig(rtts.RivaSynthesisConfigRequest())
                voices = [
                    f"{c.parameters['voice_name']}.{s.split(':')[0]}"
                    for c in config.model_config
                    for s in c.parameters["subvoices"].split(",")
                ]
            for voice in voices:
                for level in args.concurrency:
                    requests = args.requests * max(1, level // 2) if level > 1 else args.requests
                    row = asyncio.run(load(address, voice, level, requests))
                    rows.append(row)
                    t = row["ttfa_ms"]
                    print(
                        f"{voice:28s} c={level:<3d} first audio p50 {t['p50']:6.1f} p95 {t['p95']:6.1f} "
                        f"p99 {t['p99']:6.1f} ms  RTF {row['rtf_p50']:.3f}",
                        flush=True,
                    )
    machine += f", load average {os.getloadavg()[0]:.1f} at the end"
    write_report(rows, machine)
    print((REPORTS / "tts_latency.md").read_text())


if __name__ == "__main__":
    main()
