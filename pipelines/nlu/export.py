"""ONNX export of the joint model, a parity check of onnxruntime against PyTorch, and the int8 graph
the CPU serves (dynamic quantization, onnxruntime.quantization)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from pipelines.nlu.joint_model import JointIntentSlotModel
from pipelines.nlu.runtime import intent_slot

INPUT_NAMES = ["input_ids", "attention_mask"]
OUTPUT_NAMES = ["intent_logits", "slot_logits"]


def export_onnx(model: JointIntentSlotModel, path: Path, opset: int = 17) -> None:
    """Dynamic batch and sequence axes; inputs int64 [batch, seq]."""
    model.eval()
    vocab_size = model.encoder.config.vocab_size
    ids = torch.tensor([[1, 5, 6, 7, 8, 2], [1, 9, 2, 0, 0, 0]], dtype=torch.long) % vocab_size
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], dtype=torch.long)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (ids, mask),
            str(path),
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "intent_logits": {0: "batch"},
                "slot_logits": {0: "batch", 1: "sequence"},
            },
            opset_version=opset,
            dynamo=False,
        )


def max_onnx_difference(
    model: JointIntentSlotModel, path: Path, batches: list[tuple[np.ndarray, np.ndarray]]
) -> float:
    """Largest absolute logit difference between onnxruntime and PyTorch over the given inputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    model.eval()
    with torch.no_grad():
        for ids, mask in batches:
            expected = model(torch.from_numpy(ids), torch.from_numpy(mask))
            got = session.run(OUTPUT_NAMES, {"input_ids": ids, "attention_mask": mask})
            for e, g in zip(expected, got, strict=True):
                valid = mask.astype(bool) if e.dim() == 3 else slice(None)
                worst = max(worst, float(np.abs(e.numpy()[valid] - g[valid]).max()))
    return worst


def quantize_int8(source: Path, target: Path) -> None:
    """`source` with its MatMul/Gemm weights in int8 (7 bits used), one scale per output channel,
    activations quantized at run time (onnxruntime's dynamic quantization). Per channel: per tensor cost
    the quick model 1.5 points of SNIPS dev slot F1, per channel none. 7-bit weights (`reduce_range`,
    onnxruntime's advice for CPUs without VNNI, where u8 x s8 products can saturate): the full model's
    decisions on ATIS' 5,871 sentences (never trained on, no labels read) differ from the float
    graph's on 38 of them instead of 51 (bench/reports/nlu_int8.md)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process the graph first
    try:
        quantize_dynamic(
            str(source), str(target), per_channel=True, reduce_range=True, weight_type=QuantType.QInt8
        )
    finally:
        logging.getLogger().setLevel(quiet)


def intent_agreement(fp32, int8, batches: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """(share of rows whose best intent is the same, largest absolute intent-probability difference)
    of two onnxruntime sessions over the given inputs."""
    softmax = intent_slot().softmax
    same = rows = 0
    worst = 0.0
    for ids, mask in batches:
        feeds = {"input_ids": ids, "attention_mask": mask}
        a = softmax(fp32.run(["intent_logits"], feeds)[0])
        b = softmax(int8.run(["intent_logits"], feeds)[0])
        same += int((a.argmax(-1) == b.argmax(-1)).sum())
        rows += len(a)
        worst = max(worst, float(np.abs(a - b).max()))
    return same / max(rows, 1), worst
