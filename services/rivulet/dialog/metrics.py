"""Prometheus metrics of the dialog service: per-stage turn latency, turns by action, speculations,
barge-ins."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from rivulet.core.metrics import LATENCY_BUCKETS

STAGE_LATENCY = Histogram(
    "rivulet_dialog_stage_duration_seconds",
    "Time per stage of a dialog turn: endpointing, asr_final, nlu, policy, tts_first_audio, total.",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
TURNS = Counter(
    "rivulet_dialog_turns_total", "Dialog turns, by input kind and reply action.", ["kind", "action"]
)
DEPENDENCY_ERRORS = Counter(
    "rivulet_dialog_dependency_errors_total",
    "Turns a dependency failed, by stage and status.",
    ["stage", "code"],
)
ASR_HINTED_CALLS = Counter(
    "rivulet_dialog_asr_hinted_calls_total",
    "ASR calls opened with hints of what the user will say (opened: at once; retuned: replacing a call "
    "that had heard no speech yet when the reply changed the hints).",
    ["how"],
)
SPECULATIONS = Counter(
    "rivulet_dialog_speculations_total",
    "Turns answered during the endpointing wait from an intermediate final (stability 1.0), by outcome: "
    "confirmed (the final said the same words: its reply was spoken), dropped (the words changed or no "
    "final came), late (the final took longer than the speculation waits).",
    ["outcome"],
)
BARGE_INS = Counter("rivulet_dialog_barge_ins_total", "Replies interrupted by the user.")
OPEN_CONVERSATIONS = Gauge("rivulet_dialog_open_conversations", "Converse streams open on this replica.")
TIMERS_FIRED = Counter(
    "rivulet_dialog_timers_fired_total", "Timers and alarms fired by this replica.", ["kind"]
)


def observe_latency(stages: dict[str, float]) -> None:
    """Record a turn's stage times (milliseconds; zero means the stage did not run)."""
    for stage, ms in stages.items():
        if ms > 0:
            STAGE_LATENCY.labels(stage).observe(ms / 1000.0)
