"""The joint intent + slot network: a BERT-like encoder, a pooled intent head and a token slot head."""

from __future__ import annotations

import torch
from torch import nn


class JointIntentSlotModel(nn.Module):
    """Intent logits from the masked mean of the encoder states (all-MiniLM-L6-v2 was trained with mean
    pooling); slot logits per sub-token (the first sub-token of a word carries the word's tag)."""

    def __init__(self, encoder: nn.Module, num_intents: int, num_slot_tags: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.intent_head = nn.Linear(hidden, num_intents)
        self.slot_head = nn.Linear(hidden, num_slot_tags)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        states = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids),
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        intent_logits = self.intent_head(self.dropout(pooled))
        slot_logits = self.slot_head(self.dropout(states))
        return intent_logits, slot_logits
