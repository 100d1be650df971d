"""`python -m bench.fuzz [--examples N]`: the hostile-input tests (tests/integration/security/test_fuzz.py)
with the long `bench` profile (500 generated requests per RPC by default, random seeds), then a
markdown report of what every RPC answered: bench/reports/fuzz.md (+ fuzz.json).

The CI profile of the same tests runs in `make test` (30 examples per RPC, fixed seeds)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "bench" / "reports"


def markdown(data: dict, examples: int, seconds: float, exit_code: int) -> str:
    lines = [
        "# Fuzzing: hostile input against the real ASR and TTS",
        "",
        f"`python -m bench.fuzz --examples {examples}`: {seconds / 60:.1f} min, pytest exit {exit_code}. "
        "Services over TLS with an API key, on the committed models; a well-formed stream runs alongside the "
        "audio corpus and the hostile texts and must end without error.",
        "",
        "| RPC (cases) | answers |",
        "|---|---|",
    ]
    for rpc, codes in data["outcomes"].items():
        total = sum(codes.values())
        answers = ", ".join(f"{code} {count}" for code, count in sorted(codes.items(), key=lambda kv: -kv[1]))
        lines.append(f"| {rpc} ({total}) | {answers} |")
    lines += ["", f"Server failures (INTERNAL, UNKNOWN, UNAVAILABLE, DEADLINE_EXCEEDED, no message): "
              f"{len(data['failures'])}"]  # fmt: skip
    lines += [f"- {failure}" for failure in data["failures"][:50]]
    lines += ["", "## What the statuses said (most common openings of the messages)", ""]
    for key, messages in data.get("messages", {}).items():
        said = "; ".join(f"“{text}…” ×{count}" for text, count in list(messages.items())[:4])
        lines.append(f"- **{key}**: {said}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=500, help="generated requests per fuzzed RPC")
    parser.add_argument("--out", type=Path, default=REPORTS / "fuzz.md")
    args = parser.parse_args(argv)
    report_json = args.out.with_suffix(".json")
    env = dict(os.environ, RIVULET_FUZZ_PROFILE="bench", RIVULET_FUZZ_EXAMPLES=str(args.examples),
               RIVULET_FUZZ_REPORT=str(report_json), PYTHONPATH=f"{ROOT / 'services'}:{ROOT}")  # fmt: skip
    started = time.monotonic()
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/integration/security/test_fuzz.py",
    ]
    code = subprocess.run(command, cwd=ROOT, env=env).returncode
    data = json.loads(report_json.read_text())
    args.out.write_text(markdown(data, args.examples, time.monotonic() - started, code))
    print(args.out.read_text())
    return code


if __name__ == "__main__":
    sys.exit(main())
