"""The training report (markdown) of a build, from its build.json."""

from __future__ import annotations

import tomllib
from pathlib import Path

PUBLISHED = {
    "snips": "Joint BERT (Chen et al. 2019) 98.6 / 97.0 / 92.8; Stack-Propagation (no BERT) 98.0 / 94.2 / –",
    "atis": "Joint BERT (Chen et al. 2019) 97.5 / 96.1 / 88.2; Stack-Propagation (no BERT) 96.9 / 95.9 / –",
}
SET_NAMES = {
    "snips": "SNIPS",
    "assistant": "generated assistant domain (held-out split)",
    "atis": "ATIS (test intents/tags unseen in train count as errors)",
}


# Hand-written context per dataset: how the recipe was chosen (runs whose builds are not kept).
NOTES_FILE = Path(__file__).parent / "data" / "report_notes.toml"
NOTES: dict[str, list[str]] = tomllib.loads(NOTES_FILE.read_text(encoding="utf-8"))


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def render(info: dict) -> str:
    recipe = info["recipe"]
    timings = info["timings"]
    lines = [
        f"# NLU training report: `{info['model']}` "
        f"(dataset `{info['dataset']}`, profile `{info['profile']}`)",
        "",
        f"Written by `python -m pipelines.nlu build` on {info['created']} (build key `{info['key']}`).",
        "",
        "## Reproduce",
        "",
        "```",
        f"PYTHONPATH=services:. HF_HUB_OFFLINE=1 .venv/bin/python -m pipelines.nlu build "
        f"--dataset {info['dataset']} --profile {info['profile']} --repository models",
        "```",
        "",
        "## Results (exported ONNX scored through `intent_slot.py`; intent acc / slot F1 / sentence acc, %)",
        "",
        "Slot F1 is span level as conlleval computes it (seqeval default mode).",
        "",
        "| split | set | utterances | intent acc | slot F1 | sentence acc |",
        "|---|---|---|---|---|---|",
    ]
    for split in ("test", "dev"):
        for name, m in info["metrics"][split].items():
            lines.append(
                f"| {split} | {SET_NAMES.get(name, name)} | {m['count']} | {_pct(m['intent_accuracy'])} | "
                f"{_pct(m['slot_f1'])} | {_pct(m['sentence_accuracy'])} |"
            )
    lines.append("")
    for name in info["metrics"]["test"]:
        if name in PUBLISHED:
            lines.append(f"Published on {SET_NAMES[name].split(' (')[0]} test: {PUBLISHED[name]}.")
    if info.get("reevaluated"):
        lines += [
            "",
            f"Figures above: {info['reevaluated']}; the build itself is from an earlier revision of the "
            "pipeline whose per-epoch decoding was argmax (same recipe, same training code path).",
        ]
    if NOTES.get(info["dataset"]) and info["profile"] == "full":
        lines += ["", "## Notes", ""] + [f"- {note}" for note in NOTES[info["dataset"]]]
    lines += ["", "## Recipe", ""]
    lines.append(
        f"- encoder: `{info['encoder']}` (fine-tuned end to end), masked-mean-pooled intent head, "
        "token slot head on each word's first sub-token, loss = intent CE + slot_loss_weight x slot CE; "
        "slots decoded as the most probable valid BIO sequence over the word-level tag probabilities "
        "(Viterbi with BIO constraints, no learned transitions)"
    )
    for k, v in recipe.items():
        lines.append(f"- {k}: {v}")
    lines.append(f"- best epoch by mean dev sentence accuracy: {info['history'].get('best_epoch')}")
    lines += ["", "## Data", ""]
    sizes = info["data_sizes"]
    for split in ("train", "dev", "test"):
        lines.append(f"- {split}: " + ", ".join(f"{k} {v}" for k, v in sizes[split].items()))
    lines.append(f"- labels: {sizes['intents']} intents, {sizes['slot_tags']} BIO tags (seen in train)")
    lines += [
        "",
        "## Training curve (dev)",
        "",
        "| epoch | loss | elapsed s | "
        + " | ".join(f"{n} intent / slot F1 / sent" for n in info["metrics"]["dev"])
        + " |",
        "|---|---|---|" + "---|" * len(info["metrics"]["dev"]),
    ]
    for e in info["history"]["epochs"]:
        cells = " | ".join(
            f"{_pct(d['intent_accuracy'])} / {_pct(d['slot_f1'])} / {_pct(d['sentence_accuracy'])}"
            for d in e["dev"].values()
        )
        lines.append(f"| {e['epoch']} | {e['loss']:.4f} | {e['elapsed_s']} | {cells} |")
    env = info["environment"]
    lines += [
        "",
        "## Time and machine",
        "",
        f"- training {timings['train_s']} s, export + parity check {timings['export_s']} s, "
        f"evaluation {timings['eval_s']} s "
        f"({info['history']['steps']} optimizer steps)",
        f"- CPU: {env['cpu']}; torch {env['torch']} with {env['torch_threads']} threads; "
        f"Python {env['python']} "
        "(the machine was shared with other jobs, so times vary)",
        f"- ONNX vs PyTorch max |logit difference|: {info['onnx_parity_max_abs_diff']:.2e}",
    ]
    if "latency" in info:
        lat = info["latency"]
        lines.append(
            f"- onnxruntime latency of `intent_slot.py` (split + tokenize + ONNX + decode) for one short "
            f"query, 1 thread, `{lat.get('graph', 'model.onnx')}`: median {lat['median_ms']:.2f} ms, "
            f'p90 {lat["p90_ms"]:.2f} ms over {lat["runs"]} runs ("{lat["query"]}")'
        )
    if "latency_fp32" in info:
        lat = info["latency_fp32"]
        lines.append(f"- the float graph `model.onnx` (what a GPU runs): median {lat['median_ms']:.2f} ms, "
                     f"p90 {lat['p90_ms']:.2f} ms")  # fmt: skip
    if info.get("int8_graph"):
        q = info["int8_graph"]
        verdict = f"written, {q['size_mb']} MB" if q["written"] else "not written"
        lines.append(
            f"- int8 graph for the CPU (`model.int8.onnx`, {verdict}): the same best intent as the float "
            f"graph on {100 * q['intent_agreement']:.1f} % of the dev sets, max |probability difference| "
            f"{q['max_prob_diff']:.3f}; the figures above are the graph the CPU serves"
        )
    lines += ["", "## Per-intent accuracy (test)", ""]
    for name, m in info["metrics"]["test"].items():
        lines += [
            f"### {SET_NAMES.get(name, name)}",
            "",
            "| intent | correct | count | accuracy |",
            "|---|---|---|---|",
        ]
        for intent, c in m["per_intent"].items():
            lines.append(f"| {intent} | {c['correct']} | {c['count']} | {_pct(c['correct'] / c['count'])} |")
        lines.append("")
    lines += [
        "Data: SNIPS NLU benchmark (CC0); ATIS (research use), splits of Goo et al. 2018 / Chen et al. 2019.",
        "",
    ]
    return "\n".join(lines)


def write_report(info: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(info))
    return path
