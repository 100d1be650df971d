"""Counts of what each fuzzed RPC answered, written as a report when RIVULET_FUZZ_REPORT names a file
(bench/fuzz.py does), and the rule every answer must follow: a precise status, never a server error."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import grpc

# Codes that mean the server failed rather than judged the request: never acceptable for bad input.
SERVER_FAILURES = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS,
}

OUTCOMES: Counter[tuple[str, str]] = Counter()
FAILURES: list[str] = []
MESSAGES: dict[tuple[str, str], Counter[str]] = {}  # what each status said, by its first words


def record(rpc: str, code: grpc.StatusCode, details: str, case: str) -> None:
    """Count one answer; a server failure (or an error without a message) is kept for the assertion."""
    OUTCOMES[(rpc, code.name)] += 1
    if details:
        MESSAGES.setdefault((rpc, code.name), Counter())[" ".join(details.split()[:6])] += 1
    if code in SERVER_FAILURES or (code != grpc.StatusCode.OK and not details.strip()):
        FAILURES.append(f"{rpc} {code.name} {details!r} for {case}")


def summary() -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for (rpc, code), count in sorted(OUTCOMES.items()):
        table.setdefault(rpc, {})[code] = count
    return table


def write_report() -> None:
    target = os.environ.get("RIVULET_FUZZ_REPORT")
    if target and OUTCOMES:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        messages = {
            f"{rpc} {code}": dict(counter.most_common(8)) for (rpc, code), counter in sorted(MESSAGES.items())
        }
        document = {"outcomes": summary(), "failures": FAILURES, "messages": messages}
        Path(target).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
