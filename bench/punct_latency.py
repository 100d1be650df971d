"""PunctuateText latency through the NLU service + Triton, with and without dynamic batching, beside
the punctuation model's held-out accuracy (per-mark and per-case F1 from its build).

    python -m bench.punct_latency [--repository models] [--seconds 10] [--concurrency 1 4 16]
        [--report punct_latency]

Closed-loop load (bench.nlu_latency's loop): N concurrent callers each send the next held-out
fortune text of the model's test split, lower-cased and without punctuation (as an ASR writes it),
as soon as their previous answer arrives. `--repository` must hold built `intent_assistant` (the
NLU service's readiness needs its default model) and `punct_capit_en`; only those two are served.
Client, service and Triton share this machine's cores: quote medians and ratios. Writes
bench/reports/punct_latency.{md,png,json} (`--report NAME`: NAME.{md,png,json}).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from bench.local_stack import repository_copy
from bench.nlu_latency import latency_lines, plot, run_all, without_dynamic_batching
from bench.report_files import write_report_files
from pipelines.nlu.latency import time_calls
from pipelines.punct.corpus import load_corpus
from pipelines.punct.runtime import punct_capit
from pipelines.punct.triton_config import MODEL_NAME

MODELS = ("intent_assistant", MODEL_NAME)
ASR_LIKE = "i think so but i am not sure where we parked the car last night"  # 14 words


def queries(window_words: int) -> list[str]:
    return [" ".join(e.words) for e in load_corpus(window_words).test]


def accuracy_lines(build: dict) -> list[str]:
    test = build["metrics"]["test"]
    lines = [
        f"Model: `{build['model']}`, profile `{build['profile']}`, build `{build['key']}`: the first "
        f"{build['recipe']['encoder_layers']} layers of all-MiniLM-L6-v2, "
        f"{build['history']['train_examples']} training examples, {build['timings']['train_s']:.0f} s "
        f"of training ({build['history']['accelerator']}).",
        "",
        f"Held-out test text ({test['words']} words of whole fortune entries never trained on), "
        "scored per word through the exported ONNX and the serving runtime:",
        "",
        "| label | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for kind, names in (("punct", {",": "comma", ".": "full stop", "?": "question mark"}),
                        ("capit", {"U": "capital first letter", "A": "all capitals"})):  # fmt: skip
        for label, name in names.items():
            m = test[kind][label]
            scores = " | ".join(f"{m[k]:.3f}" for k in ("precision", "recall", "f1"))
            lines.append(f"| {name} `{label}` | {scores} | {m['support']} |")
    return lines


def runtime_latency(version_dir: Path) -> dict:
    """The model alone (punct_capit.py + onnxruntime, one thread, in this process) on one 14-word text."""
    runtime = punct_capit().PunctCapitRuntime(str(version_dir), intra_op_num_threads=1)
    return {"text": ASR_LIKE, **time_calls(lambda: runtime.punctuate([ASR_LIKE]))}


def report_lines(rows: list[dict], build: dict, alone: dict, args) -> list[str]:
    lines = [
        "# Punctuation and capitalization: accuracy and PunctuateText latency",
        "",
        *accuracy_lines(build),
        "",
        "## Latency",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), shared with other work while measured; "
        "client, NLU service and tritonserver on the same machine. Closed-loop callers send one held-out "
        f"text per PunctuateText request (lower-cased, no punctuation); {args.seconds:.0f} s measured per "
        f"level after {args.warmup:.0f} s warm-up. Reproduce: `python -m bench.punct_latency --repository "
        f"DIR --seconds {args.seconds:.0f} --report {args.report}`.",
        "",
        *latency_lines(rows),
        "",
        f"The model alone (split, tokenize, ONNX, rewrite; one onnxruntime thread, no gRPC or Triton), "
        f'{alone["runs"]} calls on "{alone["text"]}": median {alone["median_ms"]:.2f} ms, '
        f"p95 {alone['p95_ms']:.2f} ms.",
    ]
    lines += ["", f"![latency and throughput]({args.report}.png)", ""]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repository", type=Path, default=Path("models"))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--log-dir", type=Path, default=Path(".run/bench"))
    parser.add_argument("--report", default="punct_latency", help="report file name in bench/reports")
    args = parser.parse_args(argv)
    repository = args.repository.resolve()
    version_dir = repository / MODEL_NAME / "1"
    build = json.loads((version_dir / "build.json").read_text())
    texts = queries(json.loads((version_dir / "labels.json").read_text())["window_words"])
    alone = runtime_latency(version_dir)
    rows = []
    with repository_copy(repository, MODELS) as served:
        rows += run_all(served, texts, args.concurrency, args.seconds, args.warmup, args.log_dir / "punct",
                        "on", "PunctuateText", MODELS)  # fmt: skip
        without_dynamic_batching(served, MODEL_NAME)
        rows += run_all(served, texts, args.concurrency, args.seconds, args.warmup, args.log_dir / "punct",
                        "off", "PunctuateText", MODELS)  # fmt: skip
    title = "Rivulet PunctuateText through gRPC + Triton (shared 2-core CPU)"
    path = write_report_files(
        args.report,
        report_lines(rows, build, alone, args),
        {"build": build["key"], "alone": alone, "rows": rows},
        lambda path: plot(rows, path, "PunctuateText", title, goal_ms=None),
    )
    print(f"report: {path}")


if __name__ == "__main__":
    main()
