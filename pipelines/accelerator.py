"""Which device the pipelines train on: a GPU when there is one ("auto"), with mixed precision there.

``RIVULET_ACCELERATOR`` (``auto`` | ``cpu`` | ``gpu``) overrides the default ``auto``; ``gpu`` fails
clearly when torch sees no CUDA device instead of silently training on the CPU. On a GPU the
matrix work runs in bfloat16 where the GPU has it (Ampere and later: no loss scaling needed), else
in float16 with a gradient scaler; weights, optimizer state and the exported ONNX stay float32, so
a model trained on a GPU exports and serves exactly like one trained on the CPU.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

CHOICES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class Accelerator:
    """``lightning`` is the Lightning accelerator name; ``precision`` Lightning's precision string."""

    lightning: str
    device: str
    precision: str

    @property
    def on_gpu(self) -> bool:
        return self.lightning == "gpu"

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(self.precision)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for a forward pass (and its loss) of a hand-written training loop."""
        dtype = self.autocast_dtype
        return torch.autocast("cuda", dtype=dtype) if dtype else contextlib.nullcontext()

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling for float16 (a no-op scaler otherwise)."""
        return torch.amp.GradScaler("cuda", enabled=self.precision == "16-mixed")


def choose(requested: str | None = None) -> Accelerator:
    """The accelerator for ``requested`` (default: $RIVULET_ACCELERATOR, else "auto")."""
    requested = (requested or os.environ.get("RIVULET_ACCELERATOR") or "auto").lower()
    if requested not in CHOICES:
        raise ValueError(f"accelerator must be one of {CHOICES}, got {requested!r}")
    has_cuda = torch.cuda.is_available()
    if requested == "gpu" and not has_cuda:
        raise RuntimeError("RIVULET_ACCELERATOR=gpu but torch sees no CUDA device (a CPU-only torch?)")
    if requested == "cpu" or not has_cuda:
        return Accelerator("cpu", "cpu", "32-true")
    precision = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return Accelerator("gpu", "cuda", precision)
