"""End of user speech → first reply audio at the client, through the real voice stack.

    python -m bench.dialog_latency                      # voice turns (needs a trained asr_streaming)
    python -m bench.dialog_latency --mode text          # typed turns: text sent → first reply audio

Starts tritonserver (NLU, ASR, TTS models), the NLU, ASR and TTS services, Redis and the dialog
service as processes, then runs 1, 4 and 16 concurrent conversations. Each conversation speaks short
requests (synthesized by voices the ASR never heard before each level starts, so that the client's
synthesis does not load the machine; sent in 40 ms chunks paced like a microphone), waits for the
whole reply, pauses, and speaks again. Per turn the client measures the time from the moment the
user fell silent to the first reply audio chunk; the server's breakdown (endpointing wait, ASR
final, NLU, policy + Redis, TTS first audio) comes from the turn's latency message. Also measured:
barge-in (interrupting a long reply) → the server's BARGE_IN and the last reply audio.
Writes bench/reports/dialog_latency.{md,json,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import shutil
import sys
import time
import uuid
from functools import cache, partial
from pathlib import Path

import numpy as np

from bench.dialog_support import (
    HELD_OUT_VOICES,
    MODELS,
    SpeechStack,
    Turn,
    VoiceClient,
    compose_repository,
    find_model,
    open_meteo_server,
    user_speech,
)
from bench.dialog_task_success import NLU_REPOSITORY_HELP, nlu_source
from bench.report_files import command_line, write_report_files
from rivulet.core.processes import ROOT, start_redis_server
from rivulet.dialog.v1 import dialog_pb2 as pb

REQUESTS = [
    "what time is it",
    "add milk to my shopping list",
    "turn on the kitchen lights",
    "set a timer for ten minutes",
    "what is the weather in paris",
    "hello",
    "what is on my shopping list",
    "turn off the kitchen lights",
]
STAGES = ("endpointing_ms", "asr_final_ms", "nlu_ms", "policy_ms", "tts_first_audio_ms", "total_ms")
GOAL_MS = 300.0


def pct(values: list[float], q: float) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.percentile(values, q)) if values else float("nan")


def final_at_client(turn: Turn) -> float:
    """End of user speech → the turn's final transcript at the client (what the ASR side takes)."""
    for r in turn.messages:
        if r.kind == "transcript" and r.message.transcript.is_final:
            return (r.t - turn.speech_end) * 1000
    return float("nan")


async def conversation(address: str, mode: str, turns: int, index: int, think_s: float) -> list[dict]:
    records = []
    voice = HELD_OUT_VOICES[index % len(HELD_OUT_VOICES)]
    await asyncio.sleep(0.37 * index % 1.5)  # stagger the starts
    async with VoiceClient(address, f"lat-{uuid.uuid4().hex[:8]}", barge_in=False) as client:
        for k in range(turns):
            text = REQUESTS[(index + k) % len(REQUESTS)]
            try:
                if mode == "voice":
                    pcm, end = spoken(text, voice)  # synthesized before the level started
                    turn: Turn = await client.turn(pcm, end, timeout_s=15)
                else:
                    turn = await client.text_turn(text, timeout_s=15)
            except TimeoutError:  # nothing heard (no final transcript): a turn without a reply
                records.append(
                    {
                        "conversation": index,
                        "said": text,
                        "heard": "",
                        "action": "",
                        "client_ms": float("nan"),
                        "errors": ["no reply within 15 s"],
                    }
                )
                continue
            server = turn.server_latency
            records.append(
                {
                    "conversation": index,
                    "said": text,
                    "heard": turn.transcript,
                    "action": turn.reply.action if turn.reply else "",
                    "client_ms": turn.latency_ms,
                    **({s: getattr(server, s) for s in STAGES} if server else {}),
                    "speculative": bool(server and server.speculative),
                    # the final transcript (END_OF_TURN, typed: the echo) reached the client
                    "final_at_client_ms": final_at_client(turn),
                    "errors": [f"{m.error.stage}:{m.error.code}" for m in turn.of("error")],
                }
            )
            await asyncio.sleep(think_s)
    return records


@cache
def spoken(text: str, voice: str) -> tuple[bytes, float]:
    return user_speech(text, voice)


async def level(address: str, mode: str, concurrency: int, turns: int, think_s: float) -> list[dict]:
    if mode == "voice":  # the users' speech is made first: its synthesis must not load the machine
        for index in range(concurrency):
            for k in range(turns):  # turns per conversation
                spoken(REQUESTS[(index + k) % len(REQUESTS)], HELD_OUT_VOICES[index % len(HELD_OUT_VOICES)])
    runs = await asyncio.gather(*(conversation(address, mode, turns, i, think_s) for i in range(concurrency)))
    return [r for run in runs for r in run]


