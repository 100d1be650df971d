"""Punctuation and capitalization on Triton: the one client call every service uses (the NLU's
`PunctuateText`, the ASR's `enable_automatic_punctuation`).

Triton I/O contract of a punctuation model (models/punct_capit_en/config.pbtxt; its config says
`rivulet_task: punctuation`): input `TEXT` (BYTES, [1]), output `PUNCTUATED` (BYTES, [1]): the same
words, with `, . ?` added after words and case raised (nothing the text already has is removed).
Each text is its own Triton request, so the dynamic batcher batches texts from concurrent callers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from rivulet.core.triton import ModelInfo, TritonClient

PUNCTUATION_TASK = "punctuation"
DEFAULT_MODEL = "punct_capit_en"
OUTPUT = "PUNCTUATED"


def is_punctuation_model(info: ModelInfo) -> bool:
    return info.parameters.get("rivulet_task") == PUNCTUATION_TASK


async def punctuate(
    triton: TritonClient, texts: Sequence[str], model: str = DEFAULT_MODEL, request_id: str = ""
) -> list[str]:
    """Every text punctuated and capitalized by `model` (concurrently; results in the order of
    `texts`). A text without any non-space character comes back unchanged, without a model call."""

    async def one(text: str) -> str:
        if not text.strip():
            return text
        array = np.array([[text.encode("utf-8")]], dtype=object)
        outputs = await triton.infer(model, {"TEXT": array}, (OUTPUT,), request_id=request_id)
        value = outputs[OUTPUT].reshape(-1)[0]
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    return list(await asyncio.gather(*(one(t) for t in texts)))
