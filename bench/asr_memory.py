"""`python -m bench.asr_memory`: is the ASR service's memory retained per stream? (issue #18)

The ASR service runs in this process (ServerHost + AsrService) against a real tritonserver serving
asr_streaming and asr_whisper; CONC clients run N calls back to back (StreamingRecognize with interim
results and the Whisper final; every 5th a Recognize; every 7th a stream the client cancels after its
first response). At each of CHECK calls done: gc.collect(), then this process's RSS, the number of
live Python objects, asyncio tasks, the SequenceReleaser's tasks and the live instances of the
session classes. --trace adds a tracemalloc diff against the first checkpoint (slow: about 2x).

    python -m bench.asr_memory [--calls 1200] [--clients 16] [--check 100 300 600 900 1200] [--trace]

Prints a JSON row per checkpoint and writes bench/reports/asr_memory.{md,json}.
"""

import argparse
import asyncio
import collections
import gc
import json
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import grpc
from riva.proto import riva_asr_pb2 as rasr
from riva.proto import riva_asr_pb2_grpc

from bench.dialog_support import compose_repository, default_sources, user_speech
from bench.local_stack import serving_triton
from rivulet.core.tritonserver import TritonServer

REPORTS = Path(__file__).parent / "reports"
UTT = ("seven three nine", "set a timer for ten minutes", "turn on the kitchen lights")
WATCH = (
    "StreamSession",
    "AudioHistory",
    "SpeculativePass",
    "SecondPass",
    "TritonSequence",
    "Recognizer",
    "Task",
    "Future",
    "_Beam",
    "Hypothesis",
    "LexiconSearch",
    "PcmDecoder",
    "SilenceTracker",
    "WhisperResult",
    "InferInput",
    "InferResult",
    "_AioCall",
    "_StreamingResponseCallAioCall",
    "ndarray",
)


def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def counts():
    c = collections.Counter(type(o).__name__ for o in gc.get_objects())
    return {k: c.get(k, 0) for k in WATCH}, len(gc.get_objects())


async def run(N: int, CONC: int, CHECK: list[int], TRACE: bool) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="asrmem-"))
    src = {k: v for k, v in default_sources().items() if k in ("asr_streaming", "asr_whisper")}
    repo = compose_repository(tmp / "repo", src)
    with serving_triton(repo, tmp, tuple(src), only_these_models=True, timeout_s=600) as tri:
        return await measure(tri, repo, N, CONC, CHECK, TRACE)


async def measure(tri: TritonServer, repo: Path, N: int, CONC: int, CHECK: list[int], TRACE: bool) -> dict:
    os.environ.update(
        RIVULET_TRITON_URL=tri.grpc_url,
        RIVULET_GRPC_PORT="0",
        RIVULET_METRICS_PORT="0",
        RIVULET_ASR_MODEL_REPOSITORY=str(repo),
        RIVULET_READINESS_INTERVAL_S="0.2",
        RIVULET_ASR_SECOND_PASS_TIMEOUT_MS="60000",
    )
    from rivulet.asr.service import AsrService
    from rivulet.asr.settings import AsrSettings
    from rivulet.core.server import ServerHost

    settings = AsrSettings()
    svc = AsrService(settings)
    host = ServerHost(settings, [svc])
    port = await host.start()
    for _ in range(100):
        if await svc.ready():
            break
        await asyncio.sleep(0.5)
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(ch)
    pcms = [user_speech(t)[0] for t in UTT]
    cfg = rasr.RecognitionConfig(encoding=1, sample_rate_hertz=16000, language_code="en-US")
    done = 0
    errors = collections.Counter()
    t0 = time.monotonic()
    report = []
    snap0 = None

    async def one(i):
        pcm = pcms[i % 3]
        if i % 5 == 4:
            await stub.Recognize(rasr.RecognizeRequest(config=cfg, audio=pcm))
            return

        async def reqs():
            yield rasr.StreamingRecognizeRequest(
                streaming_config=rasr.StreamingRecognitionConfig(config=cfg, interim_results=True)
            )
            for k in range(0, len(pcm), 3200):
                yield rasr.StreamingRecognizeRequest(audio_content=pcm[k : k + 3200])

        call = stub.StreamingRecognize(reqs())
        if i % 7 == 3:  # a client that goes away mid-stream
            async for _ in call:
                call.cancel()
                break
            return
        async for _ in call:
            pass

    counter = iter(range(N))

    async def worker():
        nonlocal done
        for i in counter:
            try:
                await one(i)
            except Exception as e:
                errors[type(e).__name__ + str(getattr(e, "code", lambda: "")())] += 1
            done += 1

    async def checker():
        nonlocal snap0
        for c in CHECK:
            while done < c:  # noqa: ASYNC110 (a poll every 0.2 s is plenty)
                await asyncio.sleep(0.2)
            await asyncio.sleep(0)  # count at this moment (others in flight)
            gc.collect()
            cnt, total = counts()
            row = dict(
                streams=c,
                t=round(time.monotonic() - t0),
                rss=round(rss(), 1),
                objs=total,
                tasks=len(asyncio.all_tasks()),
                releaser=len(svc.releaser._tasks),
                active=svc.servicer.active,
                **cnt,
            )
            print(json.dumps(row), flush=True)
            report.append(row)
            if TRACE:
                s = tracemalloc.take_snapshot().filter_traces(
                    [tracemalloc.Filter(False, tracemalloc.__file__)]
                )
                if snap0 is None:
                    snap0 = s
                else:
                    for st in s.compare_to(snap0, "lineno")[:12]:
                        print("  ", st, flush=True)

    if TRACE:
        tracemalloc.start(10)
    await asyncio.gather(checker(), *(worker() for _ in range(CONC)))
    await asyncio.sleep(2)
    gc.collect()
    cnt, total = counts()
    print(
        "idle",
        json.dumps(
            dict(
                rss=round(rss(), 1),
                objs=total,
                tasks=len(asyncio.all_tasks()),
                releaser=len(svc.releaser._tasks),
                active=svc.servicer.active,
                **cnt,
            )
        ),
    )
    print("errors", dict(errors))
    await ch.close()
    await host.stop() if hasattr(host, "stop") else None
    return {
        "checkpoints": report,
        "errors": dict(errors),
        "idle": {"rss": round(rss(), 1), "objs": total, **cnt},
    }


def write_report(result: dict, args: argparse.Namespace) -> None:
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "asr_memory.json").write_text(json.dumps(result, indent=1))
    rows = result["checkpoints"]
    lines = [
        "# ASR service memory per stream",
        "",
        f"`python -m bench.asr_memory --calls {args.calls} --clients {args.clients}`: live objects of the "
        "session classes and RSS after gc at each checkpoint (the calls in flight are still alive).",
        "",
        "| calls | RSS MiB | Python objects | StreamSession | TritonSequence | asyncio tasks |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['streams']} | {r['rss']} | {r['objs']} | {r['StreamSession']} | {r['TritonSequence']} | "
            f"{r['tasks']} |"
            for r in rows
        ),
        "",
        f"Idle after the last call: {result['idle']}. Errors: {result['errors'] or 'none'}.",
    ]
    (REPORTS / "asr_memory.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--check", type=int, nargs="+", default=[100, 300, 600, 900, 1200])
    parser.add_argument("--trace", action="store_true", help="tracemalloc diff at each checkpoint")
    args = parser.parse_args(argv)
    check = [c for c in args.check if c <= args.calls] or [args.calls]
    result = asyncio.run(run(args.calls, args.clients, check, args.trace))
    write_report(result, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
