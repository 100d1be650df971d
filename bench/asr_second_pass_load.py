"""Streaming finals under load, with the second-pass admission limit and without it.

    python -m bench.asr_second_pass_load [--levels 1 2 4 8 16] [--seconds 30]

N streams at once, each streaming held-out real speakers' clips of at most 5 s back to back at
real-time pace in 100 ms messages (`pipelines.asr.real_speech` test split: AN4, one-word commands,
accented alphanumerics, FSDD; `bench.asr_real_speech.stream_once`). Two stacks side by side
(tritonserver + ASR service each, `asr_streaming` + `asr_whisper`), measured level by level in
turn so other load falls on both alike: "limit" is the service as configured (the adaptive limit on
second passes in flight, `asr_second_pass_max_in_flight` 32), "no limit" sets it to 0 (every pass
sent, the behaviour before the limit); "speculate at 60 ms" starts every speculative pass at the
first 60 ms of silence however busy Whisper is (before 2026-12-07, the service waits for 240 ms of
silence while a pass is in flight). Per level: end of audio → last final p50/p95/p99, the share
of finals Whisper wrote (the rest are the streaming model's: its pass was refused, late or failed),
and the WER of the finals (canonical form, `pipelines.asr.canonical`), so the trade-off shows.
Writes bench/reports/asr_second_pass_load.{md,json,png}.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import re
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.asr_real_speech import MODELS, load, score, stream_once
from bench.cpu_share import CpuShare, table_lines
from bench.local_stack import service_stack
from bench.report_files import REPORTS, write_report_files
from pipelines.asr import real_speech
from rivulet.core.processes import free_port, metric_samples

CONFIGS = {  # --configs: the service's settings for each
    "limit": {},  # as configured
    "no limit": {"asr_second_pass_max_in_flight": 0},
    **{f"target {ms} ms": {"asr_second_pass_target_ms": ms} for ms in (150, 300, 500, 1000)},
    "speculate at 60 ms": {  # as before 2026-12-07
        "asr_second_pass_speculate_after_ms": 60,
        "asr_second_pass_busy_speculate_after_ms": 60,
    },
    **{f"idle speculate {ms} ms": {"asr_second_pass_speculate_after_ms": ms} for ms in (30, 60)},
    **{f"busy speculate {ms} ms": {"asr_second_pass_busy_speculate_after_ms": ms} for ms in (240, 400)},
    **{  # every speculation at this silence, however idle Whisper is
        f"speculate {ms} ms": {
            "asr_second_pass_busy_passes": 0,
            "asr_second_pass_busy_speculate_after_ms": ms,
        }
        for ms in (120, 240)
    },
    **{f"busy at {n}": {"asr_second_pass_busy_passes": n} for n in (0, 1, 2, 4)},
    # a copy of the model repository whose asr_whisper runs N instances (N batches at once), its
    # parameters as given
    "whisper x1": {"whisper_instances": 1},
    "before 2026-12-07": {  # one Whisper instance on 2 threads, every speculation at 60 ms
        "whisper_instances": 1,
        "whisper_parameters": {"cpu_threads": "2"},
        "asr_second_pass_speculate_after_ms": 60,
        "asr_second_pass_busy_speculate_after_ms": 60,
    },
    "whisper x2": {"whisper_instances": 2},
    "whisper x3": {"whisper_instances": 3},
    "whisper x2, 1 thread each": {"whisper_instances": 2, "whisper_parameters": {"cpu_threads": "1"}},
    "whisper x2, speculate at 60 ms": {
        "whisper_instances": 2,
        "asr_second_pass_speculate_after_ms": 60,
        "asr_second_pass_busy_speculate_after_ms": 60,
    },
}
# where Whisper's time went in a level: the ASR service's counters, as differences over the level
PASS_COUNTERS = {
    "rivulet_asr_speculative_passes_total": "outcome",  # used | dropped
    "rivulet_asr_whisper_decodings_total": "decoding",  # cut_window | whole_window_again | ...
    "rivulet_asr_second_passes_refused_total": "",
}
MAX_CLIP_S = 5.0
GOAL_P95_MS = 500.0


def clip_pool(per_set: int, split: str = "test") -> list[tuple[str, np.ndarray]]:
    """(reference, samples) of one split's clips ≤ 5 s, the sets interleaved."""
    by_set = []
    for name in real_speech.SETS:
        picked = [(c.text, load(c)) for c in real_speech.sample(real_speech.clips(name, split), per_set)]
        by_set.append([(t, s) for t, s in picked if len(s) <= MAX_CLIP_S * 16000])
    return [clip for group in itertools.zip_longest(*by_set) for clip in group if clip is not None]


def folder_name(label: str) -> str:
    """A configuration's label as a file name."""
    return re.sub(r"[^\w.-]+", "-", label)


