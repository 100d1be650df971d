"""AnalyzeIntent latency and throughput through the NLU service, and the gain of dynamic batching.

    python -m bench.nlu_latency [--repository models] [--seconds 15] [--concurrency 1 8 32]

Closed-loop load: N concurrent callers each send the next SNIPS test utterance as soon as their
previous answer arrives, for a fixed time after a warm-up. Run once with the model as configured
(Triton dynamic batching on) and once from a copy whose config.pbtxt drops `dynamic_batching`
(one request per model execution), same load. Client, service and Triton share this machine's
cores, so quote medians and ratios. Writes bench/reports/nlu_latency.{md,png,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import time
from pathlib import Path

import grpc
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from riva.client.proto import riva_nlp_pb2 as rnlp
from riva.client.proto import riva_nlp_pb2_grpc

from bench.local_stack import nlu_stack, repository_copy
from bench.report_files import write_report_files
from pipelines.nlu.corpus import load_corpus

MODEL = "intent_assistant"
# One request per query, per RPC measured (bench.punct_latency measures PunctuateText with this loop).
REQUESTS = {
    "AnalyzeIntent": lambda query: rnlp.AnalyzeIntentRequest(query=query),
    "PunctuateText": lambda query: rnlp.TextTransformRequest(text=[query]),
}


async def load(
    address: str,
    queries: list[str],
    concurrency: int,
    seconds: float,
    warmup: float,
    method: str = "AnalyzeIntent",
) -> dict:
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(address) as channel:
        stub = riva_nlp_pb2_grpc.RivaLanguageUnderstandingStub(channel)
        start = time.perf_counter()
        measure_from, stop_at = start + warmup, start + warmup + seconds

        async def caller(worker: int) -> None:
            nonlocal errors
            i = worker
            while (now := time.perf_counter()) < stop_at:
                request = REQUESTS[method](queries[i % len(queries)])
                i += concurrency
                try:
                    await getattr(stub, method)(request, timeout=10)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                if now >= measure_from:
                    latencies.append(time.perf_counter() - now)

        await asyncio.gather(*(caller(w) for w in range(concurrency)))
    ms = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / seconds,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def without_dynamic_batching(repository: Path, model: str = MODEL) -> None:
    config = repository / model / "config.pbtxt"
    text, n = re.subn(r"dynamic_batching\s*\{[^}]*\}", "", config.read_text())
    if n != 1:
        raise RuntimeError(f"{config} has no dynamic_batching block to remove")
    config.unlink()  # the copy hard-links its files: never write through to the original
    config.write_text(text)


def run_all(
    repository: Path,
    queries,
    levels,
    seconds,
    warmup,
    log_dir: Path,
    label: str,
    method: str = "AnalyzeIntent",
    models: tuple[str, ...] = (MODEL,),
) -> list[dict]:
    """Closed-loop `method` calls at each concurrency level against a fresh Triton + NLU service."""
    rows = []
    with nlu_stack(repository, log_dir / label, models) as address:
        asyncio.run(load(address, queries, 4, 2.0, 0.0, method))  # warm Triton and the service
        for c in levels:
            row = asyncio.run(load(address, queries, c, seconds, warmup, method))
            row["batching"] = label
            print(
                f"[{label:3s}] concurrency {c:3d}: p50 {row['p50_ms']:6.2f} ms  "
                f"p95 {row['p95_ms']:6.2f} ms  "
                f"p99 {row['p99_ms']:6.2f} ms  {row['rps']:7.1f} req/s  errors {row['errors']}",
                flush=True,
            )
            rows.append(row)
    return rows


def plot(
    rows: list[dict],
    out: Path,
    method: str = "AnalyzeIntent",
    title: str = "Rivulet NLU through gRPC + Triton (2-core CPU)",
    goal_ms: float | None = 15,
) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, marker in (("on", "o"), ("off", "s")):
        sub = [r for r in rows if r["batching"] == label]
        c = [r["concurrency"] for r in sub]
        ax1.plot(c, [r["p95_ms"] for r in sub], marker=marker, label=f"p95, batching {label}")
        ax1.plot(c, [r["p50_ms"] for r in sub], marker=marker, linestyle="--", label=f"p50, batching {label}")
        ax2.plot(c, [r["rps"] for r in sub], marker=marker, label=f"batching {label}")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent callers")
        ax.legend()
        ax.grid(alpha=0.3)
    if goal_ms is not None:
        ax1.axhline(goal_ms, color="red", linewidth=0.8, linestyle=":")
    ax1.set_ylabel(f"{method} latency (ms)")
    ax2.set_ylabel("requests / s")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def latency_lines(rows: list[dict]) -> list[str]:
    """The markdown latency table of `rows` and the throughput gain of dynamic batching per level."""
    on = {r["concurrency"]: r for r in rows if r["batching"] == "on"}
    off = {r["concurrency"]: r for r in rows if r["batching"] == "off"}
    lines = [
        "| batching | concurrency | p50 ms | p95 ms | p99 ms | req/s | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['batching']} | {r['concurrency']} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['rps']:.1f} | {r['errors']} |"
        )
    lines += ["", "Throughput gain of Triton dynamic batching (same load, req/s on ÷ off):", ""]
    for c in sorted(set(on) & set(off)):
        lines.append(f"- concurrency {c}: **{on[c]['rps'] / off[c]['rps']:.2f}×**")
    return lines


def report_lines(rows: list[dict], args) -> list[str]:
    on = {r["concurrency"]: r for r in rows if r["batching"] == "on"}
    lines = [
        "# NLU AnalyzeIntent latency and throughput",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}); client, NLU service and",
        "tritonserver on the same machine. Closed-loop callers sending SNIPS test utterances through",
        f"gRPC; {args.seconds:.0f} s measured per level after {args.warmup:.0f} s warm-up.",
        f"Model repository: `{args.repository}`. Reproduce: `python -m bench.nlu_latency --seconds "
        f"{args.seconds:.0f} --repository {args.repository} --report {args.report}`.",
        "",
        *latency_lines(rows),
    ]
    if 1 in on:
        verdict = "meets" if on[1]["p95_ms"] <= 15 else "misses"
        lines += ["", f"Goal p95 ≤ 15 ms at concurrency 1: {on[1]['p95_ms']:.2f} ms ({verdict} it)."]
    lines += ["", f"![latency and throughput]({args.report}.png)", ""]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repository", type=Path, default=Path("models"))
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--log-dir", type=Path, default=Path(".run/bench"))
    parser.add_argument("--report", default="nlu_latency", help="report file name in bench/reports")
    args = parser.parse_args(argv)
    queries = [" ".join(e.words) for e in load_corpus("assistant").test["snips"]]
    repository = args.repository.resolve()
    rows = run_all(repository, queries, args.concurrency, args.seconds, args.warmup, args.log_dir, "on")
    with repository_copy(repository, (MODEL,)) as copy:
        without_dynamic_batching(copy)
        rows += run_all(copy, queries, args.concurrency, args.seconds, args.warmup, args.log_dir, "off")
    path = write_report_files(args.report, report_lines(rows, args), rows, lambda path: plot(rows, path))
    print(f"report: {path}")


if __name__ == "__main__":
    main()
