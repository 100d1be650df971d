"""Task success of scripted multi-turn dialogs through the real stack.

    python -m bench.dialog_task_success                 # voice (if a trained ASR model exists) and text
    python -m bench.dialog_task_success --mode text     # typed turns only: NLU + policy, no ASR

Each dialog of bench/dialog_scripts.py (≥ 50; spoken by voices the ASR model never heard in
training) is played against the dialog service: spoken through `Converse` (user audio synthesized
and paced like a microphone) or typed through `TextTurn`. A dialog succeeds when the assistant ends
in the goal's action with the goal's slots (and so do its follow-ups). Typed runs of the same
dialogs separate ASR errors from NLU/policy errors. Writes bench/reports/dialog_task_success.{md,json,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import grpc

from bench.dialog_scripts import Script, check, scripts
from bench.dialog_support import (
    MODELS,
    SpeechStack,
    VoiceClient,
    compose_repository,
    find_model,
    open_meteo_server,
    user_speech,
)
from bench.report_files import command_line, write_report_files
from rivulet.core.processes import ROOT, start_redis_server
from rivulet.dialog.v1 import dialog_pb2 as pb
from rivulet.dialog.v1 import dialog_pb2_grpc

MAX_TURNS = 6
NLU_REPOSITORY_HELP = "a repository with a built intent_assistant, used as is (instead of --nlu-profile)"


def nlu_source(workdir: Path, profile: str, repository: Path | None = None) -> Path:
    """intent_assistant from `repository` when given; else from models/ when built there, else a
    pipeline build of `profile` (cached)."""
    if repository is not None:
        model = repository / MODELS["nlu"]
        if not (model / "config.pbtxt").is_file():
            raise SystemExit(f"--nlu-repository: no {MODELS['nlu']}/config.pbtxt in {repository}")
        return model
    found = find_model(MODELS["nlu"], ROOT / "models")
    if found and profile == "auto":
        return found
    repo = workdir / "nlu"
    build = [
        sys.executable,
        "-m",
        "pipelines.nlu",
        "build",
        "--dataset",
        "assistant",
        "--profile",
        "quick" if profile == "auto" else profile,
        "--repository",
        str(repo),
    ]
    subprocess.run(build, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return repo / MODELS["nlu"]


class Runner:
    """Plays one script; `say(text) -> (reply, transcript)` is the only mode-specific part."""

    def __init__(self, script: Script, today: dt.date) -> None:
        self.script, self.today = script, today
        self.log: list[dict] = []

    async def say(self, text: str) -> tuple[pb.Reply | None, str]:
        raise NotImplementedError

    async def reach(self, opening: str, goal) -> tuple[bool, str]:
        reply, heard = await self.say(opening)
        for _ in range(MAX_TURNS):
            self.log.append(
                {
                    "said": opening,
                    "heard": heard,
                    "reply": reply.text if reply else None,
                    "action": reply.action if reply else None,
                    "slots": dict(reply.action_slots) if reply else {},
                }
            )
            if reply is None:
                return False, "no reply (error or nothing heard)"
            if reply.expecting_slot:
                opening = self.script.answers.get(reply.expecting_slot)
                if opening is None:
                    return False, f"asked for {reply.expecting_slot}, which the script does not give"
            elif reply.expecting_confirmation:
                opening = "yes"
            else:
                ok = check(goal, reply.action, dict(reply.action_slots), self.today)
                return ok, "" if ok else f"ended in {reply.action} {dict(reply.action_slots)}"
            reply, heard = await self.say(opening)
        return False, "too many turns"

    async def run(self) -> dict:
        started = time.perf_counter()
        ok, why = await self.reach(self.script.opening, self.script.goal)
        for utterance, goal in self.script.follow_ups:
            if not ok:
                break
            ok, why = await self.reach(utterance, goal)
        return {
            "name": self.script.name,
            "skill": self.script.skill,
            "voice": self.script.voice,
            "success": ok,
            "failure": why,
            "turns": len(self.log),
            "seconds": round(time.perf_counter() - started, 2),
            "log": self.log,
        }


class TextRunner(Runner):
    def __init__(self, script: Script, today: dt.date, stub: dialog_pb2_grpc.DialogStub) -> None:
        super().__init__(script, today)
        self.stub, self.session_id = stub, f"ts-{uuid.uuid4().hex[:10]}"

    async def say(self, text: str) -> tuple[pb.Reply | None, str]:
        try:
            answer = await self.stub.TextTurn(
                pb.TextTurnRequest(session_id=self.session_id, text=text), timeout=30
            )
        except grpc.aio.AioRpcError:
            return None, text
        return answer.reply, text


class VoiceRunner(Runner):
    def __init__(self, script: Script, today: dt.date, client: VoiceClient, realtime: float) -> None:
        super().__init__(script, today)
        self.client, self.realtime = client, realtime

    async def say(self, text: str) -> tuple[pb.Reply | None, str]:
        pcm, end = await asyncio.to_thread(user_speech, text, self.script.voice)
        try:
            turn = await self.client.turn(pcm, end, timeout_s=15, realtime=self.realtime)
        except TimeoutError:
            return None, ""  # nothing was heard: no final transcript
        return turn.reply, turn.transcript


async def run_text(address: str, items: list[Script], today: dt.date) -> list[dict]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = dialog_pb2_grpc.DialogStub(channel)
        return [await TextRunner(s, today, stub).run() for s in items]


async def run_voice(address: str, items: list[Script], today: dt.date, realtime: float = 1.0) -> list[dict]:
    results = []
    for script in items:
        async with VoiceClient(address, f"vs-{uuid.uuid4().hex[:10]}", voice=False, barge_in=False) as client:
            try:
                results.append(await VoiceRunner(script, today, client, realtime).run())
            except (TimeoutError, AssertionError) as exc:
                results.append(
                    {
                        "name": script.name,
                        "skill": script.skill,
                        "voice": script.voice,
                        "success": False,
                        "failure": f"stream: {exc}"[:300],
                        "turns": 0,
                        "log": [],
                    }
                )
        done = results[-1]
        print(
            f"  voice {done['name']:16s} {'ok ' if done['success'] else 'FAIL'} {done['failure']}", flush=True
        )
    return results


def summarize(results: list[dict]) -> dict:
    by_skill: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        by_skill[r["skill"]].append(r["success"])
    return {
        "dialogs": len(results),
        "succeeded": sum(r["success"] for r in results),
        "success_rate": round(sum(r["success"] for r in results) / max(1, len(results)), 4),
        "turns": sum(r["turns"] for r in results),
        "by_skill": {k: {"dialogs": len(v), "succeeded": sum(v)} for k, v in sorted(by_skill.items())},
    }


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    skills = sorted({s for mode in summary.values() for s in mode["by_skill"]})
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(1, len(summary))
    for i, (mode, data) in enumerate(summary.items()):
        rates = [
            100
            * data["by_skill"].get(s, {}).get("succeeded", 0)
            / max(1, data["by_skill"].get(s, {}).get("dialogs", 1))
            for s in skills
        ]
        ax.bar(
            [x + i * width for x in range(len(skills))],
            rates,
            width,
            label=f"{mode}: {100 * data['success_rate']:.1f}% of {data['dialogs']}",
        )
    ax.set_xticks([x + width * (len(summary) - 1) / 2 for x in range(len(skills))], skills, rotation=30)
    ax.set_ylabel("dialogs reaching the goal (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Dialog task success by skill (scripted multi-turn dialogs)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_reports(out: Path, summary: dict, results: dict, meta: dict) -> None:
    lines = [
        "# Dialog task success",
        "",
        f"Run {meta['date']} on {meta['machine']}. "
        f"`{meta.get('command', 'python -m bench.dialog_task_success')}`.",
        "",
        f"Models: {meta['models']}.",
        "",
        "| mode | dialogs | reached the goal | success | user turns |",
        "|---|---|---|---|---|",
    ]
    for mode, data in summary.items():
        lines.append(
            f"| {mode} | {data['dialogs']} | {data['succeeded']} | {100 * data['success_rate']:.1f} % "
            f"| {data['turns']} |"
        )
    lines += [
        "",
        "By skill (succeeded / dialogs):",
        "",
        "| skill | " + " | ".join(summary) + " |",
        "|---|" + "---|" * len(summary),
    ]
    for skill in sorted({s for d in summary.values() for s in d["by_skill"]}):
        counts = [d["by_skill"].get(skill, {}) for d in summary.values()]
        cells = [f"{c.get('succeeded', 0)} / {c.get('dialogs', 0)}" for c in counts]
        lines.append(f"| {skill} | " + " | ".join(cells) + " |")
    lines += ["", "Failures:", ""]
    for mode, items in results.items():
        for r in items:
            if not r["success"]:
                heard = (
                    "; ".join(f"{t['said']!r}→{t['heard']!r}" for t in r["log"][:3])
                    if mode == "voice"
                    else ""
                )
                lines.append(f"- {mode} `{r['name']}` ({r['voice']}): {r['failure']} {heard}".rstrip())
    lines += ["", "![task success](dialog_task_success.png)", ""]
    data = {"meta": meta, "summary": summary, "dialogs": results}
    write_report_files("dialog_task_success", lines, data, lambda path: plot(summary, path), out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=("both", "voice", "text"), default="both")
    parser.add_argument(
        "--asr-repository",
        type=Path,
        default=ROOT / "models",
        help="model repository holding a trained asr_streaming",
    )
    parser.add_argument("--nlu-profile", default="auto", help="auto: models/ if built there, else quick")
    parser.add_argument("--nlu-repository", type=Path, help=NLU_REPOSITORY_HELP)
    parser.add_argument("--reports", type=Path, default=ROOT / "bench" / "reports")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".run" / "dialog_task_success")
    parser.add_argument("--limit", type=int, default=0, help="run only the first N dialogs")
    parser.add_argument(
        "--realtime", type=float, default=1.0, help="speed of the spoken audio (1 = real time)"
    )
    args = parser.parse_args(argv)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    items = scripts()
    items = items[: args.limit] if args.limit else items
    asr = find_model(MODELS["asr"], args.asr_repository)
    modes = ["text", "voice"] if args.mode == "both" else [args.mode]
    if "voice" in modes and asr is None:
        print(f"no trained asr_streaming in {args.asr_repository}: voice mode skipped", file=sys.stderr)
        modes.remove("voice")
        if not modes:
            return 2
    sources = {MODELS["nlu"]: nlu_source(args.workdir, args.nlu_profile, args.nlu_repository)}
    if asr is not None and "voice" in modes:
        sources[MODELS["asr"]] = asr
        sources[MODELS["second_pass"]] = ROOT / "models" / MODELS["second_pass"]  # Whisper: the finals
    repository = compose_repository(args.workdir / "repository", sources)
    redis, redis_url = start_redis_server(args.workdir)
    today = dt.datetime.now(dt.UTC).date()
    results: dict[str, list[dict]] = {}
    try:
        with open_meteo_server() as weather:
            settings = {"dialog_weather_url": weather, "dialog_time_zone": "UTC"}
            with SpeechStack(
                args.workdir, repository, list(sources), redis_url, dialog_env=settings
            ) as stack:
                address = stack.dialogs[0].address
                for mode in modes:
                    print(f"== {mode}: {len(items)} dialogs", flush=True)
                    if mode == "text":
                        results[mode] = asyncio.run(run_text(address, items, today))
                    else:
                        results[mode] = asyncio.run(run_voice(address, items, today, args.realtime))
    finally:
        redis.terminate()
    summary = {mode: summarize(r) for mode, r in results.items()}
    build = (
        json.loads((sources[MODELS["nlu"]] / "1" / "build.json").read_text())
        if (sources[MODELS["nlu"]] / "1" / "build.json").exists()
        else {}
    )
    meta = {
        "command": command_line("bench.dialog_task_success", argv),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": "2-core CPU, shared",
        "models": f"intent_assistant ({build.get('profile', 'models/')} profile), "
        f"asr_streaming ({'from ' + str(asr) if 'voice' in modes else 'not used'})",
        "voices": sorted({s.voice for s in items}),
    }
    write_reports(args.reports, summary, results, meta)
    for mode, data in summary.items():
        print(
            f"{mode}: {data['succeeded']}/{data['dialogs']} dialogs reached their goal "
            f"({100 * data['success_rate']:.1f} %)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
