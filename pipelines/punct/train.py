"""Fine-tuning the punctuation + capitalization model with `pipelines.finetune.fit` (the best epoch by
the dev macro F1 of marks + cases is kept). On a GPU when there is one (pipelines.accelerator)."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from pipelines.accelerator import choose as choose_accelerator
from pipelines.finetune import fit, seed_everything
from pipelines.nlu.train import IGNORE
from pipelines.punct.corpus import Corpus, Example
from pipelines.punct.metrics import score
from pipelines.punct.network import PunctCapitModel
from pipelines.punct.recipes import Recipe
from pipelines.punct.runtime import punct_capit


def make_batch(
    examples: Sequence[Example], tokenizer: Tokenizer, max_length: int, marks: dict, cases: dict
) -> dict[str, torch.Tensor]:
    input_ids, attention, firsts = punct_capit().encode_words(
        tokenizer, [e.words for e in examples], max_length
    )
    punct = np.full(input_ids.shape, IGNORE, dtype=np.int64)
    capit = np.full(input_ids.shape, IGNORE, dtype=np.int64)
    for row, example in enumerate(examples):
        for word, position in enumerate(firsts[row, : len(example.words)]):
            if position >= 0:
                punct[row, position] = marks[example.marks[word]]
                capit[row, position] = cases[example.cases[word]]
    return {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(attention),
        "punct": torch.from_numpy(punct),
        "capit": torch.from_numpy(capit),
        "firsts": torch.from_numpy(firsts),
    }


def label_weights(labels: Sequence[Sequence[str]], names: list[str], power: float) -> torch.Tensor:
    """Per-label loss weights (share × len(names)) ** -power from the labels' counts (1 for unseen)."""
    counts = np.array([sum(row.count(name) for row in labels) for name in names], dtype=np.float64)
    shares = counts * len(names) / max(1.0, counts.sum())
    return torch.tensor(np.where(counts > 0, np.maximum(shares, 1e-9) ** -power, 1.0), dtype=torch.float32)


@torch.no_grad()
def predict(
    model: PunctCapitModel, examples: Sequence[Example], tokenizer: Tokenizer, recipe: Recipe,
    marks: list[str], cases: list[str], device: str = "cpu", batch_size: int = 64,
) -> list[tuple[list[str], list[str]]]:  # fmt: skip
    """PyTorch predictions (mark, case per word; a word cut off by truncation gets O)."""
    model.eval()
    results: list[tuple[list[str], list[str]]] = [([], []) for _ in examples]
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].words))
    ids_of = ({m: i for i, m in enumerate(marks)}, {c: i for i, c in enumerate(cases)})
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        batch = make_batch([examples[i] for i in index], tokenizer, recipe.max_length, *ids_of)
        punct_logits, capit_logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        punct_best = punct_logits.float().argmax(-1).cpu().numpy()
        capit_best = capit_logits.float().argmax(-1).cpu().numpy()
        for row, i in enumerate(index):
            firsts = batch["firsts"][row, : len(examples[i].words)].numpy()
            results[i] = (
                [marks[punct_best[row, p]] if p >= 0 else marks[0] for p in firsts],
                [cases[capit_best[row, p]] if p >= 0 else cases[0] for p in firsts],
            )
    return results


def train(
    model: PunctCapitModel,
    tokenizer: Tokenizer,
    corpus: Corpus,
    recipe: Recipe,
    marks: list[str],
    cases: list[str],
) -> dict:
    """Train in place (`pipelines.finetune.fit`); returns the history (per-epoch loss, dev scores)."""
    seed_everything(recipe.seed)
    accelerator = choose_accelerator()
    model.to(accelerator.device)
    examples = corpus.train
    if recipe.train_examples:
        examples = random.Random(recipe.seed).sample(examples, min(recipe.train_examples, len(examples)))
    mark_ids = {m: i for i, m in enumerate(marks)}
    case_ids = {c: i for i, c in enumerate(cases)}
    punct_loss = nn.CrossEntropyLoss(
        weight=label_weights([e.marks for e in examples], marks, recipe.class_balance).to(accelerator.device),
        ignore_index=IGNORE,
    )
    capit_loss = nn.CrossEntropyLoss(
        weight=label_weights([e.cases for e in examples], cases, recipe.class_balance).to(accelerator.device),
        ignore_index=IGNORE,
    )

    def batch_of(index: list[int]) -> dict[str, torch.Tensor]:
        return make_batch([examples[i] for i in index], tokenizer, recipe.max_length, mark_ids, case_ids)

    def loss_of(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        punct_logits, capit_logits = model(batch["input_ids"], batch["attention_mask"])
        return punct_loss(
            punct_logits.float().reshape(-1, len(marks)), batch["punct"].reshape(-1)
        ) + capit_loss(capit_logits.float().reshape(-1, len(cases)), batch["capit"].reshape(-1))

    def validate() -> tuple[float, dict, str]:
        predictions = predict(model, corpus.dev, tokenizer, recipe, marks, cases, accelerator.device)
        dev = score(corpus.dev, predictions, marks[1:], cases[1:])
        scores = {
            "dev_punct_f1": {m: dev["punct"][m]["f1"] for m in marks[1:]},
            "dev_capit_f1": {c: dev["capit"][c]["f1"] for c in cases[1:]},
        }
        summary = f"mark F1 {scores['dev_punct_f1']}  case F1 {scores['dev_capit_f1']}"
        return dev["punct"]["macro_f1"] + dev["capit"]["macro_f1"], scores, summary

    heads = nn.ModuleList([model.punct_head, model.capit_head])
    parts = [(model.encoder, recipe.learning_rate), (heads, recipe.head_learning_rate)]
    lengths = [len(e.words) for e in examples]
    return fit(model, accelerator, parts, recipe, lengths, batch_of, loss_of, validate)
