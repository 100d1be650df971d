"""`python -m bench.triton_stream_memory`: tritonserver's RSS over thousands of TTS replies, each a
`ModelStreamInfer` stream to the decoupled `tts_embedded` model, by how the client ends the stream.

Modes (each on a fresh tritonserver serving only `tts_embedded`):
- `clean`: `rivulet.tts.synthesis.TritonSynthesizer.stream` as the TTS service uses it: read to the
  FINAL piece, then let Triton end the stream (status OK).
- `cancel-after-final`: what the service did before issue #18: read to the FINAL piece, then cancel
  the gRPC stream.
- `barge-in`: stop after the first piece of a long reply, as the synthesizer does it: the consumer
  gets nothing more at once and the stream is drained in the background until Triton ends it; a
  new reply starts when fewer than `--concurrency` streams (draining ones included) are open.
- `barge-in-cancel`: the client before the drain: the stream is cancelled mid-reply after the
  first piece. Back-to-back mid-reply cancels can crash or stall tritonserver 2.51 (gRPC
  cancellation races, README "Soak").
A stall (no piece for 10 s: DEADLINE_EXCEEDED) or a crash (UNAVAILABLE) ends a mode's run; the
report says after how many replies. Barge-in modes also report how the streams ended (the
synthesizer's `rivulet_tts_triton_streams_total`) and how long stopping a reply took.

Each reply speaks "Sure. what time is it." (barge-in: a 14-piece text) with `English-US.Male-2`;
`--concurrency` replies are in flight at once. tritonserver's VmRSS is sampled every 0.25 s and the
report gives it at the start, after each quarter of the replies, and the growth per reply over the
last three quarters (the first quarter is warm-up). Writes bench/reports/<report>.{md,json,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput, InferRequestedOutput

from bench.report_files import write_report_files
from bench.soak import _rss_mib
from rivulet.core.metrics import TTS_STREAM_ENDINGS
from rivulet.core.processes import ROOT, free_port
from rivulet.core.tritonserver import TritonServer
from rivulet.tts.catalog import TtsVoice
from rivulet.tts.synthesis import OUTPUTS, TritonSynthesizer

MODES = ("clean", "cancel-after-final", "barge-in", "barge-in-cancel")
VOICE = TtsVoice("tts_embedded", "English-US", "Male-2", "en-US", 16000)
SHORT = json.dumps([{"text": "Sure. what time is it."}])
LONG = json.dumps([{"text": "Sure. " + "the quick brown fox jumps over the lazy dog, " * 12 + "the end."}])


def _string(name: str, value: str) -> InferInput:
    tensor = InferInput(name, [1], "BYTES")
    tensor.set_data_from_numpy(np.array([value.encode()], dtype=object))
    return tensor


def _open_stream(client: triton_aio.InferenceServerClient, script: str):
    request = {
        "model_name": VOICE.model,
        "inputs": [_string("VOICE", VOICE.subvoice), _string("SCRIPT", script)],
        "outputs": [InferRequestedOutput(name) for name in OUTPUTS],
        "request_id": uuid.uuid4().hex,
    }

    async def requests():
        yield request

    return client.stream_infer(requests())


async def cancel_after_final(client: triton_aio.InferenceServerClient) -> None:
    """The pre-#18 client: the stream is cancelled in `finally`, also after the FINAL piece."""
    responses = _open_stream(client, SHORT)
    try:
        while True:
            result, error = await anext(responses)
            if error is not None:
                raise error
            if bool(result.as_numpy("FINAL").reshape(-1)[0]):
                return
    finally:
        responses.cancel()


async def cancel_mid_reply(client: triton_aio.InferenceServerClient) -> None:
    """The client before the drain: a barge-in cancels the stream after the first piece."""
    responses = _open_stream(client, LONG)
    try:
        _result, error = await asyncio.wait_for(anext(responses), 10.0)
        if error is not None:
            raise error
    finally:
        responses.cancel()


async def one_reply(mode: str, synthesizer: TritonSynthesizer, stops: list[float], concurrency: int) -> None:
    if mode == "cancel-after-final":
        await cancel_after_final(synthesizer._client)
        return
    if mode == "barge-in-cancel":
        await cancel_mid_reply(synthesizer._client)
        return
    pieces = synthesizer.stream(VOICE, LONG if mode == "barge-in" else SHORT, uuid.uuid4().hex)
    try:
        async for _ in pieces:
            if mode == "barge-in":
                break
    finally:
        stopped = time.perf_counter()
        await pieces.aclose()
        stops.append(time.perf_counter() - stopped)
    await synthesizer.wait_open_below(concurrency)  # draining streams count against the concurrency


