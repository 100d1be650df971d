"""The streaming ASR model pipeline.

`python -m pipelines.asr build|data|finetune|import-nemo|lm|tune-lm|report`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from pipelines.asr.paths import cache_dir


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipelines.asr", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="speech data, training, ONNX export, parity, Triton model")
    build.add_argument("--profile", choices=("full", "quick"), default="full")
    build.add_argument("--repository", type=Path, required=True, help="Triton model repository directory")
    build.add_argument("--cache-dir", type=Path, default=cache_dir(), help="cache (default %(default)s)")
    build.add_argument("--workers", type=int, default=2, help="speech generation processes")
    build.add_argument("--no-report", action="store_true", help="do not write bench/reports/asr_train.md")
    gen = commands.add_parser("data", help="only make the profile's speech data (prints its directory)")
    gen.add_argument("--profile", choices=("full", "quick"), default="full")
    gen.add_argument("--cache-dir", type=Path, default=cache_dir())
    gen.add_argument("--workers", type=int, default=2)
    imp = commands.add_parser("import-nemo", help="a NeMo streaming (Fast)Conformer CTC .nemo → Triton model")
    imp.add_argument("--checkpoint", type=Path, required=True, help="the .nemo file")
    imp.add_argument("--repository", type=Path, required=True)
    imp.add_argument("--model-name", default="asr_streaming")
    imp.add_argument(
        "--att-context-size", help="JSON [left, right] to pick one of a multi-lookahead model's contexts"
    )
    lm = commands.add_parser("lm", help="build the domain n-gram LM into a model and name it in config.pbtxt")
    lm.add_argument("--repository", type=Path, required=True)
    lm.add_argument("--model-name", default="asr_streaming")
    tune = commands.add_parser("tune-lm", help="tune the LM fusion weights on a development set")
    tune.add_argument("--repository", type=Path, required=True)
    tune.add_argument("--model-name", default="asr_streaming")
    tune.add_argument("--cache-dir", type=Path, default=cache_dir())
    tune_real = commands.add_parser(
        "finetune", help="a built model further trained on real voices (dev speakers) mixed with synthetic"
    )
    tune_real.add_argument("--source", type=Path, default=Path("models"), help="repository holding the model")
    tune_real.add_argument("--repository", type=Path, required=True, help="where the result goes")
    tune_real.add_argument("--model-name", default="asr_streaming")
    tune_real.add_argument("--cache-dir", type=Path, default=cache_dir())
    tune_real.add_argument("--workers", type=int, default=2)
    report = commands.add_parser("report", help="write bench/reports/asr_train.md from a built model")
    report.add_argument("--repository", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # sleep, don't spin, on a shared 2-core machine
    args = parse_args(argv)
    if args.command == "data":
        from pipelines.asr import data

        print(data.generate(data.PROFILES[args.profile], args.cache_dir, workers=args.workers))
        return 0
    if args.command == "build":
        from pipelines.asr.build import build
        from pipelines.asr.domain_lm import build as build_lm

        model_dir = build(args.profile, args.repository, args.cache_dir, workers=args.workers)
        print(json.dumps(build_lm(model_dir)))
        if args.profile == "full" and not args.no_report:
            from pipelines.asr.report import write_train_report

            print(write_train_report(model_dir))
        print(model_dir)
        return 0
    if args.command == "import-nemo":
        from pipelines.asr.import_nemo import import_nemo

        context = json.loads(args.att_context_size) if args.att_context_size else None
        print(import_nemo(args.checkpoint, args.repository, args.model_name, context))
        return 0
    if args.command == "finetune":
        from pipelines.asr.domain_lm import build as build_lm
        from pipelines.asr.finetune import finetune
        from pipelines.asr.tune_lm import tune

        model_dir = finetune(args.source / args.model_name, args.repository, args.cache_dir, args.workers)
        print(json.dumps(build_lm(model_dir)))
        print(json.dumps(tune(model_dir, args.cache_dir), indent=1))
        print(model_dir)
        return 0
    if args.command == "lm":
        from pipelines.asr.domain_lm import build as build_lm

        print(json.dumps(build_lm(args.repository / args.model_name), indent=1))
        return 0
    if args.command == "tune-lm":
        from pipelines.asr.tune_lm import tune

        print(json.dumps(tune(args.repository / args.model_name, args.cache_dir), indent=1))
        return 0
    if args.command == "report":
        from pipelines.asr.report import write_train_report

        print(write_train_report(args.repository / "asr_streaming"))
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    raise SystemExit(main())
