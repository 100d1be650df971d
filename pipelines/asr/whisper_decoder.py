"""Whisper's text decoder in PyTorch, on the weights of a CTranslate2 `model.bin`, with LoRA adapters.

Only the decoder is trained here (the encoder's output is CTranslate2's own, computed once per clip,
exactly as served). The adapters are low-rank updates W + B·A·(alpha/rank) of the decoder's linear
layers; `factors` gives them under CTranslate2's variable names, as
`rivulet.asr.whisper_weights` adds them to a `model.bin`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rivulet.asr.ct2_model_file import ModelFile

# the decoder's linear layers that get an adapter (CTranslate2 names, per layer)
ADAPTED = (
    "self_attention/linear_0",  # q, k, v
    "self_attention/linear_1",  # out
    "attention/linear_0",  # cross-attention q
    "attention/linear_2",  # cross-attention out
    "ffn/linear_0",
    "ffn/linear_1",
)


class Lora(nn.Module):
    def __init__(self, out_features: int, in_features: int, rank: int, alpha: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.randn(rank, in_features) / math.sqrt(in_features))
        self.b = nn.Parameter(torch.zeros(out_features, rank))
        self.scale = alpha / rank

    def delta(self) -> torch.Tensor:
        return (self.b @ self.a) * self.scale


class WhisperDecoder(nn.Module):
    def __init__(self, model: ModelFile, *, rank: int = 8, alpha: float = 16.0) -> None:
        super().__init__()
        self.frozen: dict[str, torch.Tensor] = {}
        for name, value in model.variables.items():
            if name.startswith("decoder/") and value.dtype != np.int8 and value.ndim > 0:
                self.frozen[name] = torch.from_numpy(value.astype(np.float32))
        self.n_layers = sum(1 for n in self.frozen if n.endswith("/self_attention/linear_1/weight"))
        heads = model.variables.get("decoder/num_heads")
        self.n_heads = int(heads) if heads is not None else 6
        self.adapters = nn.ModuleDict()
        for i in range(self.n_layers):
            for part in ADAPTED:
                w = self.frozen[f"decoder/layer_{i}/{part}/weight"]
                self.adapters[self._key(i, part)] = Lora(w.shape[0], w.shape[1], rank, alpha)
        embed = model.aliases.get("decoder/projection/weight", "decoder/projection/weight")
        self.projection = self.frozen.get(embed, self.frozen["decoder/embeddings/weight"])

    @staticmethod
    def _key(layer: int, part: str) -> str:
        return f"{layer}__{part.replace('/', '__')}"

    def _linear(self, x: torch.Tensor, layer: int, part: str) -> torch.Tensor:
        prefix = f"decoder/layer_{layer}/{part}"
        w = self.frozen[f"{prefix}/weight"]
        key = self._key(layer, part)
        if key in self.adapters:
            w = w + self.adapters[key].delta()
        return F.linear(x, w, self.frozen.get(f"{prefix}/bias"))

    def _norm(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.frozen[f"{prefix}/gamma"], self.frozen[f"{prefix}/beta"])

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
        out = F.scaled_dot_product_attention(self._heads(q), self._heads(k), self._heads(v), is_causal=causal)
        b, h, t, dh = out.shape
        return out.transpose(1, 2).reshape(b, t, h * dh)

    def forward(self, tokens: torch.Tensor, encoded: torch.Tensor) -> torch.Tensor:
        """Logits [B, T, vocab] for `tokens` [B, T] given the encoder's output [B, S, d]."""
        positions = self.frozen["decoder/position_encodings/encodings"][: tokens.shape[1]]
        x = F.embedding(tokens, self.frozen["decoder/embeddings/weight"]) + positions
        for i in range(self.n_layers):
            p = f"decoder/layer_{i}"
            h = self._norm(x, f"{p}/self_attention/layer_norm")
            q, k, v = self._linear(h, i, "self_attention/linear_0").chunk(3, dim=-1)
            x = x + self._linear(self._attend(q, k, v, causal=True), i, "self_attention/linear_1")
            h = self._norm(x, f"{p}/attention/layer_norm")
            q = self._linear(h, i, "attention/linear_0")
            k, v = self._linear(encoded, i, "attention/linear_1").chunk(2, dim=-1)
            x = x + self._linear(self._attend(q, k, v, causal=False), i, "attention/linear_2")
            h = self._norm(x, f"{p}/ffn/layer_norm")
            x = x + self._linear(F.gelu(self._linear(h, i, "ffn/linear_0")), i, "ffn/linear_1")
        return F.linear(self._norm(x, "decoder/layer_norm"), self.projection)

    @torch.no_grad()
    def factors(self) -> dict[str, np.ndarray]:
        """The adapters as `rivulet.asr.whisper_weights.adapted_weights` reads them: for each adapted
        weight (its CTranslate2 name), "<name>|a" (A) and "<name>|b" (B, scaled), float32."""
        out = {}
        for i in range(self.n_layers):
            for part in ADAPTED:
                lora = self.adapters[self._key(i, part)]
                name = f"decoder/layer_{i}/{part}/weight"
                out[f"{name}|a"] = lora.a.detach().numpy().astype(np.float32)
                out[f"{name}|b"] = (lora.b.detach() * lora.scale).numpy().astype(np.float32)
        return out
