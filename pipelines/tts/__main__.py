"""`python -m pipelines.tts`: make tiny test models, export a FastPitch + HiFi-GAN pair to Triton.

    python -m pipelines.tts tiny --out DIR                      # DIR/fastpitch_tiny.nemo, hifigan_tiny.nemo
    python -m pipelines.tts export --fastpitch FP.nemo --hifigan HG.nemo --repository models \\
        [--name tts_fastpitch_hifigan] [--voice-name English-US-FastPitch] [--subvoice Female-1]
    python -m pipelines.tts tiny-model --repository DIR --cache-dir C   # both steps, cached (tests)
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.tts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    tiny = commands.add_parser("tiny", help="make small randomly-initialised .nemo files")
    tiny.add_argument("--out", type=Path, required=True)
    tiny.add_argument("--seed", type=int, default=0)
    export = commands.add_parser("export", help="export a .nemo pair into a Triton model repository")
    export.add_argument("--fastpitch", type=Path, required=True)
    export.add_argument("--hifigan", type=Path, required=True)
    export.add_argument("--repository", type=Path, required=True)
    export.add_argument("--name", default="tts_fastpitch_hifigan")
    export.add_argument("--voice-name", default="English-US-FastPitch")
    export.add_argument("--subvoice", default="Female-1")
    export.add_argument("--language-code", default="en-US")
    cached = commands.add_parser("tiny-model", help="tiny pair exported as tts_fastpitch_tiny (cached)")
    cached.add_argument("--repository", type=Path, required=True)
    cached.add_argument("--cache-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(message)s")

    if args.command == "tiny":
        from pipelines.tts.tiny import make_tiny

        for path in make_tiny(args.out, args.seed):
            print(path)
    elif args.command == "export":
        from pipelines.tts.export import export as run_export

        print(
            run_export(
                args.fastpitch,
                args.hifigan,
                args.repository,
                name=args.name,
                voice_name=args.voice_name,
                subvoice=args.subvoice,
                language_code=args.language_code,
            )
        )
    else:
        from pipelines.tts.cache import tiny_model

        print(tiny_model(args.repository, args.cache_dir))


if __name__ == "__main__":
    main()
