"""Loading the pretrained encoder and its fast tokenizer from a Hugging Face directory (offline)."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer
from torch import nn


def load_encoder(path: Path, dropout: float | None = None) -> nn.Module:
    """A BERT-like `AutoModel` from a local directory; `dropout` overrides its hidden dropout."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    if dropout is not None and hasattr(config, "hidden_dropout_prob"):
        config.hidden_dropout_prob = dropout
    try:  # BERT-like models: the pooler is unused, leave it out
        return AutoModel.from_pretrained(
            str(path), config=config, local_files_only=True, add_pooling_layer=False
        )
    except TypeError:
        return AutoModel.from_pretrained(str(path), config=config, local_files_only=True)


def load_fast_tokenizer(path: Path) -> Tokenizer:
    """The encoder's fast tokenizer as a plain `tokenizers.Tokenizer` (what the runtime loads from
    tokenizer.json), with padding and truncation off: `intent_slot.encode_words` does both."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(path), local_files_only=True, use_fast=True)
    if not getattr(hf, "is_fast", False):
        raise ValueError(f"{path}: no fast tokenizer (tokenizer.json or a vocab a fast tokenizer can load)")
    tokenizer = Tokenizer.from_str(hf.backend_tokenizer.to_str())
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def encoder_files(path: Path) -> list[Path]:
    """The files that define the encoder (hashed into the build cache key)."""
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
