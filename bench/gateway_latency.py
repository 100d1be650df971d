"""End of the user's speech in the fake-microphone WAV → first reply audio played by the page, in
real headless Chromium through the gateway and the real voice stack.

    python -m bench.gateway_latency                 # 1 and 4 browsers, 40+ spoken turns each
    python -m bench.gateway_latency --seconds 120   # shorter

Starts tritonserver (NLU, ASR, TTS), the services, Redis, the dialog service and the gateway as
processes, then opens the app in 1, then 4 pages at once (separate browser contexts of one
Chromium; all hear the same WAV microphone, so their turns start together: the worst case), and the
4 again with each page's microphone opened a quarter of a turn after the one before ("4 staggered":
the WAV starts over for each, so people talk at their own moments). The WAV
holds short requests by a voice the ASR never heard, each followed by silence. The page records the
level of every 20 ms frame it captured (its audio clock) and, per turn, the audio-clock time its
first reply sample was scheduled to play; the end of each utterance is found in the captured levels,
so both ends of the measure are on the page's own clock. Beside it: the server's stages (the turn's
latency message), the gateway's own time per message and per turn (its metrics), and barge-in
(start of the interrupting speech → playback stopped, as the page sees it).
Writes bench/reports/gateway_latency.{md,json,png} and the screenshots bench/reports/gateway_app.png
(desktop) and gateway_app_phone.png (a phone's width).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from playwright.async_api import async_playwright
from prometheus_client.parser import text_string_to_metric_families

from bench.cpu_share import CpuShare, table_lines
from bench.dialog_latency import REQUESTS
from bench.dialog_support import MODELS, SpeechStack, compose_repository, find_model, open_meteo_server
from bench.dialog_task_success import NLU_REPOSITORY_HELP, nlu_source
from bench.gateway_support import GatewayProcess, launch_chromium, microphone_wav, speech_ends, speech_starts
from rivulet.core.processes import ROOT, start_redis_server

GOAL_MS = {1: 300.0, 4: 350.0}
# The barge-in run: a question with a long answer, then new speech 1.4 s after it ends (while the
# answer plays), looped by the browser; every cycle interrupts a reply.
BARGE_IN_SCRIPT = ["what can you do", "what time is it"]
BARGE_IN_GAP_S = 1.4
STAGES = ("endpointing_ms", "asr_final_ms", "nlu_ms", "policy_ms", "tts_first_audio_ms", "total_ms")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def measure_page(probe: dict) -> tuple[list[dict], list[dict]]:
    """Turns (speech end → first reply audio played, on the page's audio clock) and barge-ins
    (interrupting speech start → playback stopped) from what one page recorded."""
    ends = speech_ends(probe["frames"])
    starts = speech_starts(probe["frames"])
    turns = []
    for turn_id, t in probe["turns"].items():
        if t.get("firstPlayAt") is None or not t.get("latency") or t["latency"]["endpointing_ms"] <= 0:
            continue  # typed turns, announcements, turns without audio
        # Which utterance this turn answers: the speech end nearest to where the service placed it
        # (first audio's arrival less the service's own total). Under load replies come late, so
        # "the last speech end before the reply" could be the next utterance's.
        estimate = t["firstArrival"] - t["latency"]["total_ms"] / 1000
        before = [e for e in ends if e < t["firstPlayAt"]]
        if not before:
            continue
        end = min(before, key=lambda e: abs(e - estimate))
        page_ms = (t["firstPlayAt"] - end) * 1000
        if not 0 < page_ms < 60_000:
            continue
        turns.append(
            {
                "turn_id": turn_id,
                "page_ms": page_ms,
                "transcript": t.get("transcript", ""),
                **{k: t["latency"][k] for k in STAGES},
                "playout_ms": (t["firstPlayAt"] - t["firstArrival"]) * 1000,
            }
        )
    barge_ins = []
    for b in probe["bargeIns"]:
        before = [s for s in starts if s < b["at"]]
        if before and 0 < b["at"] - before[-1] < 5:
            barge_ins.append({"turn_id": b["turn_id"], "page_ms": (b["at"] - before[-1]) * 1000})
    return turns, barge_ins


async def run_level(
    browser, url: str, pages: int, seconds: float, screenshot: Path | None, stagger_s: float = 0.0
) -> dict:
    """`pages` pages talking for `seconds`; `stagger_s` > 0: each page's microphone opened that long
    after the one before (the WAV starts over for each), so their turns do not end together."""
    contexts, opened = [], []
    for i in range(pages):
        # bypass_csp: Playwright evaluates JavaScript strings, which the page's CSP forbids
        context = await browser.new_context(viewport={"width": 1280, "height": 860}, bypass_csp=True)
        page = await context.new_page()
        await page.goto(f"{url}/?session=bench-{pages}-{i}-{int(time.time())}")
        await page.wait_for_function("window.rivulet && window.rivulet.readyCount > 0", timeout=60_000)
        contexts.append(context)
        opened.append(page)
    for page in opened:
        await page.click("#mic")
        await asyncio.sleep(stagger_s)
    started = time.monotonic()
    usage = CpuShare()
    while (elapsed := time.monotonic() - started) < seconds:
        await asyncio.sleep(10)
        done = await opened[0].evaluate("Object.values(window.rivulet.turns).filter(t => t.latency).length")
        print(
            f"  {pages} page(s): {elapsed:4.0f}/{seconds:.0f} s, {done} turns in the first page", flush=True
        )
    cpu = usage.cores()
    if screenshot:  # the app as it looks after the run, on a desktop and at a phone's width
        await opened[0].screenshot(path=str(screenshot), full_page=True)
        await opened[0].set_viewport_size({"width": 390, "height": 844})
        phone = screenshot.with_name(f"{screenshot.stem}_phone.png")
        await opened[0].screenshot(path=str(phone), full_page=False)
    turns, barge_ins, underruns, raw, frame_waits = [], [], 0, [], []
    for page in opened:
        probe = await page.evaluate(
            "({frames: window.rivulet.frames, turns: window.rivulet.turns, bargeIns: window.rivulet.bargeIns,"
            " underruns: window.rivulet.underruns, frameWaits: window.rivulet.frameWaits})"
        )
        frame_waits += probe.pop("frameWaits")
        raw.append(probe)
        t, b = measure_page(probe)
        turns += t
        barge_ins += b
        underruns += probe["underruns"]
    for context in contexts:
        await context.close()
    return {
        "turns": turns,
        "barge_ins": barge_ins,
        "underruns": underruns,
        "frame_waits": frame_waits,
        "probes": raw,
        "cpu": cpu,
    }


def summarize(result: dict) -> dict:
    page = [t["page_ms"] for t in result["turns"]]
    out = {"turns": len(page), "underruns": result["underruns"], "cpu": result.get("cpu", {})}
    for q in (50, 95, 99):
        out[f"page_p{q}"] = pct(page, q)
    for stage in STAGES:
        out[f"{stage}_p50"] = pct([t[stage] for t in result["turns"]], 50)
    out["playout_p50"] = pct([t["playout_ms"] for t in result["turns"]], 50)
    server = [t["total_ms"] for t in result["turns"]]
    out["server_total_p95"] = pct(server, 95)
    barge = [b["page_ms"] for b in result["barge_ins"]]
    out["barge_ins"] = len(barge)
    out["barge_in_p50"], out["barge_in_p95"] = pct(barge, 50), pct(barge, 95)
    if waits := result.get("frame_waits"):  # the page's capture path (see write_report)
        for q in (50, 99):
            out[f"frame_arrival_p{q}"] = pct([w[0] for w in waits], q)
            out[f"frame_send_p{q}"] = pct([w[1] for w in waits], q)
    return out


OVERHEAD_HISTOGRAMS = {  # report key → (histogram, its label filter)
    "forward_in": ("rivulet_gateway_forward_seconds", {"direction": "in"}),
    "forward_out": ("rivulet_gateway_forward_seconds", {"direction": "out"}),
    "turn_overhead": ("rivulet_gateway_turn_overhead_seconds", {}),
    "first_audio_forward": ("rivulet_gateway_first_audio_forward_seconds", {}),
}


SUFFIXES = ("_sum", "_count", "_bucket")


def bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus' histogram_quantile: linear within the bucket holding the q-th observation
    (`buckets`: (upper bound, cumulative count), ascending, +Inf last)."""
    total = buckets[-1][1]
    rank, lower, below = q * total, 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = upper, count
    return lower


def gateway_overhead(metrics_text: str) -> dict:
    """The gateway's own time per message (in, out) and per turn, from its Prometheus histograms:
    mean, p50 and p95 (from the buckets) in ms, and how many were observed."""
    families = {f.name: f for f in text_string_to_metric_families(metrics_text)}
    values = {}
    for key, (name, labels) in OVERHEAD_HISTOGRAMS.items():
        family = families.get(name)
        if family is None:
            continue
        samples = [s for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())]
        by = {suffix: [s for s in samples if s.name == name + suffix] for suffix in SUFFIXES}
        count = by["_count"][0].value if by["_count"] else 0.0
        if not count:
            continue
        buckets = sorted((float(s.labels["le"]), s.value) for s in by["_bucket"])
        values[f"{key}_mean_ms"] = 1000 * by["_sum"][0].value / count
        values[f"{key}_p50_ms"] = 1000 * bucket_quantile(buckets, 0.50)
        values[f"{key}_p95_ms"] = 1000 * bucket_quantile(buckets, 0.95)
        values[f"{key}_count"] = count
    return values


