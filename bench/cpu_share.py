"""Where a machine's CPU went during a bench: the cores each group of processes used, from psutil's
per-process CPU times (user + system) at the start and at the end of a measured stretch.

    usage = CpuShare()            # at the start
    ...
    usage.cores()                 # {"browser": 0.9, "triton": 0.6, ...}: cores used on average since
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import psutil

# (group, what a process's name or command line holds), first match wins
GROUPS = (
    ("browser", ("chrom", "firefox", "headless_shell")),
    # Triton's python-backend stubs of the two ASR models, told apart by their model.py's path
    ("asr_whisper", ("asr_whisper/",)),
    ("asr_streaming", ("asr_streaming/",)),
    ("triton", ("tritonserver", "triton_python_backend_stub")),
    ("gateway", ("rivulet.gateway",)),
    ("dialog", ("rivulet.dialog",)),
    ("asr", ("rivulet.asr",)),
    ("nlu", ("rivulet.nlu",)),
    ("tts", ("rivulet.tts",)),
    ("redis", ("redis-server",)),
    ("bench", ("playwright",)),  # the browser's driver: the bench's
)
BENCH = "bench"  # this process and its threads (the clients of the bench)


def _group(proc: psutil.Process) -> str:
    if proc.pid == os.getpid():
        return BENCH
    try:
        text = f"{proc.name()} {' '.join(proc.cmdline()[:4])}"
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "other"
    for group, marks in GROUPS:
        if any(mark in text for mark in marks):
            return group
    return "other"


def _snapshot() -> dict[tuple[int, float], tuple[str, float]]:
    out = {}
    for proc in psutil.process_iter():
        try:
            times = proc.cpu_times()
            out[(proc.pid, proc.create_time())] = (_group(proc), times.user + times.system)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return out


class CpuShare:
    """CPU used by each group of processes since it was made (a process started since counts whole;
    one that ended since is lost: measure stretches in which the stack keeps running)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.before = _snapshot()

    def cores(self) -> dict[str, float]:
        """Cores each group used on average since the start (1.0: one core all the time), and
        `machine`: the cores the machine has."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        used: dict[str, float] = {}
        for key, (group, seconds) in _snapshot().items():
            previous = self.before.get(key, (group, 0.0))[1]
            used[group] = used.get(group, 0.0) + max(seconds - previous, 0.0)
        shares = {g: round(s / elapsed, 2) for g, s in sorted(used.items(), key=lambda kv: -kv[1])}
        return {**shares, "machine": float(psutil.cpu_count() or 0)}


def table_lines(
    rows: Sequence[tuple[Sequence[object], dict[str, float]]], key_headers: Sequence[str]
) -> list[str]:
    """A markdown table of the cores each group used: a row per (its key cells, a `CpuShare.cores()`
    result), with their sum and what was left idle; no lines when nothing was measured."""
    groups = sorted({g for _, cpu in rows for g in cpu if g != "machine"})
    if not groups:
        return []
    lines = [
        "| " + " | ".join([*key_headers, *groups, "all", "idle"]) + " |",
        "|" + "---|" * (len(key_headers) + len(groups) + 2),
    ]
    for keys, cpu in rows:
        used = [cpu.get(g, 0.0) for g in groups]
        idle = max(cpu.get("machine", 0.0) - sum(used), 0.0)
        cells = [*map(str, keys), *(f"{u:.2f}" for u in used), f"{sum(used):.2f}", f"{idle:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
