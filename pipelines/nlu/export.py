"""ONNX export of the joint model, and a parity check of onnxruntime against PyTorch."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from pipelines.nlu.joint_model import JointIntentSlotModel

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
