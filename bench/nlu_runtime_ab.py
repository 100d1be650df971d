"""Two built intent models' serving runtime side by side, interleaved query by query, so that a busy
machine slows both alike (the service-level bench, bench/nlu_latency.py, runs them minutes apart).

    python -m bench.nlu_runtime_ab BEFORE_VERSION_DIR AFTER_VERSION_DIR [--rounds 3]

Each query of the SNIPS test set goes through `IntentSlotRuntime.analyze` (split, tokenize,
onnxruntime on one thread, decode, out-of-scope decision) of one model, then the other, in
alternating order. Writes bench/reports/nlu_runtime_ab.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipelines.nlu.corpus import load_corpus
from pipelines.nlu.runtime import intent_slot

REPORTS = Path(__file__).parent / "reports"


def interleaved_times(runtimes: dict, queries: list[str], rounds: int) -> dict[str, list[float]]:
    """ms per `analyze([query])` of each runtime, the runtimes alternating which goes first query by
    query (a busy machine slows both alike), after a 20-query warm-up."""
    for runtime in runtimes.values():
        runtime.analyze(queries[:20])
    times: dict[str, list[float]] = {name: [] for name in runtimes}
    steps = [(r, i, q) for r in range(rounds) for i, q in enumerate(queries)]
    for round_, i, query in tqdm(steps, desc="timing", unit="query"):
        order = list(runtimes) if (i + round_) % 2 == 0 else list(reversed(runtimes))
        for name in order:
            start = time.perf_counter()
            runtimes[name].analyze([query])
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runtimes = {
        name: intent_slot().IntentSlotRuntime(str(path), intra_op_num_threads=1)
        for name, path in (("before", args.before), ("after", args.after))
    }
    queries = [" ".join(e.words) for e in load_corpus("assistant").test["snips"]]
    times = interleaved_times(runtimes, queries, args.rounds)
    lines = [
        "# NLU serving runtime, before and after (interleaved)",
        "",
        f"`python -m bench.nlu_runtime_ab {args.before} {args.after} --rounds {args.rounds}`: "
        f"{len(queries)} SNIPS test queries × {args.rounds} rounds, one `IntentSlotRuntime.analyze` call "
        "each (1 onnxruntime thread), the two models alternating query by query on a shared machine.",
        "",
        "| model | intents | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for name, values in times.items():
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        intents = len(runtimes[name].intents)
        lines.append(f"| {name} | {intents} | {p50:.2f} | {p95:.2f} | {p99:.2f} |")
        print(f"{name}: {intents} intents, p50 {p50:.2f} ms, p95 {p95:.2f} ms, p99 {p99:.2f} ms")
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "nlu_runtime_ab.md").write_text("\n".join(lines) + "\n")
    print(f"report: {REPORTS / 'nlu_runtime_ab.md'}")


if __name__ == "__main__":
    main()