async def barge_ins(address: str, mode: str, trials: int) -> list[dict]:
    """Interrupt a long reply; time to the BARGE_IN event and to the last audio of that reply."""
    found = []
    for i in range(trials * 3):  # a request the ASR mishears gets a short reply: nothing to interrupt
        if len(found) == trials:
            break
        async with VoiceClient(address, f"bi-{uuid.uuid4().hex[:8]}") as client:
            if mode == "voice":
                pcm, end = await asyncio.to_thread(user_speech, "what can you do", HELD_OUT_VOICES[i % 2])
                await client.speak(pcm, end)
            else:
                client.type("what can you do")
            first = await client.wait_for(lambda r: r.kind == "audio", timeout_s=60)
            reply_turn = client.received[first].message.turn_id
            replies = [r.message.reply for r in client.received[:first] if r.kind == "reply"]
            if not replies or replies[-1].action != "help":
                print(f"barge-in trial {i}: the request was not heard as help; trying again", flush=True)
                continue
            await asyncio.sleep(0.4)
            since = len(client.received)
            if mode == "voice":
                pcm, end = await asyncio.to_thread(user_speech, "stop talking please", HELD_OUT_VOICES[i % 2])
                start = time.perf_counter() + 0.25  # speech starts after the lead silence
                speaking = asyncio.create_task(client.speak(pcm, end))
            else:
                start = client.type("stop")
            barge = await client.wait_for(
                lambda r: r.kind == "event" and r.message.event.type == pb.TurnEvent.BARGE_IN, since, 60
            )
            if mode == "voice":
                await speaking
            await asyncio.sleep(0.3)
            t_barge = client.received[barge].t
            interim = next(
                (r.t for r in client.received[since:barge] if r.kind == "transcript"), float("nan")
            )
            late = [
                r
                for r in client.received[barge + 1 :]
                if r.kind == "audio" and r.message.turn_id == reply_turn
            ]
            last_audio = max(
                [
                    r.t
                    for r in client.received[since:barge]
                    if r.kind == "audio" and r.message.turn_id == reply_turn
                ]
                or [t_barge]
            )
            found.append(
                {
                    "from_interrupt_ms": (t_barge - start) * 1000,
                    "from_first_interim_ms": (t_barge - interim) * 1000,
                    "audio_chunks_after_barge_in": len(late),
                    "last_audio_before_barge_in_ms": (t_barge - last_audio) * 1000,
                    "played_ms": client.received[barge].message.event.played_ms,
                }
            )
    return found


def summarize(records: list[dict]) -> dict:
    ok = [r for r in records if not math.isnan(r["client_ms"])]
    out = {
        "turns": len(records),
        "turns_with_audio": len(ok),
        "errors": sum(bool(r["errors"]) for r in records),
        "speculative": sum(bool(r.get("speculative")) for r in records),
    }
    for q in (50, 95, 99):
        out[f"client_p{q}_ms"] = round(pct([r["client_ms"] for r in ok], q), 1)
    for q in (50, 95):
        out[f"final_at_client_p{q}_ms"] = round(pct([r["final_at_client_ms"] for r in ok], q), 1)
        out[f"after_final_p{q}_ms"] = round(pct([r["client_ms"] - r["final_at_client_ms"] for r in ok], q), 1)
    out["stages"] = {
        s: {f"p{q}": round(pct([r.get(s, float("nan")) for r in ok], q), 1) for q in (50, 95)} for s in STAGES
    }
    return out


