"""NLU on the GPU: the joint intent + slot runtime (intent_slot.py) on CPU vs CUDA vs TensorRT FP16.

The model: a built one (``--nlu-model``: model.onnx, tokenizer.json, labels.json), else a graph of
the served architecture and size (6-layer, 384-wide MiniLM + the two heads) with random weights and
a word-level tokenizer, made here with torch + transformers (parity and speed do not need trained
weights; accuracy is checked on the CPU by the pipeline). Tolerances: CUDA FP32 no probability more
than 1e-3 apart; TensorRT FP16 the same best intent and the same best tag for at least 99 % of
words, probabilities within 0.02. Throughput: queries/s of one runtime at each batch size, and the
largest batch whose p95 call latency stays within the NLU budget (15 ms, DESIGN.md).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench.gpu_check.stats import latency_summary
from pipelines import onnx_device
from pipelines.device_config import nlu_profile_parameters

ROOT = Path(__file__).resolve().parents[2]
SENTENCES = [
    "set a timer for ten minutes",
    "what time is it",
    "play the latest album by adele on spotify",
    "turn on the lights in the kitchen",
    "book a table for four people tomorrow at seven pm in boston",
    "add milk eggs and bread to my shopping list",
    "what will the weather be like in paris on saturday afternoon",
    "wake me up at six thirty",
    "cancel",
    "rate this current novel five out of six stars",
    "find the movie schedule for animated movies nearby at eleven am",
    "add this tune to my workout playlist",
]
BUDGET_MS = 15.0
BATCHES = (1, 8, 32, 64, 128)
TOLERANCE = {
    "cuda_max_abs_prob_diff": 1e-3,
    "tensorrt_fp16_min_tag_agreement": 0.99,
    "tensorrt_fp16_max_abs_prob_diff": 0.02,
}


def load_runtime():
    name = "rivulet_intent_slot_runtime"
    if name not in sys.modules:
        path = ROOT / "models" / "intent_assistant" / "1" / "intent_slot.py"
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


def make_synthetic_model(directory: Path, max_length: int = 64, hidden: int = 384, layers: int = 6) -> Path:
    """model.onnx of the served architecture (by default its size: MiniLM-L6) with random weights,
    a word-level tokenizer and labels.json."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    from pipelines.nlu.export import export_onnx
    from pipelines.nlu.joint_model import JointIntentSlotModel

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    encoder = BertModel(
        BertConfig(
            vocab_size=30522,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=12 if hidden % 12 == 0 else 2,
            intermediate_size=4 * hidden,
            max_position_embeddings=512,
        )
    )
    tags = ["O"] + [f"{p}-slot{i}" for i in range(30) for p in ("B", "I")]
    model = JointIntentSlotModel(encoder, num_intents=20, num_slot_tags=len(tags), dropout=0.0)
    export_onnx(model, directory / "model.onnx")
    words = sorted({w for s in SENTENCES for w in s.split()})
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer.save(str(directory / "tokenizer.json"))
    labels = {"intents": [f"intent{i}" for i in range(20)], "slot_tags": tags, "max_length": max_length}
    (directory / "labels.json").write_text(json.dumps({**labels, "apostrophes": "split"}))
    return directory


