"""`python -m bench.grpc_cancel_leak`: does a grpc.aio client keep memory for every call it stops
waiting for? (issue #18: the ASR service's RSS grew about 1 KiB a recognition in the 60-minute soak)

A grpc.aio server (in a process of its own) answers a unary method after `--server-ms`; a client
process makes `--calls` calls, `--concurrency` at a time, each sending `--size` bytes, and ends them
one way per mode (each mode in a fresh client process):
- `complete`: awaits the answer.
- `deadline`: the call's own deadline (`timeout=`) ends it before the answer (DEADLINE_EXCEEDED).
- `cancel`: `asyncio.wait_for` gives up on the call before the answer (cancels the awaiting task),
  as the ASR service's second pass did when a speculative pass was dropped or late.
- `call-cancel`: `call.cancel()` on the call object before the answer.
- `uncancelled`: `asyncio.wait_for` gives up as in `cancel`, but on a call started through
  `rivulet.core.grpc_calls.CallsInFlight.uncancelled` (what every Triton call of the services now
  goes through): the call runs on to its answer.
The client's VmRSS after gc and glibc's malloc_trim at each tenth of the calls; the report gives the
growth per call over the last 80 % (the first fifth is warm-up). Writes
bench/reports/grpc_cancel_leak.{md,json,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import grpc

from bench.report_files import write_report_files
from bench.soak import _rss_mib
from rivulet.core.grpc_calls import CallsInFlight
from rivulet.core.processes import free_port

MODES = ("complete", "deadline", "cancel", "call-cancel", "uncancelled")
METHOD = "/rivulet.bench.Slow/Answer"


async def serve(port: int, server_ms: float) -> None:
    async def answer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await asyncio.sleep(server_ms / 1000)
        return b"x" * 2000

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(answer)
    service = grpc.method_handlers_generic_handler("rivulet.bench.Slow", {"Answer": handler})
    server.add_generic_rpc_handlers((service,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("serving", flush=True)
    await server.wait_for_termination()


async def client(port: int, mode: str, calls: int, concurrency: int, size: int, give_up_ms: float) -> list:
    """Runs `calls` calls ended the `mode` way; returns [(calls done, RSS MiB)] at each tenth."""
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    method = channel.unary_unary(METHOD)
    payload, give_up = b"a" * size, give_up_ms / 1000
    in_flight, limit = CallsInFlight(), asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with limit:
            if mode == "complete":
                await method(payload)
            elif mode == "deadline":
                try:
                    await method(payload, timeout=give_up)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                        raise
            elif mode == "call-cancel":
                call = method(payload)
                await asyncio.sleep(give_up)
                call.cancel()
                try:
                    await call
                except asyncio.CancelledError:
                    pass
            else:
                started = method(payload) if mode == "cancel" else in_flight.uncancelled(method(payload))
                try:
                    await asyncio.wait_for(started, give_up)
                except TimeoutError:
                    pass

    samples = []
    step = calls // 10
    for done in range(0, calls + 1, step):
        if done:
            await asyncio.gather(*(one() for _ in range(step)))
        await in_flight.wait(10.0)
        gc.collect()
        _release_free_heap()
        samples.append((done, _rss_mib(os.getpid())))
        print(json.dumps({"mode": mode, "calls": done, "rss_mib": round(samples[-1][1], 2)}), flush=True)
    await channel.close()
    return samples


def _release_free_heap() -> None:
    """Hand the heap's free pages back to the system (glibc `malloc_trim`), so that RSS counts what is
    still allocated: a busy moment's high-water mark (calls given up pile up while the machine is
    slow, and freed memory stays mapped) would otherwise read as growth. Elsewhere: a no-op."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def per_call_bytes(samples: list) -> float:
    """RSS growth per call over the last 80 % of the calls (the first fifth is warm-up)."""
    (c0, r0), (c1, r1) = samples[2], samples[-1]
    return (r1 - r0) * 1024 * 1024 / max(c1 - c0, 1)


def measure(mode: str, port: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "bench.grpc_cancel_leak", "--client", mode, "--port", str(port)]
    for key in ("calls", "concurrency", "size", "give_up_ms"):
        command += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    samples = [(row["calls"], row["rss_mib"]) for row in map(json.loads, out.splitlines())]
    return {"mode": mode, "samples": samples, "bytes_per_call": per_call_bytes(samples)}


def report_lines(results: list[dict], args: argparse.Namespace) -> list[str]:
    lines = [
        "# grpc.aio: memory kept by calls the client stops waiting for",
        "",
        f"`python -m bench.grpc_cancel_leak --calls {args.calls} --concurrency {args.concurrency} "
        f"--size {args.size} --give-up-ms {args.give_up_ms:g} --server-ms {args.server_ms:g}` "
        f"(grpcio {grpc.__version__}): the client process's RSS after gc, by how each call ended.",
        "",
        "| mode | RSS at start | after 20 % | end | growth per call (last 80 %) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        s = r["samples"]
        lines.append(
            f"| {r['mode']} | {s[0][1]:.1f} MiB | {s[2][1]:.1f} MiB | {s[-1][1]:.1f} MiB | "
            f"{r['bytes_per_call']:.0f} B |"
        )
    lines += ["", "![RSS by calls](grpc_cancel_leak.png)", ""]
    return lines


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in results:
        calls, rss = zip(*r["samples"], strict=True)
        ax.plot(calls, rss, marker="o", label=f"{r['mode']} ({r['bytes_per_call']:.0f} B/call)")
    ax.set_xlabel("calls")
    ax.set_ylabel("client VmRSS (MiB)")
    ax.set_title(f"grpc.aio client memory by how calls end (grpcio {grpc.__version__})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--size", type=int, default=20_000, help="request bytes")
    parser.add_argument("--give-up-ms", type=float, default=10.0, help="when a call is given up")
    parser.add_argument("--server-ms", type=float, default=50.0, help="how long the server takes")
    parser.add_argument("--report", default="grpc_cancel_leak", help="report name ('' writes none)")
    parser.add_argument("--client", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.port, args.server_ms))
        return 0
    if args.client:
        asyncio.run(client(args.port, args.client, args.calls, args.concurrency, args.size, args.give_up_ms))
        return 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.grpc_cancel_leak", "--serve", "--port", str(port),
         "--server-ms", str(args.server_ms)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "serving"
        results = []
        for mode in args.modes:
            results.append(measure(mode, port, args))
            print(f"{mode}: {results[-1]['bytes_per_call']:.0f} bytes per call", flush=True)
    finally:
        server.terminate()
        server.wait(10)
    if args.report:
        data = {"grpcio": grpc.__version__, "settings": vars(args), "results": results}
        path = write_report_files(args.report, report_lines(results, args), data, lambda p: plot(results, p))
        print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
