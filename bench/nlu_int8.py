"""The int8 graph the CPU serves against the float graph of the same intent model: accuracy on every
dev and test set, and the serving runtime's time per query, interleaved.

    python -m bench.nlu_int8 VERSION_DIR [--rounds 2] [--name nlu_int8] [--no-probe]

VERSION_DIR is a built `intent_assistant/1` (`python -m pipelines.nlu build`); a build from before
the int8 graph gets one written here (`pipelines.nlu.export.quantize_int8`, as the build does). Both
graphs are scored through `IntentSlotRuntime` (split, tokenize, onnxruntime, BIO decoding, the
out-of-scope decision) on the splits the build's recipe held out; then each SNIPS test query goes
through `analyze` on one graph and the other, alternating which goes first, on one onnxruntime
thread. Last, the quantization variants are compared by a measure that reads no test set and no
label: how often each one's decision (best intent, out of scope included) differs from the float
graph's on ATIS' sentences (train, dev and test: never trained on by the assistant model, mostly out
of its scope). Prints the figures and writes bench/reports/<name>.{md,json,png}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.nlu_runtime_ab import interleaved_times
from bench.report_files import write_report_files
from pipelines.build_steps import cpu_info
from pipelines.nlu.corpus import load_corpus
from pipelines.nlu.evaluate import evaluate_runtime
from pipelines.nlu.export import quantize_int8
from pipelines.nlu.runtime import intent_slot

GRAPHS = ("fp32", "int8")
# onnxruntime quantize_dynamic settings compared on ATIS' sentences; "7-bit per channel" is what
# pipelines.nlu.export.quantize_int8 serves
VARIANTS = {
    "8-bit per channel": {"per_channel": True},
    "7-bit per channel (served)": {"per_channel": True, "reduce_range": True},
    "7-bit per tensor": {"per_channel": False, "reduce_range": True},
}


def probe_variants(version_dir: Path, fp32) -> dict[str, int]:
    """For each VARIANTS graph, on how many of ATIS' sentences its decision differs from `fp32`'s."""
    import shutil
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    atis = load_corpus("atis")
    sentences = [e.words for split in (atis.train, atis.dev, atis.test) for e in split["atis"]]

    def decisions(runtime) -> list[str]:
        out: list[str] = []
        for i in range(0, len(sentences), 64):
            probs, _ = runtime.predict_words(sentences[i : i + 64])
            out += [runtime.rank_intents(row)[0][0] for row in probs]
        return out

    reference = decisions(fp32)
    differ = {"sentences": len(sentences)}
    with tempfile.TemporaryDirectory(prefix="nlu-int8-") as tmp:
        for name, settings in VARIANTS.items():
            work = Path(tmp) / "v"
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(version_dir, work)
            target = work / intent_slot().INT8_GRAPH
            target.unlink(missing_ok=True)
            quantize_dynamic(
                str(work / intent_slot().FP32_GRAPH), str(target), weight_type=QuantType.QInt8, **settings
            )
            runtime = intent_slot().IntentSlotRuntime(str(work), intra_op_num_threads=1, graph=target.name)
            differ[name] = sum(a != b for a, b in zip(reference, decisions(runtime), strict=True))
            print(f"{name}: {differ[name]} of {len(sentences)} ATIS sentences decided differently")
    return differ


def runtimes(version_dir: Path) -> dict:
    module = intent_slot()
    if not (version_dir / module.INT8_GRAPH).is_file():
        print(f"no {module.INT8_GRAPH} in {version_dir}: quantizing model.onnx as the build does")
        quantize_int8(version_dir / module.FP32_GRAPH, version_dir / module.INT8_GRAPH)
    files = {"fp32": module.FP32_GRAPH, "int8": module.INT8_GRAPH}
    return {
        g: module.IntentSlotRuntime(str(version_dir), intra_op_num_threads=1, graph=files[g]) for g in GRAPHS
    }


def accuracy(models: dict, version_dir: Path) -> list[dict]:
    info = json.loads((version_dir / "build.json").read_text())
    recipe = info["recipe"]
    corpus = load_corpus(info["dataset"], recipe.get("train_per_intent"), recipe["seed"],
                         recipe.get("real_dev_in_training", False))  # fmt: skip
    rows = []
    for split, sets in (("dev", corpus.dev), ("test", corpus.test)):
        for name, examples in sets.items():
            row = {"split": split, "set": name, "count": len(examples)}
            for graph, runtime in models.items():
                m = evaluate_runtime(runtime, examples, desc=f"{graph} {split} {name}")
                row[graph] = {k: m[k] for k in ("intent_accuracy", "slot_f1", "sentence_accuracy")}
                if "out_of_scope" in m:
                    row[graph]["out_of_scope"] = m["out_of_scope"]
            rows.append(row)
    return rows


def timing(models: dict, rounds: int) -> dict[str, list[float]]:
    queries = [" ".join(e.words) for e in load_corpus("assistant").test["snips"]]
    return interleaved_times(models, queries, rounds)


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def report(version_dir: Path, rows: list[dict], times: dict, probe: dict, rounds: int, name: str) -> None:
    sizes = {
        g: (version_dir / f).stat().st_size / 1e6
        for g, f in (("fp32", intent_slot().FP32_GRAPH), ("int8", intent_slot().INT8_GRAPH))
    }
    lat = {
        g: dict(zip(("p50", "p95", "p99"), np.percentile(v, [50, 95, 99]), strict=True))
        for g, v in times.items()
    }
    lines = [
        f"# NLU: the int8 graph against the float graph ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`python -m bench.nlu_int8 {version_dir} --rounds {rounds}` on {cpu_info()}, "
        "one onnxruntime thread. Both graphs are the same build's: `model.onnx` (float, what a GPU runs) and "
        "`model.int8.onnx` (MatMul/Gemm weights int8, 7 bits used, per output channel, activations "
        "quantized at run time: what the CPU serves).",
        "",
        "## Accuracy (the serving runtime's decisions, out of scope included)",
        "",
        "| split | set | n | intent % fp32 → int8 | slot F1 % fp32 → int8 | real phrasings: in-scope right / "
        "out of scope rejected / in-scope rejected %, fp32 → int8 |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, b = r["fp32"], r["int8"]
        oos = "–"
        if "out_of_scope" in a:
            fa, fb = a["out_of_scope"], b["out_of_scope"]
            keys = ("in_scope_accuracy", "out_of_scope_rejection", "in_scope_false_rejection")
            oos = " / ".join(pct(fa[k]) for k in keys) + " → " + " / ".join(pct(fb[k]) for k in keys)
        lines.append(
            f"| {r['split']} | {r['set']} | {r['count']} "
            f"| {pct(a['intent_accuracy'])} → {pct(b['intent_accuracy'])} "
            f"| {pct(a['slot_f1'])} → {pct(b['slot_f1'])} | {oos} |"
        )
    lines += [
        "",
        f"## Time per query (`IntentSlotRuntime.analyze`, SNIPS test, {len(times['fp32'])} per graph, "
        "interleaved)",
        "",
        "| graph | file MB | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for g in GRAPHS:
        lines.append(
            f"| {g} | {sizes[g]:.1f} | {lat[g]['p50']:.2f} | {lat[g]['p95']:.2f} | {lat[g]['p99']:.2f} |"
        )
    lines += (
        []
        if not probe
        else [
            "",
            "## Quantization variants (ATIS' sentences, no labels read)",
            "",
            f"Decisions that differ from the float graph's, of {probe['sentences']} sentences:",
            "",
            "| variant | decided differently |",
            "|---|---|",
            *(f"| {v} | {probe[v]} |" for v in VARIANTS),
        ]
    )
    lines += ["", f"![time per query]({name}.png)"]

    def plot(path: Path) -> None:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        top = np.percentile(np.concatenate(list(times.values())), 99.5)
        for g in GRAPHS:
            ax.hist(np.minimum(times[g], top), bins=60, alpha=0.6, label=f"{g}: p50 {lat[g]['p50']:.1f} ms")
        ax.set_xlabel("ms per AnalyzeIntent query in process (1 thread)")
        ax.set_ylabel("queries")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

    data = {
        "version_dir": str(version_dir),
        "rounds": rounds,
        "accuracy": rows,
        "latency_ms": lat,
        "file_mb": sizes,
        "variants_atis_differ": probe,
    }
    path = write_report_files(name, [*lines, ""], data, plot)
    print("\n".join(lines[8 : 10 + len(rows)]))
    for g in GRAPHS:
        print(f"{g}: p50 {lat[g]['p50']:.2f} ms, p95 {lat[g]['p95']:.2f} ms, p99 {lat[g]['p99']:.2f} ms")
    print(f"report: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version_dir", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--name", default="nlu_int8")
    parser.add_argument(
        "--no-probe",
        action="store_true",
        help="skip the variants on ATIS' sentences (an ATIS model trained on them)",
    )
    args = parser.parse_args()
    models = runtimes(args.version_dir)
    rows = accuracy(models, args.version_dir)
    times = timing(models, args.rounds)
    probe = {} if args.no_probe else probe_variants(args.version_dir, models["fp32"])
    report(args.version_dir, rows, times, probe, args.rounds, args.name)


if __name__ == "__main__":
    main()
