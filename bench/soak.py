"""`python -m bench.soak [--profile smoke|rated|long]`: the whole voice stack under steady load for
minutes to an hour, with errors, p95 latency per minute and the RSS of every process recorded, plotted
(bench/reports/soak.png) and judged against the goals: 0 errors, RSS growth < 5 % after warm-up (the
median of the load's last tenth against its first tenth after warm-up), no p95 drift (the last
minute's p95 under 1.25 × the first's).

Load: `asr_streams` StreamingRecognize calls, each sending a spoken utterance in real time (100 ms
messages), half-closing and waiting for the final, again and again (latency: half-close → final), and
`conversations` dialog sessions each taking a typed turn with spoken reply (TextTurn with audio:
NLU, policy, Redis and TTS) every 2 s (latency: the RPC). Without a trained NLU model in the
repository a conversation is a TTS SynthesizeOnline reply instead (latency: first audio).

Profiles: smoke (2 min, 8 streams, 2 conversations: runs on a shared 2-core machine), rated (10 min,
64 streams, 16 conversations: the latency goals' concurrency), long (60 min at rated load).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from riva.proto import riva_asr_pb2 as rasr
from riva.proto import riva_asr_pb2_grpc, riva_tts_pb2_grpc
from riva.proto import riva_tts_pb2 as rtts

from bench.dialog_support import MODELS, SpeechStack, compose_repository, default_sources, user_speech
from rivulet.core.processes import ROOT, start_redis_server
from rivulet.dialog.v1 import dialog_pb2 as pb
from rivulet.dialog.v1 import dialog_pb2_grpc

REPORTS = ROOT / "bench" / "reports"
PROFILES = {
    "smoke": {"minutes": 2.0, "asr_streams": 8, "conversations": 2, "warmup_minutes": 0.5},
    "rated": {"minutes": 10.0, "asr_streams": 64, "conversations": 16, "warmup_minutes": 1.0},
    "long": {"minutes": 60.0, "asr_streams": 64, "conversations": 16, "warmup_minutes": 2.0},
}
UTTERANCES = ("seven three nine", "set a timer for ten minutes", "turn on the kitchen lights")
TURNS = ("what time is it", "set a timer for ten minutes", "turn on the kitchen lights", "cancel that")
CHUNK_BYTES = 3200  # 100 ms of 16 kHz PCM16
PROGRESS_PROCESSES = ("tritonserver", "asr", "dialog-0")  # whose RSS the progress line shows


@dataclass
class Recorder:
    started: float = field(default_factory=time.monotonic)
    latencies: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    errors: list[tuple[float, str, str]] = field(default_factory=list)
    rss: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    shmem: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    load: list[tuple[float, float]] = field(default_factory=list)  # the machine's 1-minute load average

    def now(self) -> float:
        return time.monotonic() - self.started

    def latency(self, kind: str, seconds: float) -> None:
        self.latencies[kind].append((self.now(), seconds * 1000))

    def error(self, kind: str, exc: BaseException) -> None:
        code = exc.code().name if isinstance(exc, grpc.RpcError) else type(exc).__name__
        self.errors.append((self.now(), kind, f"{code}: {getattr(exc, 'details', lambda: str(exc))()}"))


async def asr_worker(stub, rec: Recorder, index: int, stop: asyncio.Event) -> None:
    config = rasr.StreamingRecognitionConfig(
        config=rasr.RecognitionConfig(encoding=1, sample_rate_hertz=16_000, language_code="en-US"),
        interim_results=True,
    )
    for text in itertools.cycle(
        UTTERANCES[index % len(UTTERANCES) :] + UTTERANCES[: index % len(UTTERANCES)]
    ):
        if stop.is_set():
            return
        pcm, _ = user_speech(text)
        call = stub.StreamingRecognize(timeout=120)
        try:
            await call.write(rasr.StreamingRecognizeRequest(streaming_config=config))
            for i in range(0, len(pcm), CHUNK_BYTES):
                await call.write(rasr.StreamingRecognizeRequest(audio_content=pcm[i : i + CHUNK_BYTES]))
                await asyncio.sleep(0.1)
            closed = time.monotonic()
            await call.done_writing()
            last_final = closed
            async for response in call:
                if any(r.is_final for r in response.results):
                    last_final = time.monotonic()
            rec.latency("asr final after end of audio", last_final - closed)
        except (TimeoutError, grpc.RpcError) as exc:
            rec.error("asr", exc)
            await asyncio.sleep(1)
        await asyncio.sleep(0.3)


async def conversation_worker(dialog_stub, tts_stub, rec: Recorder, index: int, stop: asyncio.Event) -> None:
    session = f"soak-{index}-{int(time.time())}"
    for text in itertools.cycle(TURNS):
        if stop.is_set():
            return
        began = time.monotonic()
        try:
            if dialog_stub is not None:
                await dialog_stub.TextTurn(
                    pb.TextTurnRequest(session_id=session, text=text, synthesize_audio=True), timeout=30
                )
                rec.latency("dialog typed turn with spoken reply", time.monotonic() - began)
            else:
                request = rtts.SynthesizeSpeechRequest(
                    text=f"Sure. {text}.", sample_rate_hz=16_000, encoding=1, language_code="en-US"
                )
                call = tts_stub.SynthesizeOnline(iter([request]), timeout=30)
                first = None
                async for _ in call:
                    first = first or time.monotonic()
                rec.latency("tts first audio", (first or time.monotonic()) - began)
        except (TimeoutError, grpc.RpcError) as exc:
            rec.error("conversation", exc)
        await asyncio.sleep(max(0.0, 2.0 - (time.monotonic() - began)))


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _rss_mib(pid: int, field: str = "VmRSS") -> float:
    """A resident-memory line of /proc/PID/status in MiB (VmRSS: all of it; RssShmem: the shared
    memory in it, e.g. the python backend's request/response pools that tritonserver maps)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def processes(stack: SpeechStack) -> dict[str, int]:
    named = {kind: s.process.pid for kind, s in stack.services.items() if s.process}
    named.update({f"dialog-{i}": d.process.pid for i, d in enumerate(stack.dialogs) if d.process})
    if stack.triton and stack.triton.process:
        named["tritonserver"] = stack.triton.process.pid
        for child in _children(stack.triton.process.pid):  # python-backend stubs: one per model instance
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                model = next(
                    (Path(a.decode()).parent.parent.name for a in cmdline if a.endswith(b"model.py")), ""
                )
                name = f"triton stub {model or child}"
                copies = sum(k == name or k.startswith(f"{name} #") for k in named)
                named[name if not copies else f"{name} #{copies + 1}"] = child  # asr_whisper runs two
    return named


async def sampler(stack: SpeechStack, rec: Recorder, stop: asyncio.Event, every_s: float = 5.0) -> None:
    while not stop.is_set():
        for name, pid in processes(stack).items():
            rec.rss[name].append((rec.now(), _rss_mib(pid)))
            rec.shmem[name].append((rec.now(), _rss_mib(pid, "RssShmem")))
        rec.load.append((rec.now(), os.getloadavg()[0]))  # ours and whatever else shares the cores
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


def second_pass_counts(stack: SpeechStack) -> dict[str, float]:
    """The ASR service's finals by pass and speculative passes by outcome, from its metrics."""
    service = stack.services.get("asr")
    if service is None:
        return {}
    counts = {}
    with contextlib.suppress(OSError):
        for sample in service.metric_samples():
            if sample.name == "rivulet_asr_finals_total":
                counts[f"finals by {sample.labels['pass']}"] = sample.value
            elif sample.name == "rivulet_asr_speculative_passes_total":
                counts[f"speculative {sample.labels['outcome']}"] = sample.value
    return counts


def per_minute(points: list[tuple[float, float]]) -> dict[int, float]:
    minutes: dict[int, list[float]] = defaultdict(list)
    for t, value in points:
        minutes[int(t // 60)].append(value)
    return {m: float(np.percentile(v, 95)) for m, v in sorted(minutes.items())}


def rss_growth_pct(points: list[tuple[float, float]], warmup_s: float, load_s: float) -> float | None:
    """RSS growth over the load after warm-up: the median of its last window against the median of
    its first, each window a tenth of that time and at least a minute (a process's RSS saws up and
    down with its work, e.g. Whisper's batch sizes: two single samples would judge the saw)."""
    window = max(60.0, (load_s - warmup_s) / 10)
    first = [v for t, v in points if warmup_s <= t < warmup_s + window]
    last = [v for t, v in points if load_s - window <= t < load_s]
    if not first or not last or (load_s - warmup_s) < 2 * window or float(np.median(first)) <= 0:
        return None
    return round(100 * (float(np.median(last)) / float(np.median(first)) - 1), 2)


def judge(rec: Recorder, warmup_s: float, load_s: float) -> dict:
    """The goals over the loaded time after warm-up (requests finishing after the load stops are left out)."""
    rss_growth = {}
    for name, points in rec.rss.items():
        growth = rss_growth_pct(points, warmup_s, load_s)
        if growth is not None:
            rss_growth[name] = growth
    drift = {}
    for kind, points in rec.latencies.items():
        minutes = per_minute([(t, v) for t, v in points if warmup_s <= t < load_s])
        if len(minutes) >= 2:
            first, last = next(iter(minutes.values())), list(minutes.values())[-1]
            drift[kind] = round(last / first, 3) if first else None
    return {
        "errors": len(rec.errors),
        "rss_growth_after_warmup_pct": rss_growth,
        "p95_last_minute_over_first": drift,
        "goals": {
            "zero_errors": not rec.errors,
            "rss_growth_under_5pct": all(g < 5 for g in rss_growth.values()),
            "no_p95_drift (last/first minute < 1.25)": all(d is None or d < 1.25 for d in drift.values()),
        },
    }


def plot(rec: Recorder, path: Path, title: str, load_s: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(10, 10), sharex=True)
    for kind, points in rec.latencies.items():
        minutes = per_minute([(t, v) for t, v in points if t < load_s])
        axes[0].plot([m + 0.5 for m in minutes], list(minutes.values()), marker="o", label=kind)
    axes[0].set_ylabel("p95 latency per minute (ms)")
    axes[0].legend(fontsize=8)
    errors: dict[int, int] = defaultdict(int)
    for t, _, _ in rec.errors:
        errors[int(t // 60)] += 1
    total_minutes = int(rec.now() // 60) + 1
    axes[1].bar([m + 0.5 for m in range(total_minutes)], [errors.get(m, 0) for m in range(total_minutes)])
    axes[1].set_ylabel("errors per minute")
    axes[1].set_ylim(bottom=0, top=max(1, *errors.values()) if errors else 1)
    for name, points in sorted(rec.rss.items()):
        axes[2].plot([t / 60 for t, _ in points], [v for _, v in points], label=name)
    axes[2].set_ylabel("RSS (MiB)")
    axes[2].set_xlabel("minutes")
    axes[2].legend(fontsize=7, ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def markdown(result: dict, png: str) -> str:
    s = result["settings"]
    verdict = result["verdict"]
    lines = [
        f"# Soak: {s['profile']} profile",
        "",
        f"`python -m bench.soak --profile {s['profile']}`: {s['minutes']} min, "
        f"{s['asr_streams']} ASR streams, "
        f"{s['conversations']} conversations ({s['conversation_kind']}), warm-up {s['warmup_minutes']} min, "
        f"{os.cpu_count()} CPU cores. ![soak]({png})",
        "",
        "| goal | met |",
        "|---|---|",
        *[f"| {goal} | {'yes' if met else '**no**'} |" for goal, met in verdict["goals"].items()],
        "",
        f"Errors: {verdict['errors']}"
        + ("" if not result["errors"] else f" (first: {result['errors'][0][1]} {result['errors'][0][2]})"),
        "",
        "| p95 per minute (ms) | "
        + " | ".join(f"min {m + 1}" for m in range(int(s["minutes"] + 0.999)))
        + " |",
        "|---|" + "---|" * int(s["minutes"] + 0.999),
    ]
    for kind, minutes in result["p95_per_minute_ms"].items():  # the minutes of load, not the wind-down
        shown = [minutes.get(m) for m in range(int(s["minutes"] + 0.999))]
        lines.append(f"| {kind} | " + " | ".join("–" if v is None else f"{v:.0f}" for v in shown) + " |")
    lines += [
        "",
        "RSS growth: the median of the load's last tenth (at least a minute) against that of its "
        "first tenth after warm-up.",
        "",
        "| process | RSS after warm-up → end (MiB) | min–max | growth | of which shared memory (MiB) |",
        "|---|---|---|---|---|",
    ]
    # (a python-backend stub per Triton model instance; the pid when its model could not be read)
    for name, points in sorted(result["rss_mib"].items()):
        after = [v for t, v in points if t >= s["warmup_minutes"] * 60] or [0.0]
        growth = verdict["rss_growth_after_warmup_pct"].get(name)
        shmem = result.get("rss_shmem_mib", {}).get(name, [])
        shared = [v for t, v in shmem if t >= s["warmup_minutes"] * 60]
        lines.append(
            f"| {name} | {after[0]:.0f} → {after[-1]:.0f} | {min(after):.0f}–{max(after):.0f} | "
            f"{growth if growth is not None else '–'} % | "
            + (f"{shared[0]:.0f} → {shared[-1]:.0f} |" if shared else "– |")
        )
    if result.get("asr_passes"):
        lines.append(
            "\nThe ASR service's second passes (its metrics at the end): "
            + ", ".join(f"{k} {v:.0f}" for k, v in sorted(result["asr_passes"].items()))
            + ". A dropped speculative pass or a late second pass is one the service stops waiting for."
        )
    lines.append(f"\nRequests completed: {result['completed']}.")
    loads = [v for _, v in result["load_average"]]
    if loads:
        lines.append(
            f"\nMachine load (1-minute load average, every 5 s, {os.cpu_count()} cores, shared with other "
            f"work): median {float(np.median(loads)):.1f}, max {max(loads):.1f}."
        )
    return "\n".join(lines) + "\n"


def progress_line(rec: Recorder, minutes: float) -> str:
    """One line on how the run is going: time, requests, errors, the last minute's p95s, RSS."""
    now = rec.now()
    recent = {kind: [ms for t, ms in values if t >= now - 60] for kind, values in rec.latencies.items()}
    p95s = [f"{kind} {np.percentile(ms, 95):.0f} ms" for kind, ms in recent.items() if ms]
    rss = [f"{name} {rec.rss[name][-1][1]:.0f}" for name in sorted(PROGRESS_PROCESSES) if rec.rss.get(name)]
    return (
        f"  {now / 60:5.1f}/{minutes:g} min  requests {sum(map(len, rec.latencies.values()))}  "
        f"errors {len(rec.errors)}  last-minute p95 {', '.join(p95s) or '–'}  RSS {', '.join(rss)} MiB"
    )


async def report_progress(rec: Recorder, minutes: float) -> None:
    """Wait out the run, printing a progress line every minute (a long run is an hour)."""
    end = rec.now() + minutes * 60
    while (left := end - rec.now()) > 0:
        await asyncio.sleep(min(60.0, left))
        print(progress_line(rec, minutes), flush=True)


async def run(settings: dict, workdir: Path, out: Path) -> dict:
    sources = default_sources()
    repository = compose_repository(workdir / "repository", sources)
    models = [m for m in MODELS.values() if m in sources]
    redis_process, redis_url = start_redis_server(workdir)
    stack = SpeechStack(workdir / "stack", repository, models, redis_url, replicas=1)
    rec = Recorder()
    asr_passes: dict[str, float] = {}
    try:
        with stack:
            rec = Recorder()
            stop = asyncio.Event()
            asr_channel = grpc.aio.insecure_channel(stack.services["asr"].address)
            tts_channel = grpc.aio.insecure_channel(stack.services["tts"].address)
            dialog_channel = grpc.aio.insecure_channel(stack.dialogs[0].address)
            has_nlu = "nlu" in stack.services
            asr_stub = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(asr_channel)
            dialog_stub = dialog_pb2_grpc.DialogStub(dialog_channel) if has_nlu else None
            tts_stub = riva_tts_pb2_grpc.RivaSpeechSynthesisStub(tts_channel)
            tasks = [asyncio.create_task(sampler(stack, rec, stop))]
            tasks += [
                asyncio.create_task(asr_worker(asr_stub, rec, i, stop))
                for i in range(settings["asr_streams"])
            ]
            tasks += [
                asyncio.create_task(conversation_worker(dialog_stub, tts_stub, rec, i, stop))
                for i in range(settings["conversations"])
            ]
            await report_progress(rec, settings["minutes"])
            asr_passes = second_pass_counts(stack)
            stop.set()
            await asyncio.wait(tasks, timeout=60)
            for channel in (asr_channel, tts_channel, dialog_channel):
                await channel.close()
    finally:
        redis_process.terminate()
        redis_process.wait(10)
    settings = {
        **settings,
        "conversation_kind": "dialog TextTurn + TTS" if has_nlu else "TTS SynthesizeOnline",
    }
    result = {
        "settings": settings,
        "verdict": judge(rec, settings["warmup_minutes"] * 60, settings["minutes"] * 60),
        "p95_per_minute_ms": {k: per_minute(v) for k, v in rec.latencies.items()},
        "completed": {k: len(v) for k, v in rec.latencies.items()},
        "errors": rec.errors[:100],
        "rss_mib": {k: v for k, v in rec.rss.items()},
        "rss_shmem_mib": {k: v for k, v in rec.shmem.items()},
        "load_average": rec.load,
        "asr_passes": asr_passes,
    }
    png = out.with_suffix(".png")
    plot(rec, png, f"Rivulet soak ({settings['profile']})", settings["minutes"] * 60)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(result, png.name))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="rated")
    parser.add_argument("--minutes", type=float)
    parser.add_argument("--asr-streams", type=int)
    parser.add_argument("--conversations", type=int)
    parser.add_argument(
        "--out", type=Path, help="report path without suffix (default bench/reports/soak_<profile>)"
    )
    args = parser.parse_args(argv)
    settings = {"profile": args.profile, **PROFILES[args.profile]}
    for key in ("minutes", "asr_streams", "conversations"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    out = args.out or REPORTS / f"soak_{args.profile}"
    with tempfile.TemporaryDirectory(prefix="rivulet-soak-") as tmp:
        result = asyncio.run(run(settings, Path(tmp), out))
    print(out.with_suffix(".md").read_text())
    return 0 if all(result["verdict"]["goals"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