def repository_for(label: str, workdir: Path) -> tuple[Path, dict]:
    """The model repository configuration `label` serves and its service settings: the project's, or
    a copy (the model folders linked) whose asr_whisper config runs `whisper_instances` instances with
    `whisper_parameters` changed."""
    settings = dict(CONFIGS[label])
    instances = settings.pop("whisper_instances", None)
    parameters = settings.pop("whisper_parameters", {})
    if instances is None and not parameters:
        return MODELS, settings
    repo = workdir / f"repository-{folder_name(label)}"
    (repo / "asr_whisper").mkdir(parents=True, exist_ok=True)
    for model in ("asr_streaming",):
        link = repo / model
        if not link.exists():
            link.symlink_to((MODELS / model).resolve())
    version = repo / "asr_whisper" / "1"
    if not version.exists():
        version.symlink_to((MODELS / "asr_whisper" / "1").resolve())
    config = (MODELS / "asr_whisper" / "config.pbtxt").read_text()
    if instances is not None:
        config, n = re.subn(r"count: \d+", f"count: {instances}", config)
        assert n == 1, "asr_whisper's config has no single instance count"
    for key, value in parameters.items():
        pattern = rf'(key: "{key}" value: {{ string_value: )"[^"]*"'
        config, n = re.subn(pattern, rf'\1"{value}"', config)
        assert n == 1, f"asr_whisper's config has no parameter {key}"
    (repo / "asr_whisper" / "config.pbtxt").write_text(config)
    return repo, settings


def pass_counts(metrics_port: int) -> Counter:
    """The ASR service's second-pass counters now, keyed 'metric' or 'metric:label'."""
    counts: Counter = Counter()
    for sample in metric_samples(metrics_port):
        if sample.name in PASS_COUNTERS:
            name = sample.name.removeprefix("rivulet_asr_").removesuffix("_total")
            label = sample.labels.get(PASS_COUNTERS[sample.name], "")
            counts[f"{name}:{label}" if label else name] += sample.value
    return counts


def level(asr, pool: list[tuple[str, np.ndarray]], streams: int, seconds: float, offset: int) -> dict:
    deadline = time.perf_counter() + seconds

    def worker(k: int) -> list[tuple[str, float | None, str, str]]:
        got, i = [], offset + k
        time.sleep(k * 0.8 / streams)  # spread the streams' starts over 0.8 s
        while time.perf_counter() < deadline:
            ref, samples = pool[i % len(pool)]
            got.append((ref, *stream_once(asr, samples)))
            i += streams
        return got

    with ThreadPoolExecutor(streams) as threads:
        done = [x for got in threads.map(worker, range(streams)) for x in got]
    ms = np.array([s for _, s, _, _ in done if s is not None]) * 1000
    passes = [p for _, _, written, _ in done for p in written.split(",") if p]
    wer = score([r for r, *_ in done], [t for *_, t in done])
    pct = (lambda q: float(np.percentile(ms, q))) if len(ms) else (lambda q: float("nan"))
    return {
        "streams": streams,
        "utterances": len(done),
        "no_final": sum(s is None for _, s, _, _ in done),
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "whisper_finals": passes.count("whisper"),
        "streaming_finals": passes.count("streaming"),
        "whisper_share": passes.count("whisper") / max(len(passes), 1),
        "wer": wer["wer"],
        "utterances_right": wer["utterances_right"],
    }