def plot(levels: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for n, result in levels.items():
        page = np.sort([t["page_ms"] for t in result["turns"]])
        server = np.sort([t["total_ms"] for t in result["turns"]])
        if len(page):
            y = np.arange(1, len(page) + 1) / len(page)
            left.plot(page, y, label=f"{n} browser(s): page (played)")
            left.plot(server, y, "--", label=f"{n} browser(s): service (first chunk sent)")
    for n, goal in GOAL_MS.items():
        left.axvline(goal, color="red" if n == 1 else "orange", lw=1, label=f"goal at {n}: {goal:.0f} ms")
    left.set_xscale("log")
    left.set_xlabel("end of speech → first reply audio (ms, log scale)")
    left.set_ylabel("fraction of turns")
    left.set_title("Spoken turns in headless Chromium")
    left.legend(fontsize=7)
    names = ["endpointing_ms", "asr_final_ms", "nlu_ms", "policy_ms", "tts_first_audio_ms", "playout_ms"]
    x = np.arange(len(names))
    width = 0.8 / max(1, len(levels))
    for i, (n, result) in enumerate(levels.items()):
        medians = [pct([t[k] for t in result["turns"]], 50) for k in names]
        right.bar(x + i * width, medians, width, label=f"{n} browser(s)")
    right.set_xticks(x + width / 2, [k.removesuffix("_ms") for k in names], rotation=20, fontsize=8)
    right.set_yscale("log")
    right.set_ylabel("median (ms, log scale)")
    right.set_title("Stages (service) and playout (page)")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_report(out: Path, data: dict) -> None:
    lines = [
        "# Gateway: spoken turns in a real browser",
        "",
        f"{data['date']}, {data['machine']}; load average {data['load'][0]:.1f} before, "
        f"{data['load'][1]:.1f} after. `python -m bench.gateway_latency` reproduces it.",
        "",
        "End of the user's speech in the fake-microphone WAV → first reply audio played, both on the "
        "page's audio clock (Chromium headless, `--use-file-for-fake-audio-capture`; the page's captured "
        "levels locate the speech end; the reply's first sample's scheduled start is when it plays). "
        "Browser, gateway, dialog, ASR, NLU, TTS and Triton all run on this machine, shared with other "
        "engineers' jobs at the time, so absolute figures vary between runs.",
        "",
        "| browsers | turns | page p50 | page p95 | page p99 | goal (p95) | service total p95 | "
        "endpointing p50 | ASR final p50 | NLU p50 | policy p50 | TTS first audio p50 | playout p50 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, s in data["levels"].items():
        lines.append(
            f"| {n} | {s['turns']} | {s['page_p50']:.0f} | {s['page_p95']:.0f} | {s['page_p99']:.0f} | "
            f"< {GOAL_MS.get(int(n.split()[0]), 350):.0f} | {s['server_total_p95']:.0f} | "
            f"{s['endpointing_ms_p50']:.0f} | "
            f"{s['asr_final_ms_p50']:.0f} | {s['nlu_ms_p50']:.0f} | {s['policy_ms_p50']:.0f} | "
            f"{s['tts_first_audio_ms_p50']:.0f} | {s['playout_p50']:.0f} |"
        )
    table = table_lines([((n,), s.get("cpu", {})) for n, s in data["levels"].items()], ["browsers"])
    if table:
        lines += [
            "",
            "Where the CPU went while the pages talked (cores used on average by each group of processes, "
            "from their CPU times; `bench`: the bench's own clients and the browser's driver):",
            "",
            *table,
        ]
    lines += ["", "Barge-in as the page sees it (start of the interrupting speech → playback stopped):", ""]
    lines += ["| browsers | barge-ins | p50 (ms) | p95 (ms) |", "|---|---|---|---|"]
    for n, s in data["levels"].items():
        lines.append(f"| {n} | {s['barge_ins']} | {s['barge_in_p50']:.0f} | {s['barge_in_p95']:.0f} |")
    if run := data.get("barge_in_run"):
        script = " → ".join(f"“{t}”" for t in BARGE_IN_SCRIPT)
        lines.append(
            f"| 1, interrupting script ({script}, {BARGE_IN_GAP_S} s apart, {run['cycles']} cycles) | "
            f"{run['barge_ins']} | {run['barge_in_p50']:.0f} | {run['barge_in_p95']:.0f} |"
        )
    lines += [
        "",
        "The gateway's own time (its Prometheus histograms over the whole run; p50/p95 interpolated "
        "in the buckets, as Prometheus' histogram_quantile does):",
        "",
        "| what | observed | mean (ms) | p50 (ms) | p95 (ms) |",
        "|---|---|---|---|---|",
    ]
    gateway = data["gateway"]
    for key in OVERHEAD_HISTOGRAMS:
        if f"{key}_count" in gateway:
            lines.append(
                f"| `{key}` | {gateway[f'{key}_count']:.0f} | {gateway[f'{key}_mean_ms']:.3f} | "
                f"{gateway.get(f'{key}_p50_ms', float('nan')):.3f} | "
                f"{gateway.get(f'{key}_p95_ms', float('nan')):.3f} |"
            )
    lines += [
        "",
        "`forward_in`: one browser message parsed and handed to gRPC; `forward_out`: a dialog message "
        "received → its WebSocket write done; `turn_overhead`: the sum over a turn's outgoing "
        "messages; `first_audio_forward`: a turn's first reply audio chunk.",
    ]
    if data.get("whisper_decodings"):
        counts = ", ".join(f"{k} {v:.0f}" for k, v in sorted(data["whisper_decodings"].items()))
        lines += [
            "",
            "Whisper passes over the whole run by how they were decoded (the ASR's "
            f"`rivulet_asr_whisper_decodings_total`, fallbacks included): {counts}.",
        ]
    underruns = ", ".join(f"{n}: {s['underruns']}" for n, s in data["levels"].items())
    capture = "; ".join(
        f"{n}: {s['frame_arrival_p50']:.1f} / {s['frame_arrival_p99']:.1f} ms, sent in "
        f"{s['frame_send_p50']:.2f} / {s['frame_send_p99']:.2f} ms"
        for n, s in data["levels"].items()
        if "frame_arrival_p50" in s
    )
    if capture:
        lines += [
            "",
            "The page's capture path, p50 / p99 over every 20 ms microphone frame: from the frame's last "
            "sample to its arrival on the page's main thread (audio clock; the audio thread renders in "
            f"bursts of about 10 ms, `baseLatency`), and the WebSocket send: {capture}.",
        ]
    lines += [
        "",
        f"Playback underruns (a chunk that arrived after the previous one had finished): {underruns}.",
        "",
        "![latency](gateway_latency.png)",
        "",
    ]
    (out / "gateway_latency.md").write_text("\n".join(lines))


def whisper_decodings(samples) -> dict[str, float]:
    """Whisper passes by how they were decoded (the ASR's counter; fallbacks summed in)."""
    counts: dict[str, float] = {}
    for sample in samples:
        if sample.name == "rivulet_asr_whisper_decodings_total":
            key = sample.labels["decoding"]
            counts[key] = counts.get(key, 0.0) + sample.value
    return counts


async def run_barge_ins(url: str, wav: Path, seconds: float) -> dict:
    """One page whose microphone interrupts the assistant's long answers, for `seconds`."""
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright, wav)
        print(f"==> barge-ins: 1 browser for {seconds:.0f} s", flush=True)
        result = await run_level(browser, url, 1, seconds, None)
        await browser.close()
    return result


async def run_all(
    url: str, wav: Path, levels: list[int], seconds: dict[int, float], reports: Path, per_turn_s: float
) -> dict:
    """Each level with its pages' turns together (the worst case), then, where there are several,
    staggered over one turn's period (people talking at their own moments): "N staggered"."""
    results = {}
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright, wav)
        for n in levels:
            print(f"==> {n} browser(s) for {seconds[n]:.0f} s", flush=True)
            shot = reports / "gateway_app.png" if n == levels[0] else None
            results[str(n)] = await run_level(browser, url, n, seconds[n], shot)
        for n in (n for n in levels if n > 1):
            print(f"==> {n} browser(s) staggered for {seconds[n]:.0f} s", flush=True)
            results[f"{n} staggered"] = await run_level(browser, url, n, seconds[n], None, per_turn_s / n)
        await browser.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seconds", type=float, default=0, help="run time per level (default: 48 turns)")
    parser.add_argument("--gap-s", type=float, default=3.5, help="silence after each request in the WAV")
    parser.add_argument(
        "--barge-ins", type=int, default=20, help="cycles of the interrupting script (0: no barge-in run)"
    )
    parser.add_argument(
        "--nlu-repository",
        type=Path,
        help=NLU_REPOSITORY_HELP + " (default: models/, else a quick build)",
    )
    parser.add_argument("--reports", type=Path, default=ROOT / "bench" / "reports")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".run" / "gateway_latency")
    parser.add_argument(
        "--report-only", action="store_true", help="write the report and plot again from the JSON"
    )
    args = parser.parse_args(argv)
    if args.report_only:
        data = json.loads((args.reports / "gateway_latency.json").read_text())
        plot(
            {n: {"turns": turns} for n, turns in data["turns"].items()}, args.reports / "gateway_latency.png"
        )
        write_report(args.reports, data)
        return 0
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    asr = find_model(MODELS["asr"], ROOT / "models")
    if asr is None:
        print("no trained asr_streaming in models/", file=sys.stderr)
        return 2
    sources = {
        MODELS["nlu"]: nlu_source(args.workdir, "auto", args.nlu_repository),
        MODELS["tts"]: ROOT / "models" / MODELS["tts"],
        MODELS["asr"]: asr,
        MODELS["second_pass"]: ROOT / "models" / MODELS["second_pass"],
    }
    repository = compose_repository(args.workdir / "repository", sources)
    mic = microphone_wav(args.workdir / "microphone.wav", list(REQUESTS), gap_s=args.gap_s)
    per_turn = mic.duration_s / len(REQUESTS)
    seconds = {n: args.seconds or per_turn * (48 / n + 2 + n) for n in args.levels}  # 40+ measured turns
    redis, redis_url = start_redis_server(args.workdir)
    load = [os.getloadavg()[0]]
    try:
        with open_meteo_server() as weather:
            settings = {"dialog_weather_url": weather, "dialog_time_zone": "UTC"}
            with SpeechStack(
                args.workdir, repository, list(sources), redis_url, dialog_env=settings
            ) as stack:
                gateway = GatewayProcess(
                    stack.dialogs[0].address,
                    args.workdir / "gateway.log",
                    gateway_tts_url=stack.services["tts"].address,  # the voice picker's list
                ).start()
                try:
                    results = asyncio.run(
                        run_all(gateway.url, mic.path, args.levels, seconds, args.reports, per_turn)
                    )
                    barge_run = None
                    if args.barge_ins:
                        script = microphone_wav(
                            args.workdir / "barge_in.wav", BARGE_IN_SCRIPT, gap_s=BARGE_IN_GAP_S
                        )
                        barge_s = script.duration_s * args.barge_ins + 5
                        barge_run = asyncio.run(run_barge_ins(gateway.url, script.path, barge_s))
                    overhead = gateway_overhead(gateway.metrics())
                    decodings = whisper_decodings(stack.services["asr"].metric_samples())
                finally:
                    gateway.stop()
    finally:
        redis.terminate()
    load.append(os.getloadavg()[0])
    data = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": "the shared 2-core CPU machine",
        "load": load,
        "levels": {str(n): summarize(r) for n, r in results.items()},
        "gateway": overhead,
        "whisper_decodings": decodings,
        "turns": {str(n): r["turns"] for n, r in results.items()},
        "barge_ins": {str(n): r["barge_ins"] for n, r in results.items()},
    }
    if barge_run is not None:
        data["barge_in_run"] = {"cycles": args.barge_ins, **summarize(barge_run)}
        data["barge_ins"]["interrupting script"] = barge_run["barge_ins"]
        (args.workdir / "probes-barge-in.json").write_text(json.dumps(barge_run.pop("probes")))
    for n, r in results.items():  # what the pages recorded, to measure again without a rerun
        (args.workdir / f"probes-{n}.json").write_text(json.dumps(r.pop("probes")))
    args.reports.mkdir(parents=True, exist_ok=True)
    (args.reports / "gateway_latency.json").write_text(json.dumps(data, indent=1))
    plot(results, args.reports / "gateway_latency.png")
    write_report(args.reports, data)
    print(json.dumps(data["levels"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
