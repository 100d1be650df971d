"""The command-line options every encoder-based model build shares (pipelines.nlu, pipelines.punct)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_build_arguments(parser: argparse.ArgumentParser, default_cache_dir: Path) -> None:
    """--profile, --repository, --cache-dir, --no-cache and --encoder."""
    parser.add_argument(
        "--profile",
        choices=("full", "quick", "auto"),
        default="full",
        help="auto: full if already built or cached, else quick (make run's first answer in minutes)",
    )
    parser.add_argument("--repository", type=Path, required=True, help="Triton model repository directory")
    parser.add_argument(
        "--cache-dir", type=Path, default=default_cache_dir, help="build cache (default %(default)s)"
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the build cache")
    parser.add_argument(
        "--encoder", type=Path, help="a Hugging Face BERT-like directory (default all-MiniLM-L6-v2)"
    )
