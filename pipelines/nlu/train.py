"""Fine-tuning the joint model: length-bucketed batches, AdamW, linear warmup and decay, dev scoring
after every epoch (the best epoch by dev sentence accuracy is kept). On a GPU when there is one
(pipelines.accelerator: mixed precision there); the trained model is handed back on the CPU."""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from collections.abc import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn
from tqdm import tqdm

from pipelines.accelerator import Accelerator
from pipelines.accelerator import choose as choose_accelerator
from pipelines.nlu.corpus import INTENT_ONLY_SOURCES, Corpus
from pipelines.nlu.datasets import UNLABELLED, Example
from pipelines.nlu.joint_model import JointIntentSlotModel
from pipelines.nlu.metrics import score
from pipelines.nlu.recipes import Recipe
from pipelines.nlu.runtime import intent_slot

IGNORE = -100


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_batch(
    examples: Sequence[Example], tokenizer: Tokenizer, max_length: int, intent_ids: dict, tag_ids: dict
) -> dict[str, torch.Tensor]:
    input_ids, attention, firsts = intent_slot().encode_words(
        tokenizer, [e.words for e in examples], max_length
    )
    slot_labels = np.full(input_ids.shape, IGNORE, dtype=np.int64)
    for row, example in enumerate(examples):
        for word, position in enumerate(firsts[row, : len(example.words)]):
            if position >= 0 and example.tags[word] != UNLABELLED:
                slot_labels[row, position] = tag_ids.get(example.tags[word], tag_ids["O"])
    return {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(attention),
        "intent": torch.tensor([intent_ids.get(e.intent, -1) for e in examples], dtype=torch.long),
        "slots": torch.from_numpy(slot_labels),
        "firsts": torch.from_numpy(firsts),
    }


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


@torch.no_grad()
def predict(
    model: JointIntentSlotModel,
    examples: Sequence[Example],
    tokenizer: Tokenizer,
    max_length: int,
    intents: list[str],
    slot_tags: list[str],
    batch_size: int = 64,
    desc: str = "dev",
    accelerator: Accelerator | None = None,
) -> tuple[list[str], list[list[str]]]:
    """PyTorch predictions (intent, word tags), decoded like the runtime: best valid BIO sequence over
    the tag probabilities at each word's first sub-token."""
    model.eval()
    pred_intents: list[str] = []
    pred_tags: list[list[str]] = []
    intent_ids = {name: i for i, name in enumerate(intents)}
    tag_ids = {name: i for i, name in enumerate(slot_tags)}
    runtime = intent_slot()
    can_start, allowed = runtime.bio_transitions(slot_tags)
    outside = np.eye(len(slot_tags), dtype=np.float32)[slot_tags.index("O")]
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].words))
    results: dict[int, tuple[str, list[str]]] = {}
    for start in tqdm(range(0, len(order), batch_size), desc=f"    eval {desc}", unit="batch", leave=False):
        index = order[start : start + batch_size]
        batch = make_batch([examples[i] for i in index], tokenizer, max_length, intent_ids, tag_ids)
        device = accelerator.device if accelerator else "cpu"
        with accelerator.autocast() if accelerator else contextlib.nullcontext():
            intent_logits, slot_logits = model(
                batch["input_ids"].to(device), batch["attention_mask"].to(device)
            )
        intent_logits = intent_logits.float().cpu()
        slot_probs = torch.softmax(slot_logits.float(), dim=-1).cpu().numpy()
        for row, i in enumerate(index):
            firsts = batch["firsts"][row, : len(examples[i].words)].numpy()
            probs = slot_probs[row, np.clip(firsts, 0, None)]
            probs[firsts < 0] = outside
            best = runtime.viterbi_bio(probs, can_start, allowed)
            results[i] = (intents[int(intent_logits[row].argmax())], [slot_tags[t] for t in best])
    for i in range(len(examples)):
        pred_intents.append(results[i][0])
        pred_tags.append(results[i][1])
    return pred_intents, pred_tags


