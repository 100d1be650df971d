"""Fine-tuning the joint model with `pipelines.finetune.fit`: length-bucketed batches, AdamW, linear
warmup and decay, dev scoring after every epoch (the best epoch by dev sentence accuracy is kept).
On a GPU when there is one (pipelines.accelerator: mixed precision there); the trained model is
handed back on the CPU."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn
from tqdm import tqdm

from pipelines.accelerator import Accelerator
from pipelines.accelerator import choose as choose_accelerator
from pipelines.finetune import bucketed_batches, fit, seed_everything
from pipelines.nlu.corpus import INTENT_ONLY_SOURCES, Corpus
from pipelines.nlu.datasets import UNLABELLED, Example
from pipelines.nlu.joint_model import JointIntentSlotModel
from pipelines.nlu.metrics import score
from pipelines.nlu.recipes import Recipe
from pipelines.nlu.runtime import intent_slot

IGNORE = -100
__all__ = ["IGNORE", "bucketed_batches", "evaluate_sets", "make_batch", "predict", "seed_everything", "train"]


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
    examples = corpus.train_examples(recipe.real_in_scope_repeats)
    intent_ids = {name: i for i, name in enumerate(corpus.intents)}
    tag_ids = {name: i for i, name in enumerate(corpus.slot_tags)}
    lengths = [
        len(enc.ids)
        for enc in tokenizer.encode_batch([list(e.words) for e in examples], is_pretokenized=True)
    ]
    heads = nn.ModuleList([model.intent_head, model.slot_head])
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)

    def batch_of(index: list[int]) -> dict[str, torch.Tensor]:
        return make_batch([examples[i] for i in index], tokenizer, recipe.max_length, intent_ids, tag_ids)

    def loss_of(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        intent_logits, slot_logits = model(batch["input_ids"], batch["attention_mask"])
        return loss_fn(intent_logits.float(), batch["intent"]) + recipe.slot_loss_weight * loss_fn(
            slot_logits.float().reshape(-1, slot_logits.shape[-1]), batch["slots"].reshape(-1)
        )

    def validate() -> tuple[float, dict, str]:
        dev = evaluate_sets(model, corpus.dev, tokenizer, recipe, corpus, accelerator)
        scores = {
            name: {k: m[k] for k in ("intent_accuracy", "slot_f1", "sentence_accuracy")}
            for name, m in dev.items()
        }
        summary = "  ".join(
            f"{name}: intent {m['intent_accuracy']:.4f} slot F1 {m['slot_f1']:.4f} "
            f"sent {m['sentence_accuracy']:.4f}"
            for name, m in scores.items()
        )
        return float(np.mean([selection_score(name, m) for name, m in dev.items()])), {"dev": scores}, summary

    parts = [(model.encoder, recipe.learning_rate), (heads, recipe.head_learning_rate)]
    return fit(model, accelerator, parts, recipe, lengths, batch_of, loss_of, validate)
