"""ONNX export of the punctuation model and its onnxruntime-vs-PyTorch parity check."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from pipelines.punct.network import PunctCapitModel

INPUT_NAMES = ["input_ids", "attention_mask"]
OUTPUT_NAMES = ["punct_logits", "capit_logits"]


def export_onnx(model: PunctCapitModel, path: Path, opset: int = 17) -> None:
    """Dynamic batch and sequence axes; inputs int64 [batch, seq], outputs [batch, seq, labels]."""
    model.eval()
    vocab_size = model.encoder.config.vocab_size
    ids = torch.tensor([[1, 5, 6, 7, 8, 2], [1, 9, 2, 0, 0, 0]], dtype=torch.long) % vocab_size
    mask = (ids != 0).long()
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES + OUTPUT_NAMES}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (ids, mask), str(path), input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
            dynamic_axes=axes, opset_version=opset, dynamo=False,
        )  # fmt: skip


def max_onnx_difference(model: PunctCapitModel, path: Path, ids: np.ndarray, mask: np.ndarray) -> float:
    """Largest absolute logit difference (unmasked positions) between onnxruntime and PyTorch."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(torch.from_numpy(ids), torch.from_numpy(mask))
    got = session.run(OUTPUT_NAMES, {"input_ids": ids, "attention_mask": mask})
    valid = mask.astype(bool)
    return max(float(np.abs(e.numpy()[valid] - g[valid]).max()) for e, g in zip(expected, got, strict=True))
