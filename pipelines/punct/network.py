"""The punctuation + capitalization network: a BERT-like encoder and two token heads."""

from __future__ import annotations

import torch
from torch import nn


def keep_layers(encoder: nn.Module, count: int) -> nn.Module:
    """The encoder with only its first `count` transformer layers (a BERT-like `encoder.layer` list)."""
    layers = encoder.encoder.layer
    if not 0 < count <= len(layers):
        raise ValueError(f"cannot keep {count} of the encoder's {len(layers)} layers")
    encoder.encoder.layer = layers[:count]
    encoder.config.num_hidden_layers = count
    return encoder


class PunctCapitModel(nn.Module):
    """Per sub-token: logits of the mark that follows the word and of the word's case (the first
    sub-token of a word carries the word's labels)."""

    def __init__(self, encoder: nn.Module, num_marks: int, num_cases: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.punct_head = nn.Linear(hidden, num_marks)
        self.capit_head = nn.Linear(hidden, num_cases)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        states = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
        ).last_hidden_state
        states = self.dropout(states)
        return self.punct_head(states), self.capit_head(states)
