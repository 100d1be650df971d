"""The bench reports' three files (bench.report_files), written as bench.punct_latency and
bench.nlu_latency write them: markdown linking its figure by the report's name, JSON, PNG."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

from bench.nlu_latency import plot
from bench.punct_latency import report_lines
from bench.report_files import write_report_files

ROWS = [
    {"batching": b, "concurrency": c, "requests": 10, "errors": 0, "rps": r,
     "p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 12.0}
    for b, r in (("on", 300.0), ("off", 200.0)) for c in (1, 4)
]  # fmt: skip
SCORES = {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 3}
BUILD = {
    "model": "punct_capit_en",
    "profile": "quick",
    "key": "k1",
    "recipe": {"encoder_layers": 2},
    "history": {"train_examples": 400, "accelerator": "cpu"},
    "timings": {"train_s": 20.0},
    "metrics": {
        "test": {
            "words": 100,
            "punct": {m: SCORES for m in (",", ".", "?")},
            "capit": {c: SCORES for c in ("U", "A")},
        }
    },
}


def test_a_named_report_writes_markdown_json_and_the_figure_it_links(tmp_path: Path) -> None:
    args = Namespace(seconds=10.0, warmup=2.0, report="punct_latency_quick")
    alone = {"text": "a b", "runs": 5, "median_ms": 1.0, "p95_ms": 2.0}
    data = {"build": "k1", "alone": alone, "rows": ROWS}
    markdown = write_report_files(
        args.report, report_lines(ROWS, BUILD, alone, args), data, lambda path: plot(ROWS, path), tmp_path
    )
    assert markdown == tmp_path / "punct_latency_quick.md"
    text = markdown.read_text()
    assert "![latency and throughput](punct_latency_quick.png)" in text
    assert "--report punct_latency_quick" in text and "| on | 4 | 5.00 |" in text
    assert "concurrency 4: **1.50×**" in text
    assert json.loads((tmp_path / "punct_latency_quick.json").read_text()) == data
    assert (tmp_path / "punct_latency_quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
