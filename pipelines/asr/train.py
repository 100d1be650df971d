"""CPU training of the streaming Conformer-CTC with Lightning: progress log, checkpoints, resumable.

Batches are made of utterances of similar length (sorted within shuffled windows) so little of
each batch is padding: on two shared cores padding is the biggest waste. The batch order is
written into the run's own manifest (several differently shuffled epochs) and read unshuffled.
A run directory holds ``checkpoints/last.ckpt``; running the same command again resumes it.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pipelines.asr.data import read_manifest
from pipelines.asr.model_config import SIZES, measure_feature_stats, model_config, patch_fixed_normalization


@dataclass(frozen=True)
class TrainRecipe:
    size: str
    batch_size: int
    lr: float
    warmup_steps: int
    max_steps: int
    max_minutes: float  # wall-time budget of the cosine schedule (see Budget)
    val_every: int
    dev_size: int
    threads: int = 2
    seed: int = 7
    stop_minutes: float | None = None  # stop early on the max_minutes schedule (None: at max_minutes)
    sorted_first: bool = True  # first epoch shortest-first (SortaGrad)


RECIPES = {
    "full": TrainRecipe(
        "full",
        batch_size=16,
        lr=2e-3,
        warmup_steps=300,
        max_steps=16000,
        max_minutes=65,
        val_every=600,
        dev_size=200,
    ),
    # stage 2: the same data with long leading silence (see data.pad_onsets), from stage 1's weights
    "full_onset": TrainRecipe(
        "full",
        batch_size=16,
        lr=1e-3,
        warmup_steps=100,
        max_steps=8000,
        max_minutes=20,
        val_every=600,
        dev_size=200,
    ),
    # the built full model further on real voices mixed with synthetic (pipelines.asr.finetune)
    "finetune": TrainRecipe(
        "full",
        batch_size=16,
        lr=1e-3,
        warmup_steps=200,
        max_steps=20000,
        max_minutes=35,
        val_every=600,
        dev_size=200,
    ),
    "quick": TrainRecipe(
        "quick",
        batch_size=8,
        lr=3e-3,
        warmup_steps=20,
        max_steps=120,
        max_minutes=10,
        val_every=60,
        dev_size=16,
    ),
}


def length_grouped(
    rows: list[dict], batch_size: int, epochs: int, rng: random.Random, sorted_first: bool = True
) -> list[dict]:
    """``epochs`` orderings of ``rows`` in which each run of ``batch_size`` rows has similar durations.

    The first epoch goes from the shortest utterances to the longest (SortaGrad): CTC finds its
    alignments far sooner on short clips than on long sentences.
    """
    out: list[dict] = sorted(rows, key=lambda r: r["duration"]) if sorted_first else []
    window = batch_size * 64
    for _ in range(epochs - 1 if sorted_first else epochs):
        shuffled = rows[:]
        rng.shuffle(shuffled)
        batches = []
        for start in range(0, len(shuffled), window):
            part = sorted(shuffled[start : start + window], key=lambda r: r["duration"])
            batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
        rng.shuffle(batches)
        out += [row for batch in batches for row in batch]
    return out


def split_manifests(data_root: Path, run_dir: Path, recipe: TrainRecipe) -> tuple[Path, Path, int]:
    """Write the run's train (length-grouped, several epochs) and dev manifests; returns (train, dev, n)."""
    rng = random.Random(recipe.seed)
    rows = read_manifest(data_root / "train.jsonl")
    rng.shuffle(rows)
    dev, train = rows[: recipe.dev_size], rows[recipe.dev_size :]
    steps_per_epoch = max(1, len(train) // recipe.batch_size)
    epochs = recipe.max_steps // steps_per_epoch + 2
    run_dir.mkdir(parents=True, exist_ok=True)
    train_path, dev_path = run_dir / "train_manifest.jsonl", run_dir / "dev_manifest.jsonl"
    if not train_path.exists():
        rows = length_grouped(train, recipe.batch_size, epochs, rng, recipe.sorted_first)
        train_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        dev_path.write_text("".join(json.dumps(r) + "\n" for r in dev))
    return train_path, dev_path, len(train)


def train(data_root: Path, run_dir: Path, recipe: TrainRecipe, init: Path | None = None) -> Path:
    """Train (or resume) in ``run_dir``; returns the path of the saved ``model.nemo``.

    ``init``: start from the weights (and feature statistics) of this ``.nemo`` (a later stage).
    """
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import Callback, ModelCheckpoint
    from nemo.collections.asr.models import EncDecCTCModel
    from nemo.utils import logging as nemo_logging

    from pipelines.accelerator import choose as choose_accelerator

    nemo_logging.setLevel(logging.WARNING)
    torch.set_num_threads(recipe.threads)
    pl.seed_everything(recipe.seed, workers=True)
    out = run_dir / "model.nemo"
    if out.exists():
        return out
    train_path, dev_path, n_train = split_manifests(data_root, run_dir, recipe)
    stats_path = run_dir / "feature_stats.json"
    if init is not None and not stats_path.exists():
        stats_path.write_text((init.parent / "feature_stats.json").read_text())
    if not stats_path.exists():
        sample = random.Random(recipe.seed).sample(read_manifest(train_path)[:n_train], min(400, n_train))
        stats_path.write_text(json.dumps(measure_feature_stats([r["audio_filepath"] for r in sample])))
    patch_fixed_normalization()
    cfg = model_config(
        SIZES[recipe.size],
        str(train_path),
        str(dev_path),
        recipe.batch_size,
        recipe.lr,
        recipe.warmup_steps,
        recipe.max_steps,
        feature_stats=json.loads(stats_path.read_text()),
    )
    cfg.train_ds.shuffle = False  # the manifest already holds the (length-grouped) shuffled order

    log_path = run_dir / "train.log"

    class Progress(Callback):
        """One plain line per 25 steps into train.log (tail -f it), and the validation WER."""

        def __init__(self) -> None:
            self.start = time.time()

        def _write(self, line: str) -> None:
            with open(log_path, "a") as log:
                log.write(line + "\n")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            step = trainer.global_step
            if step % 25 == 0:
                loss = float(outputs["loss"]) if isinstance(outputs, dict) else float("nan")
                lr = trainer.optimizers[0].param_groups[0]["lr"]
                elapsed = time.time() - self.start
                self._write(
                    f"step {step}/{recipe.max_steps} loss {loss:.3f} lr {lr:.2e} "
                    f"elapsed {elapsed / 60:.1f} min ({elapsed / max(step, 1):.2f} s/step this session)"
                )

        def on_validation_end(self, trainer, pl_module) -> None:
            metrics = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items() if "val" in k}
            self._write(f"step {trainer.global_step} validation {metrics}")

    budget_path = run_dir / "budget.json"

    class Budget(Callback):
        """A wall-time budget: the learning rate follows a cosine over the *time* spent (after a
        step-based warm-up) and training stops when the budget is used, so the schedule ends
        annealed however fast this machine is today. Spent time is saved for resumes."""

        def __init__(self) -> None:
            saved = json.loads(budget_path.read_text()) if budget_path.exists() else {}
            self.spent_before = float(saved.get("elapsed_s", 0.0))
            self.started = time.time()
            self.budget_s = recipe.max_minutes * 60

        def spent(self) -> float:
            return self.spent_before + time.time() - self.started

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            fraction = min(1.0, self.spent() / self.budget_s)
            warm = min(1.0, (trainer.global_step + 1) / recipe.warmup_steps)
            floor = recipe.lr / 50
            lr = floor + (recipe.lr - floor) * 0.5 * (1 + math.cos(math.pi * fraction))
            for group in trainer.optimizers[0].param_groups:
                group["lr"] = lr * warm

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if trainer.global_step % 25 == 0:
                budget_path.write_text(
                    json.dumps({"elapsed_s": round(self.spent(), 1), "step": trainer.global_step})
                )
            if self.spent() >= 60 * (recipe.stop_minutes or recipe.max_minutes):
                trainer.should_stop = True

        def on_train_start(self, trainer, pl_module) -> None:
            if self.spent() >= 60 * (recipe.stop_minutes or recipe.max_minutes):
                trainer.should_stop = True

    checkpoints = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0, every_n_train_steps=100
    )
    accelerator = choose_accelerator()  # a GPU when there is one, mixed precision there
    trainer = pl.Trainer(
        accelerator=accelerator.lightning,
        precision=accelerator.precision,
        devices=1,
        max_steps=recipe.max_steps,
        max_time={"minutes": recipe.max_minutes + 15},  # safety net; Budget ends the run
        val_check_interval=recipe.val_every,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        logger=pl.loggers.CSVLogger(str(run_dir), name="csv"),
        callbacks=[checkpoints, Progress(), Budget()],
        enable_progress_bar=False,
        gradient_clip_val=1.0,
        log_every_n_steps=25,
    )
    model = EncDecCTCModel(cfg=cfg, trainer=trainer)
    if init is not None:
        model.load_state_dict(EncDecCTCModel.restore_from(str(init), map_location="cpu").state_dict())
    params = sum(p.numel() for p in model.parameters())
    resume = run_dir / "checkpoints" / "last.ckpt"
    with open(log_path, "a") as log:
        log.write(
            f"start: {params} params, {n_train} training utterances, recipe {asdict(recipe)}, "
            f"resume={resume.exists()}, accelerator {accelerator}\n"
        )
    started = time.time()
    trainer.fit(model, ckpt_path=str(resume) if resume.exists() else None)
    model.eval()
    model.save_to(str(out))
    stats = {
        "params": params,
        "steps": trainer.global_step,
        "train_utterances": n_train,
        "wall_s_last_session": round(time.time() - started, 1),
        "threads": recipe.threads,
        "accelerator": f"{accelerator.lightning} ({accelerator.precision})",
        "recipe": asdict(recipe),
    }
    (run_dir / "train_stats.json").write_text(json.dumps(stats, indent=1))
    with open(log_path, "a") as log:
        log.write(f"done: {stats}\n")
    return out
