"""NLU service settings (`RIVULET_*` environment variables)."""

from __future__ import annotations

from pydantic import Field

from rivulet.core.aliases import alias_setting
from rivulet.core.settings import ServiceSettings


class NluSettings(ServiceSettings):
    nlu_default_model: str = Field(
        "intent_assistant", description="Triton model used when a request names no model or domain."
    )
    nlu_max_text_chars: int = Field(
        512, gt=0, description="Longest text accepted per query; longer → INVALID_ARGUMENT."
    )
    nlu_max_texts_per_request: int = Field(
        64, gt=0, description="Most texts in one ClassifyText/ClassifyTokens request."
    )
    nlu_model_aliases: dict[str, str] = alias_setting(
        "nlu", "NLU model", "model_name and AnalyzeIntentOptions.domain"
    )