def _endings() -> dict[str, float]:
    return {
        s.labels["ending"]: s.value
        for m in TTS_STREAM_ENDINGS.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }


async def measure(mode: str, replies: int, concurrency: int, workdir: Path) -> dict:
    repository = workdir / "repository"
    if not repository.exists():
        shutil.copytree(ROOT / "models" / "tts_embedded", repository / "tts_embedded",
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    ports = {"grpc_port": free_port(), "http_port": free_port(), "metrics_port": free_port()}
    with TritonServer(repository, **ports, log_file=workdir / f"tritonserver-{mode}.log") as triton:
        triton.wait_ready([VOICE.model])
        pid = triton.process.pid
        synthesizer = TritonSynthesizer(triton.grpc_url)
        done, samples, slots, stops, failure = 0, [], asyncio.Semaphore(concurrency), [], ""
        endings_before = _endings()

        async def reply() -> None:
            nonlocal done, failure
            async with slots:
                if failure:
                    return
                try:
                    await one_reply(mode, synthesizer, stops, concurrency)
                except Exception as exc:  # a stall or a crash: the run ends here
                    failure = failure or f"after {done} replies: {type(exc).__name__}: {exc}"
                    return
                done += 1

        async def sample() -> None:
            while True:
                samples.append((done, _rss_mib(pid)))
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        began = time.monotonic()
        await asyncio.gather(*(reply() for _ in range(replies)))
        seconds = time.monotonic() - began
        await asyncio.sleep(2.0)  # anything Triton frees after the last reply
        samples.append((done, _rss_mib(pid)))
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await synthesizer.close()
        alive = triton.process.poll() is None
    endings = {k: int(v - endings_before.get(k, 0)) for k, v in _endings().items()}
    replies = done if failure else replies
    marks = [samples[0]] + [next(p for p in samples if p[0] >= replies * q / 4) for q in (1, 2, 3)]
    marks.append(samples[-1])
    warm, end = marks[1], marks[-1]
    return {
        "mode": mode,
        "replies": replies,
        "seconds": round(seconds, 1),
        "rss_mib_at": [[d, round(r, 1)] for d, r in marks],
        "kib_per_reply_after_warmup": round((end[1] - warm[1]) * 1024 / max(1, end[0] - warm[0]), 2),
        "failure": failure,
        "tritonserver_alive_at_end": alive,
        "stream_endings": {k: v for k, v in endings.items() if v},
        "stop_ms_p50_max": [round(1000 * float(np.median(stops)), 2), round(1000 * max(stops), 2)]
        if stops
        else None,
        "samples": samples,
    }


def report_lines(results: list[dict], concurrency: int, name: str) -> list[str]:
    lines = [
        "# tritonserver RSS per TTS reply, by how the stream ends",
        "",
        f"`python -m bench.triton_stream_memory`: {concurrency} replies in flight, a fresh tritonserver"
        f" (2.51.0, the pytriton wheel's) per mode serving `tts_embedded`. ![rss]({name}.png)",
        "",
        "| mode | replies | s | RSS at start → ¼ → ½ → ¾ → end (MiB) | growth after the first ¼ |"
        " failure | streams ended | stop p50 / max (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rss = " → ".join(f"{m:.1f}" for _, m in r["rss_mib_at"])
        lines.append(
            f"| {r['mode']} | {r['replies']:,} | {r['seconds']} | {rss} | "
            f"{r['kib_per_reply_after_warmup']:.2f} KiB/reply | {r['failure'] or 'none'} | "
            f"{r['stream_endings'] or '-'} | {r['stop_ms_p50_max'] or '-'} |"
        )
    return [*lines, ""]


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in results:
        done, rss = zip(*r["samples"], strict=True)
        ax.plot(done, rss, label=r["mode"])
    ax.set_xlabel("replies completed")
    ax.set_ylabel("tritonserver RSS (MiB)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["clean", "cancel-after-final"])
    parser.add_argument("--replies", type=int, default=8000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--report", default="triton_stream_memory")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="rivulet-streammem-") as tmp:
        for mode in args.modes:
            results.append(asyncio.run(measure(mode, args.replies, args.concurrency, Path(tmp))))
            print({k: v for k, v in results[-1].items() if k != "samples"}, flush=True)
    lines = report_lines(results, args.concurrency, args.report)
    path = write_report_files(args.report, lines, results, lambda p: plot(results, p))
    print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
