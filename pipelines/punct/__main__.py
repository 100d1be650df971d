"""`python -m pipelines.punct build|evaluate ...`: the punctuation + capitalization model pipeline."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pipelines.build_args import add_build_arguments
from pipelines.punct.build import default_cache_dir
from pipelines.punct.triton_config import MODEL_NAME


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipelines.punct", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="train, export ONNX, write the Triton model, evaluate")
    add_build_arguments(build, default_cache_dir())
    evaluate = commands.add_parser("evaluate", help="score a built model on the held-out test text")
    evaluate.add_argument("--repository", type=Path, required=True)
    evaluate.add_argument("--split", choices=("dev", "test"), default="test")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = parse_args(argv)
    if args.command == "build":
        from pipelines.punct.build import build

        build(args.profile, args.repository, None if args.no_cache else args.cache_dir, args.encoder)
        return 0
    from pipelines.punct.corpus import load_corpus
    from pipelines.punct.evaluate import evaluate

    version_dir = args.repository / MODEL_NAME / "1"
    labels = json.loads((version_dir / "labels.json").read_text())
    metrics = evaluate(version_dir, getattr(load_corpus(labels["window_words"]), args.split))
    print(json.dumps(metrics, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
