"""The training device (pipelines/accelerator.py): a GPU when there is one, else the CPU as before."""

from __future__ import annotations

import pytest
import torch

from pipelines import accelerator
from pipelines.accelerator import Accelerator, choose


def test_auto_trains_on_the_cpu_in_float32_where_torch_sees_no_gpu(monkeypatch) -> None:
    monkeypatch.delenv("RIVULET_ACCELERATOR", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    chosen = choose()
    assert chosen == Accelerator("cpu", "cpu", "32-true") and not chosen.on_gpu
    assert chosen.autocast_dtype is None


@pytest.mark.parametrize(("bf16", "precision"), [(True, "bf16-mixed"), (False, "16-mixed")])
def test_auto_takes_the_gpu_with_bfloat16_where_it_has_it_else_float16(monkeypatch, bf16, precision) -> None:
    monkeypatch.delenv("RIVULET_ACCELERATOR", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    chosen = choose()
    assert (chosen.lightning, chosen.device, chosen.precision) == ("gpu", "cuda", precision)
    assert chosen.autocast_dtype == (torch.bfloat16 if bf16 else torch.float16)


def test_the_environment_can_force_the_cpu_or_demand_a_gpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("RIVULET_ACCELERATOR", "cpu")
    assert choose().device == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("RIVULET_ACCELERATOR", "gpu")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        choose()
    with pytest.raises(ValueError, match="accelerator must be one of"):
        choose("tpu")


def _one_step(use_accelerator: bool) -> torch.Tensor:
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 3)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1)
    x, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 1])
    if use_accelerator:  # the loop of pipelines/nlu/train.py
        chosen = Accelerator("cpu", "cpu", "32-true")
        scaler = chosen.grad_scaler()
        with chosen.autocast():
            loss = torch.nn.functional.cross_entropy(layer(x).float(), y)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(layer.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
    else:  # the loop before GPUs were considered
        loss = torch.nn.functional.cross_entropy(layer(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(layer.parameters(), 1.0)
        optimizer.step()
    return layer.weight.detach().clone()


def test_on_the_cpu_the_mixed_precision_loop_is_the_plain_float32_step_exactly() -> None:
    assert torch.equal(_one_step(True), _one_step(False))


def test_lightning_takes_the_chosen_accelerator_and_precision() -> None:
    import lightning.pytorch as pl

    chosen = accelerator.choose("cpu")
    trainer = pl.Trainer(
        accelerator=chosen.lightning,
        precision=chosen.precision,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    assert trainer.precision == "32-true" and type(trainer.accelerator).__name__ == "CPUAccelerator"