def plot(rows: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for label, marker in zip(dict.fromkeys(r["config"] for r in rows), "os^vD", strict=False):
        mine = [r for r in rows if r["config"] == label]
        x = [r["streams"] for r in mine]
        axes[0].plot(x, [r["p95_ms"] for r in mine], marker=marker, label=f"{label} p95")
        axes[0].plot(x, [r["p50_ms"] for r in mine], marker=marker, linestyle=":", label=f"{label} p50")
        axes[1].plot(x, [100 * r["whisper_share"] for r in mine], marker=marker, label=label)
        axes[2].plot(x, [100 * r["wer"] for r in mine], marker=marker, label=label)
    axes[0].axhline(GOAL_P95_MS, color="grey", linestyle="--", linewidth=0.8, label="goal p95 500 ms")
    axes[0].set_ylabel("end of audio → final (ms)")
    axes[1].set_ylabel("finals written by Whisper (%)")
    axes[2].set_ylabel("WER of the finals (%)")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent real-time streams")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Streaming finals under load, held-out real speakers (2 CPU cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cpu_lines(rows: list[dict]) -> list[str]:
    """Where the cores went in each level (`bench.cpu_share`)."""
    table = table_lines(
        [((r["streams"], r["config"]), r.get("cpu", {})) for r in rows], ["streams", "config"]
    )
    if not table:
        return []
    return [
        'CPU over each level (cores used on average; `bench.cpu_share`; "bench" is the streams\' clients):',
        "",
        *table,
    ]


def report_lines(rows: list[dict], args: argparse.Namespace, clips: int) -> list[str]:
    lines = [
        f"# Streaming finals under load: the second-pass admission limit ({args.split} speakers)",
        "",
        f"`python -m bench.asr_second_pass_load --split {args.split} --name {args.name} "
        f"--levels {' '.join(map(str, args.levels))} "
        f"--seconds {args.seconds:g} --configs {' '.join(repr(c) for c in args.configs)}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): {clips} clips "
        f"≤ 5 s by real speakers of the {args.split} split "
        f"({'held out: never trained or tuned on' if args.split == 'test' else 'the tuning speakers'}), "
        "streamed back to back at real-time pace. "
        '"limit": the service as configured (adaptive limit on second passes in flight, ceiling 32); '
        '"no limit": `RIVULET_ASR_SECOND_PASS_MAX_IN_FLIGHT=0`, every pass sent; "target N ms": '
        '`RIVULET_ASR_SECOND_PASS_TARGET_MS=N`; "speculate at 60 ms": '
        "`RIVULET_ASR_SECOND_PASS_BUSY_SPECULATE_AFTER_MS=60`, every speculation at the first 60 ms of "
        'silence, however busy Whisper is (before 2026-12-07); "busy at N": '
        "`RIVULET_ASR_SECOND_PASS_BUSY_PASSES=N`. Speculations used / dropped, refused passes and "
        "passes decoded again in the whole window: the ASR service's counters over the level. Client, "
        "services and the tritonservers share this machine's cores.",
        "",
        f"![finals under load]({args.name}.png)",
        "",
        "| streams | config | utterances | final p50 / p95 / p99 (ms) | finals by Whisper | WER | right "
        "| speculations used / dropped | refused | decoded again in 30 s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        passes = r.get("passes", {})
        lines.append(
            f"| {r['streams']} | {r['config']} | {r['utterances']} | {r['p50_ms']:.0f} / {r['p95_ms']:.0f} / "
            f"{r['p99_ms']:.0f} | {100 * r['whisper_share']:.0f} % ({r['whisper_finals']}/"
            f"{r['whisper_finals'] + r['streaming_finals']}) | {100 * r['wer']:.1f} % | "
            f"{100 * r['utterances_right']:.0f} % | {passes.get('speculative_passes:used', 0):.0f} / "
            f"{passes.get('speculative_passes:dropped', 0):.0f} | "
            f"{passes.get('second_passes_refused', 0):.0f} | "
            f"{passes.get('whisper_decodings:whole_window_again', 0):.0f} |"
        )
    lines += ["", *cpu_lines(rows)]
    held = {
        label: max(
            [r["streams"] for r in rows if r["config"] == label and r["p95_ms"] < GOAL_P95_MS], default=0
        )
        for label in dict.fromkeys(r["config"] for r in rows)
    }
    lines += [
        "",
        "Most streams with final p95 < 500 ms: "
        + ", ".join(f"{label} **{n or 'none of the levels measured'}**" for label, n in held.items())
        + " (a final by the streaming model is fast and less accurate: read it with the Whisper share "
        "and the WER).",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--seconds", type=float, default=30.0, help="per level and configuration")
    parser.add_argument("--per-set", type=int, default=40)
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=["limit", "no limit"])
    parser.add_argument("--log-dir", type=Path, default=Path(".run/bench-asr-load"))
    parser.add_argument("--reports", type=Path, default=REPORTS)
    parser.add_argument(
        "--split", choices=("test", "dev"), default="test", help="dev: the speakers settings are chosen on"
    )
    parser.add_argument("--name", default="asr_second_pass_load", help="the report's file name")
    args = parser.parse_args(argv)
    import riva.client

    pool = clip_pool(args.per_set, args.split)
    print(f"{len(pool)} clips ≤ {MAX_CLIP_S:g} s", flush=True)
    rows: list[dict] = []
    models = ("asr_streaming", "asr_whisper")
    metrics_ports = {c: free_port() for c in args.configs}
    with contextlib.ExitStack() as stack:
        clients = {}
        for label in args.configs:
            log_dir = args.log_dir / folder_name(label)
            repository, settings = repository_for(label, args.log_dir)
            address = stack.enter_context(
                service_stack(
                    "rivulet.asr", repository, log_dir, models,
                    settings={**settings, "metrics_port": metrics_ports[label]}, only_these_models=True,
                )
            )  # fmt: skip
            clients[label] = riva.client.ASRService(riva.client.Auth(uri=address))
        for client in clients.values():
            level(client, pool, 2, 4.0, 0)  # warm up
        for n, streams in enumerate(args.levels):
            for label, client in clients.items():
                before, usage = pass_counts(metrics_ports[label]), CpuShare()
                row = level(client, pool, streams, args.seconds, offset=n * 7)
                row["config"] = label
                row["passes"] = dict(pass_counts(metrics_ports[label]) - before)
                row["cpu"] = usage.cores()
                rows.append(row)
                print(
                    f"{streams:3d} streams [{label:8s}] {row['utterances']:4d} utterances  final p50/p95/p99 "
                    f"{row['p50_ms']:6.0f} / {row['p95_ms']:6.0f} / {row['p99_ms']:6.0f} ms  Whisper "
                    f"{100 * row['whisper_share']:3.0f} %  WER {100 * row['wer']:5.1f} %  {row['passes']}",
                    flush=True,
                )
    path = write_report_files(
        args.name,
        report_lines(rows, args, len(pool)),
        rows,
        lambda p: plot(rows, p),
        args.reports,
    )
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
