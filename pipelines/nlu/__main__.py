"""`python -m pipelines.nlu build|evaluate ...`: the joint intent + slot model pipeline."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pipelines.build_args import add_build_arguments
from pipelines.nlu.corpus import DATASETS, MODEL_NAMES
from pipelines.nlu.paths import default_cache_dir


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipelines.nlu", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="train, export ONNX, write the Triton model, evaluate, report")
    build.add_argument("--dataset", choices=DATASETS, required=True)
    add_build_arguments(build, default_cache_dir())
    build.add_argument(
        "--no-report", action="store_true", help="do not write the training report nlu_train_<dataset>.md"
    )
    build.add_argument(
        "--report-dir",
        type=Path,
        default=Path(".run/reports"),
        help="where the training report goes (default %(default)s; bench/reports publishes it)",
    )
    report = commands.add_parser("report", help="re-render the training report from a build's build.json")
    report.add_argument("--repository", type=Path, required=True)
    report.add_argument("--dataset", choices=DATASETS, required=True)
    report.add_argument("--latency", action="store_true", help="(re)measure single-query latency first")
    evaluate = commands.add_parser("evaluate", help="score a built model with intent_slot.py")
    evaluate.add_argument("--repository", type=Path, required=True)
    evaluate.add_argument("--dataset", choices=DATASETS, required=True)
    evaluate.add_argument("--split", choices=("train", "dev", "test"), default="test")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    # Sleep rather than spin while waiting for work: on a shared 2-core machine two spinning
    # OpenMP pools (a training next to a test build) slow each other down many times over.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = parse_args(argv)
    if args.command == "build":
        from pipelines.nlu.build import build

        build(
            args.dataset,
            args.profile,
            args.repository,
            None if args.no_cache else args.cache_dir,
            args.encoder,
            write_report=False if args.no_report else None,
            report_dir=args.report_dir,
        )
        return 0

    if args.command == "report":
        return write_report_command(
            args.repository / MODEL_NAMES[args.dataset] / "1", args.dataset, args.latency
        )

    from pipelines.nlu.corpus import load_corpus
    from pipelines.nlu.evaluate import evaluate_sets

    version_dir = args.repository / MODEL_NAMES[args.dataset] / "1"
    corpus = load_corpus(args.dataset)
    metrics = evaluate_sets(version_dir, getattr(corpus, args.split), args.split)
    for name, m in metrics.items():
        print(
            f"{args.split} {name} ({m['count']}): intent acc {100 * m['intent_accuracy']:.2f}  "
            f"slot F1 {100 * m['slot_f1']:.2f}  sentence acc {100 * m['sentence_accuracy']:.2f}"
        )
    print(
        json.dumps(
            {k: {m: v for m, v in d.items() if m != "per_intent"} for k, d in metrics.items()}, indent=1
        )
    )
    return 0


def write_report_command(version_dir: Path, dataset: str, latency: bool) -> int:
    from pipelines.nlu.latency import measure_latency
    from pipelines.nlu.paths import REPORTS_DIR
    from pipelines.nlu.report import write_report

    info = json.loads((version_dir / "build.json").read_text())
    if latency or "latency" not in info:
        info["latency"] = measure_latency(version_dir)
        print(
            f"==> latency: median {info['latency']['median_ms']:.2f} ms over {info['latency']['runs']} runs"
        )
        staged = version_dir / "build.json.tmp"
        staged.write_text(json.dumps(info, indent=1) + "\n")
        staged.replace(version_dir / "build.json")  # a new file: never write through a cache hard link
    path = write_report(info, REPORTS_DIR / f"nlu_train_{dataset}.md")
    print(f"==> report written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
