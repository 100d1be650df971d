"""When do the ASR's early final and final reach a client that ends turns like the dialog does?

    python -m bench.asr_early_final [--rounds 2] [--name asr_early_final]

The dialog asks the ASR for an early final (Riva's `stop_history_eou`, the dialog's
`dialog_early_final_ms`) so that it can understand a turn and synthesize its reply while the end-of-turn
silence (`dialog_stop_silence_ms`) is still awaited, and speak at once when the final agrees
(`rivulet.dialog.speculation`). That only pays when the early final comes before the dialog ends the
turn. This bench starts tritonserver with the ASR models and the ASR service, opens each call through
the dialog's own client (`rivulet.dialog.clients.AsrClient`, the dialog's default settings: the
early-final silence, the ASR's backstop endpoint, the Whisper window) and streams the dialog latency
bench's requests by its held-out synthetic voices in 20 ms chunks at real-time pace, half-closing the
call once the end-of-turn silence has been sent after the speech, as the dialog's VAD does. Per turn:
when the early final and the final arrived, from the end of the speech. Writes
bench/reports/<name>.{md,json,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import time
from pathlib import Path

import matplotlib
from tqdm import tqdm

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.dialog_latency import REQUESTS, pct
from bench.dialog_support import HELD_OUT_VOICES, MODELS, SpeechStack, compose_repository, user_speech
from bench.report_files import write_report_files
from rivulet.asr.settings import AsrSettings
from rivulet.core import audio
from rivulet.core.processes import ROOT
from rivulet.dialog.asr_listening import ASR_BACKSTOP_MS
from rivulet.dialog.clients import AsrClient
from rivulet.dialog.settings import DialogSettings

RATE = 16000
CHUNK_MS = 20


async def one_turn(client: AsrClient, settings: DialogSettings, text: str, voice: str) -> dict:
    """Stream one spoken request; times (ms) from the end of its speech."""
    pcm, speech_end_s = user_speech(text, voice)
    stop_ms = settings.dialog_stop_silence_ms
    stream = client.open(
        audio.LINEAR_PCM,
        RATE,
        "en-US",
        max(stop_ms, ASR_BACKSTOP_MS),
        0,
        word_times=False,
        early_final_ms=settings.dialog_early_final_ms,
    )
    step = RATE * 2 * CHUNK_MS // 1000
    cut = int((speech_end_s + stop_ms / 1000) * RATE) * 2
    marks: dict = {"text": text, "voice": voice}
    start = time.perf_counter()
    speech_end = start + speech_end_s

    async def send() -> None:
        for i in range(0, cut, step):
            await asyncio.sleep(max(0.0, start + i / (RATE * 2) - time.perf_counter()))
            stream.send(pcm[i : i + step])
        marks["closed_ms"] = (time.perf_counter() - speech_end) * 1000
        stream.close()

    sender = asyncio.create_task(send())
    async for response in stream.responses():
        for r in response.results:
            now = (time.perf_counter() - speech_end) * 1000
            words = r.alternatives[0].transcript if r.alternatives else ""
            if r.is_final:
                marks.setdefault("final_ms", now)
                marks.setdefault("final_text", words)
            elif r.stability >= 0.999 and words:
                marks.setdefault("early_ms", now)
    await sender
    return marks


def whisper_in_triton(url: str, model: str) -> dict:
    """Triton's own statistics of the Whisper model over the run: mean ms per request queued and
    computed (input, inference, output), and the requests and executions (batches)."""
    import tritonclient.grpc as grpcclient

    stats = grpcclient.InferenceServerClient(url).get_inference_statistics(model, as_json=True)
    entry = stats["model_stats"][0]
    inference = entry["inference_stats"]
    count = int(inference["success"]["count"]) or 1
    out = {
        k: int(inference[k]["ns"]) / count / 1e6
        for k in ("queue", "compute_input", "compute_infer", "compute_output")
    }
    out["requests"] = int(inference["success"]["count"])
    out["executions"] = int(entry.get("execution_count", 0))
    return out


async def run(args: argparse.Namespace) -> tuple[list[dict], DialogSettings, dict]:
    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    sources = {name: ROOT / "models" / name for name in (MODELS["asr"], MODELS["second_pass"])}
    repository = compose_repository(work / "repository", sources)
    settings = DialogSettings()
    stack = SpeechStack(work, repository, list(sources), "redis://127.0.0.1:6379/15", replicas=0)
    stack.start()
    try:
        client = AsrClient(
            stack.services["asr"].address,
            settings.dialog_asr_model,
            window_s=settings.dialog_asr_second_pass_window_s,
        )
        await one_turn(client, settings, REQUESTS[0], HELD_OUT_VOICES[0])  # warm-up, unmeasured
        jobs = [(t, v) for _ in range(args.rounds) for v in HELD_OUT_VOICES[: args.voices] for t in REQUESTS]
        turns = []
        for text, voice in tqdm(jobs, desc="turns", unit="turn"):
            turns.append(await one_turn(client, settings, text, voice))
        await client.close()
        return turns, settings, whisper_in_triton(stack.triton_url, MODELS["second_pass"])
    finally:
        stack.stop()


def report(turns: list[dict], settings: DialogSettings, triton: dict, name: str) -> Path:
    early = [t["early_ms"] for t in turns if "early_ms" in t]
    closed = [t["closed_ms"] for t in turns]
    final = [t["final_ms"] for t in turns if "final_ms" in t]
    in_time = sum(1 for t in turns if t.get("early_ms", float("inf")) < t["closed_ms"])
    after_close = [t["final_ms"] - t["closed_ms"] for t in turns if "final_ms" in t]
    load = os.getloadavg()[0]
    speculate_ms = AsrSettings().asr_second_pass_speculate_after_ms  # this environment's, as the ASR's
    rows = [
        ("early final (stability 1.0)", early),
        ("the dialog ends the turn (half-close)", closed),
        ("final", final),
        ("final after the half-close", after_close),
    ]
    lines = [
        "# The ASR's early final and final, as the dialog meets them",
        "",
        f"`python -m bench.asr_early_final`, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, the shared 2-core "
        f"CPU machine (load average {load:.1f} at the end). The dialog latency bench's "
        f"{len(REQUESTS)} requests by {len({t['voice'] for t in turns})} held-out synthetic voices, one "
        f"at a time, through the dialog's ASR client with its defaults: early final after "
        f"{settings.dialog_early_final_ms} ms of silence, the turn ended (half-close) after "
        f"{settings.dialog_stop_silence_ms} ms, Whisper window "
        f"{settings.dialog_asr_second_pass_window_s:g} s; no hints (as on a conversation's first turn).",
        "",
        "Times from the end of the speech (ms):",
        "",
        "| event | turns | p50 | p95 | max |",
        "|---|---|---|---|---|",
    ]
    for label, values in rows:
        top = round(max(values), 1) if values else float("nan")
        lines.append(
            f"| {label} | {len(values)} | {round(pct(values, 50), 1)} | {round(pct(values, 95), 1)} | {top} |"
        )
    lines += [
        "",
        f"**Early finals that arrived before the dialog ended the turn: {in_time} of {len(turns)}** "
        "(only those let the dialog answer during the endpointing wait). The ASR starts its Whisper pass "
        f"at {speculate_ms} ms of silence (`asr_second_pass_speculate_after_ms`); the early final follows "
        "the pass, so the pass's own time decides whether it beats the end of the turn.",
        "",
        f"Inside Triton (its statistics for `{MODELS['second_pass']}` over the run, warm-up included: "
        f"{triton['requests']} passes in {triton['executions']} executions), mean ms a pass: queued "
        f"{triton['queue']:.1f}, input {triton['compute_input']:.1f}, Whisper itself "
        f"{triton['compute_infer']:.1f}, output {triton['compute_output']:.1f}. The rest of a pass as the "
        "ASR service times it is the trip to Triton and back and waiting for a core.",
        "",
        "![timeline](" + name + ".png)",
        "",
    ]

    def plot(path: Path) -> None:
        fig, ax = plt.subplots(figsize=(8, 3.6))
        labels = [f"{label}\n{len(values)} of {len(turns)} turns" for label, values in rows[:3] if values]
        ax.boxplot([values for _, values in rows[:3] if values], orientation="horizontal", tick_labels=labels)
        ax.axvline(settings.dialog_stop_silence_ms, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("ms after the end of the speech")
        ax.set_title("Early final vs the dialog's end of turn")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

    data = {"turns": turns, "early_before_close": in_time, "load_average": load, "whisper_in_triton": triton}
    return write_report_files(name, lines, data, plot)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--voices", type=int, default=3, help="how many of the held-out voices")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".run" / "asr_early_final")
    parser.add_argument("--name", default="asr_early_final")
    args = parser.parse_args(argv)
    turns, settings, triton = asyncio.run(run(args))
    path = report(turns, settings, triton, args.name)
    print(path.read_text().split("![")[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