def plot(results: dict, typical: dict, mode: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1.5, 1]})
    final = typical.get("final_at_client_ms", float("nan"))
    if math.isnan(final):  # typed: no ASR
        final = 0.0
    bars = []
    if typical.get("endpointing_ms", 0) > 0:
        bars.append(("endpointing wait (ASR)", typical["endpointing_ms"]))
    if final > 0:
        bars.append(
            (
                "rest of ASR until the final\n(word-timing lag, 160 ms chunks, hops)",
                max(0.0, final - sum(v for _, v in bars)),
            )
        )
    after = typical["client_ms"] - final
    if typical.get("speculative"):
        bars.append(
            (
                f"final → first audio (NLU {typical['nlu_ms']:.0f}, policy {typical['policy_ms']:.0f},\n"
                f"TTS {typical['tts_first_audio_ms']:.0f} ms ran during the wait)",
                after,
            )
        )
    else:
        for key, name in (
            ("nlu_ms", "NLU"),
            ("policy_ms", "policy + Redis"),
            ("tts_first_audio_ms", "TTS first audio"),
        ):
            bars.append((name, typical.get(key, 0.0)))
        bars.append(("gRPC hops, queueing", max(0.0, typical["client_ms"] - sum(v for _, v in bars))))
    start = 0.0
    for i, (_name, value) in enumerate(bars):
        left.barh(len(bars) - 1 - i, value, left=start, color=f"C{i}")
        left.text(start + value + 3, len(bars) - 1 - i, f"{value:.0f} ms", va="center", fontsize=9)
        start += value
    left.set_yticks(range(len(bars)), [b[0] for b in reversed(bars)])
    left.axvline(GOAL_MS, color="red", linestyle="--", linewidth=1, label=f"goal {GOAL_MS:.0f} ms")
    what = "end of user speech" if mode == "voice" else "text sent"
    left.set_title(
        f"A typical turn (median, 1 conversation): {what} → first reply audio "
        f"= {typical['client_ms']:.0f} ms",
        fontsize=10,
    )
    left.set_xlabel("ms")
    left.legend(loc="lower right")
    levels = sorted(int(k) for k in results)
    for q, style in ((50, "o-"), (95, "s-"), (99, "^-")):
        right.plot(levels, [results[str(c)][f"client_p{q}_ms"] for c in levels], style, label=f"p{q}")
    right.axhline(GOAL_MS, color="red", linestyle="--", linewidth=1, label="goal (p95)")
    right.set_xscale("log", base=2)
    right.set_xticks(levels, [str(c) for c in levels])
    right.set_xlabel("concurrent conversations")
    right.set_ylabel("ms")
    right.set_title("first reply audio latency at the client", fontsize=10)
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_report(out: Path, data: dict) -> None:
    mode = data["mode"]
    what = (
        "end of user speech → first reply audio" if mode == "voice" else "typed text sent → first reply audio"
    )
    lines = [
        "# Dialog latency",
        "",
        f"`{data.get('command') or f'python -m bench.dialog_latency --mode {mode}'}`, run {data['date']} on "
        f"{data['machine']} (load average {data['load'][0]:.1f} at start, {data['load'][1]:.1f} at end; "
        "client, services and Triton share the cores). Before the measured levels, one conversation "
        "of two turns and one turn at the largest level warm the stack up, unmeasured.",
        "",
        f"Models: {data['models']}.",
        "",
        f"**{what}, measured at the client** (goal: p95 < {GOAL_MS:.0f} ms):",
        "",
        "| conversations | turns | p50 ms | p95 ms | p99 ms | errors or no reply | answered speculatively |",
        "|---|---|---|---|---|---|---|",
    ]
    for c, s in data["levels"].items():
        lines.append(
            f"| {c} | {s['turns']} | {s['client_p50_ms']} | {s['client_p95_ms']} | {s['client_p99_ms']} "
            f"| {s['errors']} | {s['speculative']} |"
        )
    outcomes = ("confirmed", "dropped", "late")
    lines += [
        "",
        "Speculations (a turn answered during the endpointing wait from an intermediate final, spoken "
        "only when the final says the same words; the dialog's `rivulet_dialog_speculations_total`): "
        + "; ".join(
            f"{c} conversations: " + ", ".join(f"{s.get('speculations', {}).get(k, 0)} {k}" for k in outcomes)
            for c, s in data["levels"].items()
        )
        + ".",
        "",
        "Split at the final transcript, as the client sees it (p50 / p95 ms): end of speech → final "
        "transcript (endpointing and the ASR), and final → first reply audio (the dialog service: NLU, "
        "policy, TTS):",
        "",
        "| conversations | speech end → final | final → first audio |",
        "|---|---|---|",
    ]
    for c, s in data["levels"].items():
        lines.append(
            f"| {c} | {s['final_at_client_p50_ms']} / {s['final_at_client_p95_ms']} "
            f"| {s['after_final_p50_ms']} / {s['after_final_p95_ms']} |"
        )
    lines += [
        "",
        "Server-side breakdown by stage (p50 / p95 ms, from each turn's `latency` message):",
        "",
        "| conversations | " + " | ".join(STAGES) + " |",
        "|---|" + "---|" * len(STAGES),
    ]
    for c, s in data["levels"].items():
        lines.append(
            f"| {c} | "
            + " | ".join(f"{s['stages'][k]['p50']} / {s['stages'][k]['p95']}" for k in STAGES)
            + " |"
        )
    if data.get("barge_in"):
        b = data["barge_in"]
        lines += [
            "",
            f"**Barge-in** ({len(b)} trials, interrupting the long help reply): BARGE_IN event after the "
            f"interruption started: median {pct([x['from_interrupt_ms'] for x in b], 50):.0f} ms; after the "
            f"first interim transcript of it: median "
            f"{pct([x['from_first_interim_ms'] for x in b], 50):.1f} ms; "
            f"reply audio chunks received after the BARGE_IN event: "
            f"{sum(x['audio_chunks_after_barge_in'] for x in b)}.",
        ]
    lines += ["", "![latency](dialog_latency.png)", ""]
    figure = partial(plot, data["levels"], data["typical_turn"], data["mode"])
    write_report_files("dialog_latency", lines, data, figure, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=("voice", "text"), default="voice")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--turns", type=int, default=48, help="turns per level (split across conversations)")
    parser.add_argument(
        "--think-s", type=float, default=0.3, help="pause between a reply and the next request"
    )
    parser.add_argument("--barge-ins", type=int, default=8)
    parser.add_argument("--asr-repository", type=Path, default=ROOT / "models")
    parser.add_argument("--nlu-profile", default="auto")
    parser.add_argument("--nlu-repository", type=Path, help=NLU_REPOSITORY_HELP)
    parser.add_argument("--reports", type=Path, default=ROOT / "bench" / "reports")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".run" / "dialog_latency")
    args = parser.parse_args(argv)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    sources = {MODELS["nlu"]: nlu_source(args.workdir, args.nlu_profile, args.nlu_repository)}
    sources[MODELS["tts"]] = ROOT / "models" / MODELS["tts"]
    if args.mode == "voice":
        asr = find_model(MODELS["asr"], args.asr_repository)
        if asr is None:
            print(f"no trained asr_streaming in {args.asr_repository}; use --mode text", file=sys.stderr)
            return 2
        sources[MODELS["asr"]] = asr
        sources[MODELS["second_pass"]] = ROOT / "models" / MODELS["second_pass"]  # Whisper: the finals
    repository = compose_repository(args.workdir / "repository", sources)
    redis, redis_url = start_redis_server(args.workdir)
    data: dict = {
        "command": command_line("bench.dialog_latency", argv),
        "mode": args.mode,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": "the shared 2-core CPU machine",
        "levels": {},
        "models": ", ".join(f"{k} from {v}" for k, v in sources.items()),
    }
    load = [os.getloadavg()[0]]
    try:
        with open_meteo_server() as weather:
            settings = {"dialog_weather_url": weather, "dialog_time_zone": "UTC"}
            with SpeechStack(
                args.workdir, repository, list(sources), redis_url, dialog_env=settings
            ) as stack:
                address = stack.dialogs[0].address
                # Warm-up, not measured: first calls load caches, and the first batches of each size
                # make onnxruntime and the Triton backends allocate (a fresh stack's first 16-way
                # level measured 310-1013 ms p95 where the next ones measured 310-470).
                asyncio.run(level(address, args.mode, 1, 2, 0.1))
                asyncio.run(level(address, args.mode, max(args.levels), 1, 0.1))
                records = {}
                for c in args.levels:
                    turns = max(2, math.ceil(args.turns / c))
                    started, before = time.perf_counter(), stack.speculations()
                    records[c] = asyncio.run(level(address, args.mode, c, turns, args.think_s))
                    data["levels"][str(c)] = summarize(records[c])
                    after = stack.speculations()
                    spec = {k: v - before.get(k, 0) for k, v in after.items()}
                    data["levels"][str(c)]["speculations"] = spec
                    print(
                        f"{c:3d} conversations: {json.dumps(data['levels'][str(c)])} "
                        f"({time.perf_counter() - started:.0f} s)",
                        flush=True,
                    )
                if args.barge_ins:
                    data["barge_in"] = asyncio.run(barge_ins(address, args.mode, args.barge_ins))
                    print("barge-in:", json.dumps(data["barge_in"]), flush=True)
    finally:
        redis.terminate()
    load.append(os.getloadavg()[0])
    data["load"] = load
    one = sorted(
        (r for r in records[min(args.levels)] if not math.isnan(r["client_ms"])), key=lambda r: r["client_ms"]
    )
    data["typical_turn"] = one[len(one) // 2]
    data["turns"] = {str(c): r for c, r in records.items()}
    write_report(args.reports, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