def evaluate_sets(
    model,
    sets: dict[str, list[Example]],
    tokenizer,
    recipe: Recipe,
    corpus: Corpus,
    accelerator: Accelerator | None = None,
) -> dict:
    out = {}
    for name, examples in sets.items():
        intents, tags = predict(
            model,
            examples,
            tokenizer,
            recipe.max_length,
            corpus.intents,
            corpus.slot_tags,
            desc=name,
            accelerator=accelerator,
        )
        out[name] = score(examples, intents, tags)
    return out


def selection_score(source: str, metrics: dict) -> float:
    """What picks the best epoch on one dev source: sentence accuracy, or intent accuracy where the
    slots are only partly annotated."""
    return metrics["intent_accuracy" if source in INTENT_ONLY_SOURCES else "sentence_accuracy"]


def train(model: JointIntentSlotModel, tokenizer: Tokenizer, corpus: Corpus, recipe: Recipe) -> dict:
    """Train in place; returns the history (per-epoch loss, dev scores, timings)."""
    seed_everything(recipe.seed)
    accelerator = choose_accelerator()
    model.to(accelerator.device)
    rng = random.Random(recipe.seed)
    examples = corpus.train_examples()
    intent_ids = {name: i for i, name in enumerate(corpus.intents)}
    tag_ids = {name: i for i, name in enumerate(corpus.slot_tags)}
    lengths = [
        len(enc.ids)
        for enc in tokenizer.encode_batch([list(e.words) for e in examples], is_pretokenized=True)
    ]
    steps_per_epoch = math.ceil(len(examples) / recipe.batch_size)
    total_steps = steps_per_epoch * recipe.epochs
    warmup = max(1, int(total_steps * recipe.warmup_ratio))

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = []
    for params_of, lr in (
        (model.encoder, recipe.learning_rate),
        (nn.ModuleList([model.intent_head, model.slot_head]), recipe.head_learning_rate),
    ):
        named = list(params_of.named_parameters())
        groups.append(
            {
                "params": [p for n, p in named if not n.endswith(no_decay)],
                "lr": lr,
                "weight_decay": recipe.weight_decay,
            }
        )
        groups.append(
            {"params": [p for n, p in named if n.endswith(no_decay)], "lr": lr, "weight_decay": 0.0}
        )
    optimizer = torch.optim.AdamW(groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / warmup, max(0.0, (total_steps - step) / max(1, total_steps - warmup))),
    )
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)
    scaler = accelerator.grad_scaler()

    history: dict = {"epochs": [], "steps": total_steps, "train_examples": len(examples)}
    history["accelerator"] = f"{accelerator.lightning} ({accelerator.precision})"
    best_key, best_state = -1.0, None
    started = time.perf_counter()
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        batches = bucketed_batches(lengths, recipe.batch_size, rng)
        running = 0.0
        bar = tqdm(batches, desc=f"    epoch {epoch}/{recipe.epochs}", unit="step")
        for step, index in enumerate(bar, 1):
            batch = make_batch(
                [examples[i] for i in index], tokenizer, recipe.max_length, intent_ids, tag_ids
            )
            batch = {key: value.to(accelerator.device) for key, value in batch.items()}
            with accelerator.autocast():
                intent_logits, slot_logits = model(batch["input_ids"], batch["attention_mask"])
                loss = loss_fn(intent_logits.float(), batch["intent"]) + recipe.slot_loss_weight * loss_fn(
                    slot_logits.float().reshape(-1, slot_logits.shape[-1]), batch["slots"].reshape(-1)
                )
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
        dev = evaluate_sets(model, corpus.dev, tokenizer, recipe, corpus, accelerator)
        key = float(np.mean([selection_score(name, m) for name, m in dev.items()]))
        record = {
            "epoch": epoch,
            "loss": running / max(1, len(batches)),
            "elapsed_s": round(time.perf_counter() - started, 1),
            "dev": {
                name: {k: m[k] for k in ("intent_accuracy", "slot_f1", "sentence_accuracy")}
                for name, m in dev.items()
            },
        }
        history["epochs"].append(record)
        summary = "  ".join(
            f"{name}: intent {m['intent_accuracy']:.4f} slot F1 {m['slot_f1']:.4f} "
            f"sent {m['sentence_accuracy']:.4f}"
            for name, m in record["dev"].items()
        )
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
