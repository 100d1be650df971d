"""Streaming ASR latency and capacity through the ASR service, with Triton sequence batching on vs off.

    python -m bench.asr_latency [--repository models] [--seconds 20] [--levels 1 16 64]

Each stream plays speech (held-out synthetic voices: digits and commands) as 160 ms chunks sent
in real time over one StreamingRecognize call with interim results, like a microphone. Measured
at the client:

- per-chunk latency (Riva's measure): from sending a chunk to receiving the response whose
  `audio_processed` first covers it (chunks answered by no response, e.g. silence before speech
  starts, are not counted; the report gives the share measured);
- end of audio → final: from the client's half-close to the last `is_final` result.

Then the capacity: the most concurrent real-time streams with p95 chunk latency < 100 ms, once
with the model as configured (sequence batching: chunks of many streams in one model execution)
and once from a copy whose config.pbtxt sets `max_batch_size: 1` and drops the preferred batch
sizes (one request per execution). Both run side by side and are measured level by level in turn,
so the load of other jobs falls on both alike. Client, service and Triton share this machine's
cores (and, while it was measured, other jobs): quote medians and ratios. Writes
bench/reports/asr_latency.{md,json,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import re
import time
from pathlib import Path

import grpc
import matplotlib
import numpy as np

matplotlib.use("Agg")
import itertools

import matplotlib.pyplot as plt
from riva.client.proto import riva_asr_pb2 as rasr
from riva.client.proto import riva_asr_pb2_grpc

from bench.local_stack import repository_copy, service_stack
from bench.report_files import write_report_files
from rivulet.core import audio
from rivulet.voices import Voice, synthesize

REPORTS = Path(__file__).parent / "reports"
MODEL = "asr_streaming"
RATE = 16_000
CHUNK = 2560  # 160 ms
CHUNK_S = CHUNK / RATE
GOAL_CHUNK_P95_MS = 100.0
GOAL_FINAL_P95_MS = 30.0
WINDOWS = 3  # chunk p95 = median of the p95s of this many consecutive windows of a run
VOICES = ("flite:rms", "festival:ked_diphone", "espeak-ng:en-us+f3", "espeak-ng:en+david")
TEXTS = (
    "three seven one nine",
    "turn on the kitchen lights",
    "what time is it",
    "set a timer for five minutes",
    "two four six eight",
    "play some jazz music",
    "stop",
    "call mom at nine thirty",
)


def clips(sentences: int = 3) -> list[bytes]:
    """16-bit PCM clips, each `sentences` sentences with pauses, by held-out voices."""
    rng = random.Random(3)
    out = []
    for voice in VOICES * 2:
        parts = []
        for text in rng.sample(TEXTS, sentences):
            samples, rate = synthesize(Voice.parse(voice), text)
            samples = audio.resample(samples, rate, RATE)
            parts += [0.7 * samples / max(1e-6, float(np.abs(samples).max())), np.zeros(int(0.3 * RATE))]
        clip = np.concatenate([np.zeros(int(0.2 * RATE)), *parts]).astype(np.float32)
        out.append(audio.encode(clip, audio.LINEAR_PCM, RATE))
    return out


def asr_stack(
    repository: Path, log_dir: Path, language_models: bool = True, lm_search: str = "lexicon"
) -> contextlib.AbstractContextManager[str]:
    """tritonserver loading only the ASR model + `python -m rivulet.asr`; yields the service address."""
    settings = {
        "asr_max_streams": 1024,
        "asr_language_models": str(language_models).lower(),
        "asr_lm_search": lm_search,
    }
    return service_stack(
        "rivulet.asr", repository, log_dir, (MODEL,), settings=settings, only_these_models=True
    )


async def one_stream(stub, pcm: bytes, start_at: float, stats: dict) -> None:
    """Play `pcm` in real time from `start_at`; record chunk latencies and the final latency."""
    config = rasr.StreamingRecognitionConfig(
        config=rasr.RecognitionConfig(
            encoding=audio.LINEAR_PCM, sample_rate_hertz=RATE, language_code="en-US"
        ),
        interim_results=True,
    )
    call = stub.StreamingRecognize(timeout=600)
    sent: list[float] = []
    acked = 0
    end_time = None
    last_final = None
    n_chunks = (len(pcm) // 2 + CHUNK - 1) // CHUNK

    async def reader() -> None:
        nonlocal acked, last_final
        async for response in call:
            now = time.perf_counter()
            for result in response.results:
                covered = min(int(round(result.audio_processed / CHUNK_S, 3)), len(sent))
                if covered > acked:
                    stats["chunk_ms"].append((now - sent[covered - 1]) * 1000)
                    stats["chunk_at"].append(now)
                    acked = covered
                if result.is_final:
                    last_final = now

    task = asyncio.create_task(reader())
    try:
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        await call.write(rasr.StreamingRecognizeRequest(streaming_config=config))
        t0 = time.perf_counter()
        for k in range(n_chunks):
            await asyncio.sleep(max(0.0, t0 + (k + 1) * CHUNK_S - time.perf_counter()))  # real time
            piece = pcm[k * CHUNK * 2 : (k + 1) * CHUNK * 2]
            sent.append(time.perf_counter())
            await call.write(rasr.StreamingRecognizeRequest(audio_content=piece))
        end_time = time.perf_counter()
        await call.done_writing()
        await task
        stats["close_ms"].append((time.perf_counter() - end_time) * 1000)
        stats["chunks"] += n_chunks
        if last_final is not None and last_final >= end_time:
            stats["final_ms"].append((last_final - end_time) * 1000)
    except grpc.aio.AioRpcError as exc:
        stats["errors"] += 1
        stats.setdefault("error_codes", set()).add(exc.code().name)
        task.cancel()


async def load(address: str, pcm_clips: list[bytes], streams: int, seconds: float) -> dict:
    """`streams` concurrent real-time streams, each replaying clips back to back for `seconds`."""
    stats: dict = {"chunk_ms": [], "chunk_at": [], "final_ms": [], "close_ms": [], "chunks": 0, "errors": 0}
    async with grpc.aio.insecure_channel(address) as channel:
        stub = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(channel)
        begin = time.perf_counter() + 0.5
        stop_at = begin + seconds

        async def player(i: int) -> None:
            k = i
            start = begin + random.Random(i).uniform(0, 1.0)  # spread stream starts over 1 s
            while start < stop_at:
                pcm = pcm_clips[k % len(pcm_clips)]
                await one_stream(stub, pcm, start, stats)
                k += streams
                start = time.perf_counter()

        await asyncio.gather(*(player(i) for i in range(streams)))
    chunk = np.array(stats["chunk_ms"]) if stats["chunk_ms"] else np.array([np.nan])
    final = np.array(stats["final_ms"]) if stats["final_ms"] else np.array([np.nan])
    # p95 of each third of the run, then their median: one burst of another job on this shared
    # machine spoils one window, not the figure
    at = np.array(stats["chunk_at"])
    edges = np.linspace(begin, max(at.max() if at.size else stop_at, stop_at) + 1e-6, WINDOWS + 1)
    window_p95 = [
        float(np.percentile(chunk[(at >= lo) & (at < hi)], 95))
        for lo, hi in itertools.pairwise(edges)
        if np.any((at >= lo) & (at < hi))
    ]
    return {
        "streams": streams,
        "chunks": stats["chunks"],
        "chunks_measured": len(stats["chunk_ms"]),
        "finals": len(stats["final_ms"]),
        "errors": stats["errors"],
        "error_codes": sorted(stats.get("error_codes", ())),
        "chunk_p50_ms": float(np.percentile(chunk, 50)),
        "chunk_p95_ms": float(np.median(window_p95)) if window_p95 else float("nan"),
        "chunk_p95_pooled_ms": float(np.percentile(chunk, 95)),
        "chunk_p99_ms": float(np.percentile(chunk, 99)),
        "final_p50_ms": float(np.percentile(final, 50)),
        "final_p95_ms": float(np.percentile(final, 95)),
        "close_p50_ms": float(np.percentile(stats["close_ms"], 50)) if stats["close_ms"] else float("nan"),
        "close_p95_ms": float(np.percentile(stats["close_ms"], 95)) if stats["close_ms"] else float("nan"),
    }


def show(label: str, row: dict) -> None:
    print(
        f"[{label:3s}] {row['streams']:4d} streams: chunk p50 {row['chunk_p50_ms']:7.1f}  "
        f"p95 {row['chunk_p95_ms']:7.1f}  p99 {row['chunk_p99_ms']:7.1f} ms | final p50 "
        f"{row['final_p50_ms']:6.1f}  p95 {row['final_p95_ms']:6.1f} ms | "
        f"done p95 {row['close_p95_ms']:6.1f} ms | "
        f"{row['chunks_measured']}/"
        f"{row['chunks']} chunks, {row['finals']} finals, errors {row['errors']} {row['error_codes']}",
        flush=True,
    )


def without_sequence_batching(repository: Path) -> None:
    """One request per model execution: max_batch_size 1, no preferred batch sizes."""
    config = repository / MODEL / "config.pbtxt"
    text = config.read_text()
    text, n = re.subn(r"max_batch_size:\s*\d+", "max_batch_size: 1", text)
    text = re.sub(r"preferred_batch_size:\s*\[[^\]]*\]", "", text)
    if n != 1:
        raise RuntimeError(f"{config} has no max_batch_size to change")
    config.unlink()  # the copy hard-links its files: never write through to the original
    config.write_text(text)


def passes(row: dict) -> bool:
    return not row["errors"] and row["chunk_p95_ms"] < GOAL_CHUNK_P95_MS


def interleaved(
    addresses: dict[str, str], pcm_clips: list[bytes], required: list[int], levels: list[int], seconds: float
) -> list[dict]:
    """Both configurations level by level, one right after the other, so the load other jobs put on
    this shared machine falls on both alike. `required` levels are measured with batching on
    whatever happens; the other levels go up until a configuration fails the goal."""
    rows: list[dict] = []
    failed = dict.fromkeys(addresses, False)
    for streams in sorted(set(required) | set(levels)):
        for label, address in addresses.items():
            must = label == "on" and streams in required
            if failed[label] and not must:
                continue
            row = asyncio.run(load(address, pcm_clips, streams, seconds))
            row.update(batching=label, phase="latency" if streams in required else "capacity")
            show(label, row)
            rows.append(row)
            failed[label] = failed[label] or not passes(row)
    return rows


def held(rows: list[dict], label: str) -> int:
    """The largest passing stream count below the first failing one."""
    best = 0
    for row in sorted((r for r in rows if r["batching"] == label), key=lambda r: r["streams"]):
        if not passes(row):
            break
        best = row["streams"]
    return best


def plot(rows: list[dict], out: Path) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, marker in (("on", "o"), ("off", "s")):
        sub = sorted((r for r in rows if r["batching"] == label), key=lambda r: r["streams"])
        if not sub:
            continue
        sub = [r for r in sub if np.isfinite(r["chunk_p95_ms"])]
        x = [r["streams"] for r in sub]
        ax1.plot(x, [r["chunk_p95_ms"] for r in sub], marker=marker, label=f"chunk p95, batching {label}")
        ax1.plot(
            x, [r["chunk_p50_ms"] for r in sub], marker=marker, ls="--", label=f"chunk p50, batching {label}"
        )
        ax2.plot(
            x,
            [r["close_p95_ms"] for r in sub],
            marker=marker,
            label=f"end of audio → stream done p95, {label}",
        )
        done = [r for r in sub if np.isfinite(r["final_p95_ms"])]
        if done:
            ax2.plot([r["streams"] for r in done], [r["final_p95_ms"] for r in done], marker=marker, ls="--",
                     label=f"end of audio → final p95, {label}")  # fmt: skip
    ax1.axhline(GOAL_CHUNK_P95_MS, color="red", lw=0.8, ls=":")
    ax2.axhline(GOAL_FINAL_P95_MS, color="red", lw=0.8, ls=":")
    ax1.set_ylabel("chunk response latency (ms)")
    ax2.set_ylabel("end of audio → final (ms)")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("concurrent real-time streams (160 ms chunks)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Rivulet streaming ASR through gRPC + Triton (2-core CPU)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def report_lines(rows: list[dict], args) -> list[str]:
    on, off = held(rows, "on"), held(rows, "off")
    lines = [
        "# Streaming ASR latency and capacity",
        "",
        *([f"Model: {args.note}", ""] if args.note else []),
        f"Machine: {os.cpu_count()} cores ({platform.machine()}); client, ASR service and tritonserver",
        "on the same machine, shared with other jobs while measured. Each stream sends 160 ms chunks",
        "of 16 kHz PCM in real time (held-out synthetic voices: digits and commands with pauses),",
        f"interim results on; {args.seconds:.0f} s per level. Finals decoded "
        + (
            f"by beam search with the model's n-gram LM ({args.lm_search} search"
            + (", the default)." if args.lm_search == "lexicon" else ", `RIVULET_ASR_LM_SEARCH=open`).")
            if args.language_models
            else "greedily, without the LM (`RIVULET_ASR_LANGUAGE_MODELS=false`)."
        )
        + f" Reproduce: `python -m bench.asr_latency --seconds {args.seconds:.0f}"
        + ("" if args.language_models else " --no-language-models")
        + ("" if args.lm_search == "lexicon" else f" --lm-search {args.lm_search}")
        + "`.",
        "",
        "Rows `final@1`: one stream playing single short commands back to back (many ends of audio),",
        'for the end-of-audio → final figure at 1 stream. "final" counts only ends of audio answered',
        'by a final result (it needs a model that still has words to finalize then); "done" is the',
        "end of audio → the service closing the stream, after the same END flush and final decoding,",
        "measured for every stream whatever the transcript.",
        "",
        "Chunk p95 is the median of the p95s of three consecutive windows of each run (pooled p95 beside",
        "it): on this shared machine a burst of another job spoils one window, not the figure.",
        "",
        "| batching | phase | streams | chunk p50 ms | chunk p95 ms | pooled p95 ms | chunk p99 ms "
        "| final p50 ms | final p95 ms | done p50 ms | done p95 ms | chunks measured | finals | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['batching']} | {r['phase']} | {r['streams']} "
            f"| {r['chunk_p50_ms']:.1f} | {r['chunk_p95_ms']:.1f} | {r['chunk_p95_pooled_ms']:.1f} "
            f"| {r['chunk_p99_ms']:.1f} | {r['final_p50_ms']:.1f} | {r['final_p95_ms']:.1f} "
            f"| {r['close_p50_ms']:.1f} | {r['close_p95_ms']:.1f} "
            f"| {r['chunks_measured']}/{r['chunks']} | {r['finals']} | {r['errors']} |"
        )
    one = next((r for r in rows if r["batching"] == "on" and r["phase"] == "final@1"), None)
    lines += ["", "## Goals", ""]
    if one:
        final = one["final_p95_ms"] if one["finals"] >= 5 else one["close_p95_ms"]
        what = "final" if one["finals"] >= 5 else "stream done (too few finals after the end of audio)"
        verdict = "meets" if final <= GOAL_FINAL_P95_MS else "misses"
        lines.append(
            f"- End of audio → {what} p95 at 1 stream: {final:.1f} ms "
            f"(goal ≤ {GOAL_FINAL_P95_MS:.0f} ms: {verdict} it)."
        )
    lines.append(
        f"- Most real-time streams with chunk p95 < {GOAL_CHUNK_P95_MS:.0f} ms: **{on}** with sequence "
        f"batching, **{off}** one request at a time"
        + (f" (**{on / off:.1f}×**)" if off else "")
        + f"; goal ≥ 64: {'met' if on >= 64 else 'missed'}."
    )
    lines += ["", "![latency](asr_latency.png)", ""]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repository", type=Path, default=Path("models"))
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--final-seconds", type=float, default=40.0, help="short-command run at 1 stream")
    parser.add_argument("--capacity", type=int, nargs="+", default=[4, 8, 24, 32, 48, 80, 96, 128, 192, 256])
    parser.add_argument("--log-dir", type=Path, default=Path(".run/bench"))
    parser.add_argument("--reports", type=Path, default=REPORTS, help="where the report files go")
    parser.add_argument(
        "--no-language-models",
        dest="language_models",
        action="store_false",
        help="finals decoded greedily, without the models' n-gram LMs (RIVULET_ASR_LANGUAGE_MODELS=false)",
    )
    parser.add_argument(
        "--lm-search",
        choices=("lexicon", "open"),
        default="lexicon",
        help="the LM search for finals (RIVULET_ASR_LM_SEARCH): lexicon (C++, the default) or open (Python)",
    )
    parser.add_argument("--note", default="", help="what model was measured (printed in the report)")
    args = parser.parse_args(argv)
    pcm_clips = clips()
    repository = args.repository.resolve()
    rows: list[dict] = []
    with contextlib.ExitStack() as stack:
        copy = stack.enter_context(repository_copy(repository, (MODEL,)))
        without_sequence_batching(copy)
        addresses = {
            "on": stack.enter_context(
                asr_stack(repository, args.log_dir / "asr-on", args.language_models, args.lm_search)
            ),
            "off": stack.enter_context(
                asr_stack(copy, args.log_dir / "asr-off", args.language_models, args.lm_search)
            ),
        }
        for address in addresses.values():
            asyncio.run(load(address, pcm_clips, 2, 3.0))  # warm up
        short = clips(sentences=1)
        for label, address in addresses.items():  # many ends of audio at 1 stream
            row = asyncio.run(load(address, short, 1, args.final_seconds))
            row.update(batching=label, phase="final@1")
            show(label, row)
            rows.append(row)
        rows += interleaved(addresses, pcm_clips, args.levels, args.capacity, args.seconds)
    lines = report_lines(rows, args)
    path = write_report_files("asr_latency", lines, rows, lambda path: plot(rows, path), args.reports)
    print(f"report: {path}")


if __name__ == "__main__":
    main()
