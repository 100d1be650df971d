"""The fine-tuning loop the NLU and punctuation pipelines share: length-bucketed batches, AdamW with
per-part learning rates (no weight decay on biases and LayerNorm weights; frozen parameters left
out), linear warmup then linear decay, gradient clipping through the accelerator's scaler
(pipelines.accelerator), a dev score after every epoch, and the best epoch's weights kept."""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pipelines.accelerator import Accelerator

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def bucketed_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffle, sort within chunks of 50 batches by length (less padding), shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def adamw_with_warmup(
    parts: Sequence[tuple[nn.Module, float]], weight_decay: float, warmup_ratio: float, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW over `parts` ((module, learning rate) pairs) and its warmup + linear decay schedule."""
    warmup = max(1, int(total_steps * warmup_ratio))
    groups = []
    for part, lr in parts:
        named = [(n, p) for n, p in part.named_parameters() if p.requires_grad]
        groups.append(
            {
                "params": [p for n, p in named if not n.endswith(NO_DECAY)],
                "lr": lr,
                "weight_decay": weight_decay,
            }
        )
        groups.append(
            {"params": [p for n, p in named if n.endswith(NO_DECAY)], "lr": lr, "weight_decay": 0.0}
        )
    optimizer = torch.optim.AdamW(groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / warmup, max(0.0, (total_steps - step) / max(1, total_steps - warmup))),
    )
    return optimizer, scheduler


def fit(
    model: nn.Module,
    accelerator: Accelerator,
    parts: Sequence[tuple[nn.Module, float]],
    recipe,
    lengths: Sequence[int],
    batch_of: Callable[[list[int]], dict[str, torch.Tensor]],
    loss_of: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    validate: Callable[[], tuple[float, dict, str]],
) -> dict:
    """Train `model` (on `accelerator.device`) in place for `recipe.epochs` over the examples whose
    lengths are `lengths`; `batch_of(indices)` makes a batch, `loss_of(batch)` its loss, and
    `validate()` scores the dev set: (key, scores for the history, summary line). The weights of the
    epoch with the best key are kept; the model is handed back on the CPU in eval mode. `recipe`
    gives epochs, batch_size, weight_decay, warmup_ratio and seed. Returns the history."""
    rng = random.Random(recipe.seed)
    total_steps = math.ceil(len(lengths) / recipe.batch_size) * recipe.epochs
    optimizer, scheduler = adamw_with_warmup(parts, recipe.weight_decay, recipe.warmup_ratio, total_steps)
    scaler = accelerator.grad_scaler()
    history: dict = {"epochs": [], "steps": total_steps, "train_examples": len(lengths)}
    history["accelerator"] = f"{accelerator.lightning} ({accelerator.precision})"
    best_key, best_state = -1.0, None
    started = time.perf_counter()
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        batches = bucketed_batches(lengths, recipe.batch_size, rng)
        running = 0.0
        bar = tqdm(batches, desc=f"    epoch {epoch}/{recipe.epochs}", unit="step")
        for step, index in enumerate(bar, 1):
            batch = {key: value.to(accelerator.device) for key, value in batch_of(index).items()}
            with accelerator.autocast():
                loss = loss_of(batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            running += loss.item()
            if step % 10 == 0:
                bar.set_postfix(loss=f"{running / step:.4f}")
        key, scores, summary = validate()
        record = {
            "epoch": epoch,
            "loss": running / max(1, len(batches)),
            "elapsed_s": round(time.perf_counter() - started, 1),
            **scores,
        }
        history["epochs"].append(record)
        print(f"    epoch {epoch}: loss {record['loss']:.4f}  dev {summary}", flush=True)
        if key >= best_key:
            best_key, best_state = key, copy.deepcopy(model.state_dict())
            history["best_epoch"] = epoch
    if best_state is not None:
        model.load_state_dict(best_state)
    model.to("cpu")  # export and evaluation run on the CPU
    model.eval()
    history["train_seconds"] = round(time.perf_counter() - started, 1)
    return history
