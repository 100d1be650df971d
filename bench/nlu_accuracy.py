"""SNIPS and ATIS test sets, and held-out real phrasings, measured through the running NLU service
(riva.client.NLPService).

    python -m bench.nlu_accuracy [--repository models] [--datasets assistant atis]

Starts tritonserver on the repository and the NLU service, sends every test utterance as a Riva
AnalyzeIntent call, maps the returned character spans back onto the test set's words (BIO), and
scores intent accuracy, span-level slot F1 (conlleval via seqeval) and sentence accuracy. The
held-out part of SLURP's devel split (`pipelines.nlu.slurp`: never trained or calibrated on) is sent
as the people wrote it and scored by intent only (its entities are partly annotated): in-scope
accuracy, out-of-scope rejection and in-scope false rejection.
Writes bench/reports/nlu_accuracy.md and nlu_accuracy.png.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import riva.client
from riva.client.proto import riva_nlp_pb2 as rnlp
from tqdm import tqdm

from bench.local_stack import nlu_stack
from bench.report_files import write_report_files
from pipelines.nlu.corpus import DOMAINS, MODEL_NAMES, load_corpus
from pipelines.nlu.datasets import Example
from pipelines.nlu.metrics import out_of_scope_scores, score
from pipelines.nlu.slurp import load_mapping, load_sentences
from rivulet.dialog.settings import DialogSettings

# Goals of issue 17 on held-out real phrasings (%): in-scope accuracy ≥, rejected ≥, wrongly rejected ≤.
REAL_PHRASING_GOALS = {
    "in_scope_accuracy": 95.0,
    "out_of_scope_rejection": 90.0,
    "in_scope_false_rejection": 3.0,
}
DIALOG_THRESHOLD = DialogSettings().dialog_nlu_threshold
PUBLISHED = {  # intent acc / slot F1 / sentence acc, %
    "snips": {
        "Joint BERT (Chen et al. 2019)": (98.6, 97.0, 92.8),
        "Stack-Propagation (no BERT)": (98.0, 94.2, None),
    },
    "atis": {
        "Joint BERT (Chen et al. 2019)": (97.5, 96.1, 88.2),
        "Stack-Propagation (no BERT)": (96.9, 95.9, None),
    },
}


def spans_to_bio(words: tuple[str, ...], response: rnlp.AnalyzeIntentResponse) -> list[str]:
    """Tag each word of `" ".join(words)` by the slot span that covers it (B- first, then I-)."""
    starts, offset = [], 0
    for word in words:
        starts.append(offset)
        offset += len(word) + 1
    tags = ["O"] * len(words)
    for slot in response.slots:
        start, end, label = slot.span[0].start, slot.span[0].end, slot.label[0].class_name
        inside = [i for i, s in enumerate(starts) if s < end and s + len(words[i]) > start]
        for n, i in enumerate(inside):
            tags[i] = ("B-" if n == 0 else "I-") + label
    return tags


def analyze(address: str, texts: list[str], domain: str, name: str) -> tuple[list, float]:
    client = riva.client.NLPService(riva.client.Auth(uri=address))
    options = rnlp.AnalyzeIntentOptions(domain=domain)
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(
            tqdm(
                pool.map(lambda text: client.analyze_intent(text, options=options), texts),
                total=len(texts),
                desc=f"{name} via service",
            )
        )
    return responses, time.perf_counter() - start


def evaluate(address: str, examples: list[Example], domain: str, name: str) -> tuple[dict, float]:
    responses, elapsed = analyze(address, [" ".join(e.words) for e in examples], domain, name)
    intents = [r.intent.class_name for r in responses]
    tags = [spans_to_bio(e.words, r) for e, r in zip(examples, responses, strict=True)]
    return score(examples, intents, tags), elapsed


def evaluate_real_phrasings(address: str, domain: str) -> tuple[dict, float]:
    """SLURP's held-out part as written ("what's the weather like"), scored by intent."""
    held_out = [(sentence, example) for part, sentence, example in load_sentences() if part == "test"]
    responses, elapsed = analyze(address, [s for s, _ in held_out], domain, "slurp")
    intents = [r.intent.class_name for r in responses]
    examples = [e for _, e in held_out]
    metrics = score(examples, intents, [["O"] * len(e.words) for e in examples])
    out_of_scope = load_mapping().out_of_scope_intent
    metrics["out_of_scope"] = out_of_scope_scores([e.intent for e in examples], intents, out_of_scope)
    # what the dialog would act on: an in-scope intent at or above RIVULET_DIALOG_NLU_THRESHOLD
    acted = [
        r.intent.class_name != out_of_scope and r.intent.score >= DIALOG_THRESHOLD
        for e, r in zip(examples, responses, strict=True)
        if e.intent == out_of_scope
    ]
    metrics["out_of_scope"]["out_of_scope_acted_on"] = sum(acted) / max(len(acted), 1)
    return metrics, elapsed


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def report_lines(results: dict[str, dict], report: str = "nlu_accuracy") -> list[str]:
    lines = [
        "# NLU accuracy through the running service",
        "",
        "Every test utterance sent as a Riva `AnalyzeIntent` call (riva.client 2.28) to the NLU service,",
        "which runs the model on the real tritonserver. Slot F1 is span-level, as conlleval computes it",
        "(seqeval default mode). Reproduce: `make models && python -m bench.nlu_accuracy`.",
        "",
        "| test set | utterances | intent acc % | slot F1 % | sentence acc % "
        "| published (intent / F1 / sentence) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        m = r["metrics"]
        if "out_of_scope" in m:
            continue
        published = "; ".join(
            f"{k}: {a} / {b} / {c if c is not None else '–'}"
            for k, (a, b, c) in PUBLISHED.get(name, {}).items()
        )
        lines.append(
            f"| {name} | {m['count']} | {_pct(m['intent_accuracy'])} | {_pct(m['slot_f1'])} | "
            f"{_pct(m['sentence_accuracy'])} | {published or '–'} |"
        )
    real = {name: r for name, r in results.items() if "out_of_scope" in r["metrics"]}
    for name, r in real.items():
        o = r["metrics"]["out_of_scope"]
        lines += [
            "",
            f"## Held-out real phrasings ({name}: SLURP devel, the test part by sentence hash)",
            "",
            f"{o['in_scope_count']} in-scope requests and {o['out_of_scope_count']} out-of-scope ones, "
            "sent as people wrote them; never trained or calibrated on (`pipelines/nlu/slurp.py`). "
            "Scored by intent (SLURP annotates entities only partly).",
            "",
            "| measure | result % | goal % |",
            "|---|---|---|",
            f"| in-scope intent accuracy (right intent, not rejected) | {_pct(o['in_scope_accuracy'])} | "
            f"≥ {REAL_PHRASING_GOALS['in_scope_accuracy']} |",
            f"| out-of-scope rejected (answered `OutOfScope`) | {_pct(o['out_of_scope_rejection'])} | "
            f"≥ {REAL_PHRASING_GOALS['out_of_scope_rejection']} |",
            f"| in-scope wrongly rejected | {_pct(o['in_scope_false_rejection'])} | "
            f"≤ {REAL_PHRASING_GOALS['in_scope_false_rejection']} |",
            f"| out-of-scope the dialog would act on (in-scope intent, score ≥ {DIALOG_THRESHOLD}) | "
            f"{_pct(o['out_of_scope_acted_on'])} | – |",
        ]
    lines += ["", f"![per-intent accuracy]({report}.png)", ""]
    for name, r in results.items():
        lines += [
            f"## {name}: per-intent accuracy",
            "",
            "| intent | correct | count | acc % |",
            "|---|---|---|---|",
        ]
        for intent, c in r["metrics"]["per_intent"].items():
            lines.append(
                f"| {intent} | {c['correct']} | {c['count']} | {100 * c['correct'] / c['count']:.1f} |"
            )
        lines += [
            "",
            f"Wall time through the service: {r['seconds']:.1f} s for {r['metrics']['count']} calls.",
            "",
        ]
    return lines


def plot(results: dict[str, dict], out: Path) -> None:
    fig, axes = plt.subplots(1, len(results), figsize=(7 * len(results), 5), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items(), strict=True):
        per = r["metrics"]["per_intent"]
        names = list(per)
        acc = [100 * per[n]["correct"] / per[n]["count"] for n in names]
        ax.barh(names, acc, color="tab:blue")
        ax.set_xlim(min([*acc, 90]) - 2, 100.5)
        ax.set_title(f"{name}: intent accuracy by intent (%)")
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repository", type=Path, default=Path("models"))
    parser.add_argument("--datasets", nargs="+", default=["assistant", "atis"])
    parser.add_argument("--log-dir", type=Path, default=Path(".run/bench"))
    parser.add_argument(
        "--report",
        default="nlu_accuracy",
        help="report file name in bench/reports (a quick model's: another)",
    )
    args = parser.parse_args(argv)
    models = tuple(MODEL_NAMES[d] for d in args.datasets)
    results: dict[str, dict] = {}
    with nlu_stack(args.repository.resolve(), args.log_dir, models) as address:
        for dataset in args.datasets:
            corpus = load_corpus(dataset)
            for name, examples in corpus.test.items():
                if name == "slurp":
                    metrics, seconds = evaluate_real_phrasings(address, DOMAINS[dataset])
                else:
                    metrics, seconds = evaluate(address, examples, DOMAINS[dataset], name)
                results[name] = {"metrics": metrics, "seconds": seconds}
                print(
                    f"{name:10s} n={metrics['count']:4d}  intent {_pct(metrics['intent_accuracy'])}%  "
                    f"slot F1 {_pct(metrics['slot_f1'])}%  sentence {_pct(metrics['sentence_accuracy'])}%"
                )
                if "out_of_scope" in metrics:
                    print("           real phrasings: " + json.dumps(metrics["out_of_scope"]))
    lines = report_lines(results, args.report)
    path = write_report_files(args.report, lines, results, lambda path: plot(results, path))
    print(f"report: {path}")


if __name__ == "__main__":
    main()