def _probabilities(runtime, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
    words = [[w.text for w in runtime.split(t)] for t in texts]
    return runtime.predict_words(words)


def _compare(reference, candidate, texts: list[str]) -> dict:
    intents_a, words_a = _probabilities(reference, texts)
    intents_b, words_b = _probabilities(candidate, texts)
    tags_a = np.concatenate([w.argmax(-1) for w in words_a])
    tags_b = np.concatenate([w.argmax(-1) for w in words_b])
    return {
        "same_intent": f"{int((intents_a.argmax(-1) == intents_b.argmax(-1)).sum())}/{len(texts)}",
        "tag_agreement": round(float((tags_a == tags_b).mean()), 5),
        "max_abs_prob_diff": float(
            max(
                np.abs(intents_a - intents_b).max(),
                *(np.abs(a - b).max() for a, b in zip(words_a, words_b, strict=True)),
            )
        ),
        "providers": candidate.session.get_providers(),
    }


def gpu_variants(model_dir: Path, placement: onnx_device.Placement, max_length: int) -> dict[str, list]:
    """Provider lists of the configurations compared: CUDA FP32, and TensorRT FP16 where installed."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    variants = {"cuda_fp32": onnx_device.providers_for(placement, available, "intent_slot")}
    if onnx_device.TENSORRT in available and placement.on_gpu:
        parameters = {"onnxruntime_tensorrt": "true", "onnxruntime_tensorrt_fp16": "true"}
        parameters.update(nlu_profile_parameters(max_length))
        args = {"model_instance_kind": "GPU", "model_instance_device_id": placement.device_id}
        trt = onnx_device.placement_from_triton(args, parameters, str(model_dir))
        variants["tensorrt_fp16"] = onnx_device.providers_for(trt, available, "intent_slot")
    return variants


def throughput(runtime, seconds: float = 2.0) -> list[dict]:
    rows = []
    for batch in BATCHES:
        texts = [SENTENCES[i % len(SENTENCES)] for i in range(batch)]
        runtime.analyze(texts)  # warm-up (TensorRT builds its engine for new shapes here)
        calls: list[float] = []
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            t0 = time.perf_counter()
            runtime.analyze(texts)
            calls.append(time.perf_counter() - t0)
        summary = latency_summary(calls)
        rows.append({"batch": batch, "queries_per_s": round(batch * len(calls) / sum(calls), 1), **summary})
    return rows


def check(
    model_dir: Path | None, workdir: Path, placement: onnx_device.Placement, seconds: float = 2.0
) -> dict:
    synthetic = model_dir is None
    if synthetic:
        model_dir = make_synthetic_model(workdir / "nlu_synthetic")
    runtime_module = load_runtime()
    max_length = int(json.loads((model_dir / "labels.json").read_text())["max_length"])
    texts = [s for s in SENTENCES for _ in range(4)]
    # the float graph: what a GPU runs, so the parity below compares like with like (the CPU serves
    # model.int8.onnx where the build wrote one)
    cpu = runtime_module.IntentSlotRuntime(str(model_dir), graph=runtime_module.FP32_GRAPH)
    result: dict = {"model": "synthetic (random weights)" if synthetic else str(model_dir), "variants": {}}
    result["cpu_throughput"] = throughput(cpu, seconds=seconds / 2)
    passed = True
    for name, providers in gpu_variants(model_dir, placement, max_length).items():
        runtime = runtime_module.IntentSlotRuntime(str(model_dir), providers=providers)
        if name == "tensorrt_fp16" and runtime.session.get_providers()[0] != onnx_device.TENSORRT:
            # the wheel has the provider but not TensorRT's libraries (libnvinfer): not a parity failure
            loaded = runtime.session.get_providers()
            result["variants"][name] = {"skipped": f"TensorRT not loadable here; the session got {loaded}"}
            continue
        compared = _compare(cpu, runtime, texts)
        if name == "cuda_fp32":
            ok = compared["max_abs_prob_diff"] <= TOLERANCE["cuda_max_abs_prob_diff"]
        else:
            ok = (
                compared["tag_agreement"] >= TOLERANCE["tensorrt_fp16_min_tag_agreement"]
                and compared["max_abs_prob_diff"] <= TOLERANCE["tensorrt_fp16_max_abs_prob_diff"]
                and compared["same_intent"] == f"{len(texts)}/{len(texts)}"
            )
        rows = throughput(runtime, seconds)
        within = [r for r in rows if r["p95_ms"] <= BUDGET_MS]
        best = max(within, key=lambda r: r["queries_per_s"]) if within else None
        result["variants"][name] = {
            "parity": {**compared, "passed": ok},
            "throughput": rows,
            "best_within_budget": best,
        }
        print(f"  nlu {name}: parity {'ok' if ok else 'FAILED'}, best within {BUDGET_MS} ms: {best}")
        passed = passed and ok
    result.update({"tolerance": TOLERANCE, "budget_ms": BUDGET_MS, "passed": passed})
    return result
