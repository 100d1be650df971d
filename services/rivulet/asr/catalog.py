"""Which ASR models exist: discovered from Triton, chosen by `config.model` or `language_code`.

A Triton model is a Rivulet ASR model when its config.pbtxt has the parameter
`rivulet_task = "asr_streaming"` (see models/asr_streaming and pipelines/asr); its other
parameters say what the service needs: `language_code`, `sample_rate_hz`, `chunk_ms`,
`frame_shift_ms`, `vocabulary`, `blank_index`, `tokenizer`, and optionally `language_model` (a
file in the model's directory, read from `RIVULET_ASR_MODEL_REPOSITORY`) with its tuned fusion
weights: `lexicon_alpha`, `lexicon_beta` for the lexicon search (`lexicon_decoding`, the default),
`lm_alpha`, `lm_beta`, `lm_oov_penalty` for the open-vocabulary one. The catalog refreshes
on every readiness check, so models loaded or unloaded on Triton appear and disappear without a
restart. Names in the alias table (`RIVULET_ASR_MODEL_ALIASES`, default `rivulet/aliases.toml`)
select their target model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rivulet.asr.language_model import DEFAULT_WEIGHTS, FusionWeights, LanguageModel, LanguageModels
from rivulet.asr.lexicon_decoding import Lexicon, lexicon_for
from rivulet.asr.vocabulary import Vocabulary
from rivulet.core.aliases import Aliases
from rivulet.core.errors import not_found, unavailable
from rivulet.core.triton import ModelInfo, language_matches

log = logging.getLogger(__name__)

ASR_TASK = "asr_streaming"
SECOND_PASS_TASK = "asr_second_pass"


@dataclass(frozen=True)
class AsrModel:
    name: str
    language_code: str
    vocabulary: Vocabulary
    sample_rate_hz: int = 16_000
    chunk_ms: int = 160
    frame_shift_ms: float = 40.0
    parameters: Mapping[str, str] = field(default_factory=dict)
    language_model: LanguageModel | None = field(default=None, compare=False, repr=False)
    fusion: FusionWeights = DEFAULT_WEIGHTS
    lexicon: Lexicon | None = field(default=None, compare=False, repr=False)
    lexicon_fusion: FusionWeights = DEFAULT_WEIGHTS

    @classmethod
    def from_triton(cls, info: ModelInfo, language_model: LanguageModel | None = None) -> AsrModel:
        params = dict(info.parameters)
        vocabulary = Vocabulary.from_parameters(params)
        return cls(
            name=info.name,
            language_code=params.get("language_code", "en-US"),
            vocabulary=vocabulary,
            sample_rate_hz=int(params.get("sample_rate_hz", 16_000)),
            chunk_ms=int(params.get("chunk_ms", 160)),
            frame_shift_ms=float(params.get("frame_shift_ms", 40)),
            parameters=params,
            language_model=language_model,
            fusion=FusionWeights.from_parameters(params),
            lexicon=lexicon_for(language_model, vocabulary) if language_model else None,
            lexicon_fusion=FusionWeights.from_parameters(params, "lexicon"),
        )

    @property
    def chunk_samples(self) -> int:
        return self.sample_rate_hz * self.chunk_ms // 1000

    @property
    def frame_samples(self) -> int:
        """Samples per output frame (the frame shift)."""
        return round(self.frame_shift_ms * self.sample_rate_hz / 1000)

    def speaks(self, language_code: str) -> bool:
        return language_matches(self.language_code, language_code)


class ModelCatalog:
    def __init__(
        self,
        default_model: str,
        triton_url: str,
        model_repository: Path | None = None,
        aliases: Aliases | None = None,
    ) -> None:
        self.default_model = default_model
        self.aliases = aliases or Aliases({})
        self.triton_url = triton_url
        self.model_repository = model_repository
        self._models: dict[str, AsrModel] = {}
        self._language_models = LanguageModels()
        self._warned: set[str] = set()
        self._second_passes: dict[str, dict[str, str]] = {}  # ready second-pass models: parameters

    def _language_model(self, info: ModelInfo) -> LanguageModel | None:
        relative = info.parameters.get("language_model", "")
        if not relative:
            return None
        if self.model_repository is None:  # not set, or RIVULET_ASR_LANGUAGE_MODELS=false
            if info.name not in self._warned:
                self._warned.add(info.name)
                log.warning(
                    "model %s names the language model %s, but RIVULET_ASR_MODEL_REPOSITORY is not set "
                    "(or RIVULET_ASR_LANGUAGE_MODELS is false): decoding without it",
                    info.name,
                    relative,
                )
            return None
        return self._language_models.get(self.model_repository / info.name / relative)

    def update(self, infos: Iterable[ModelInfo]) -> None:
        models = {}
        second_passes = {}
        for info in infos:
            if info.parameters.get("rivulet_task") == SECOND_PASS_TASK:
                second_passes[info.name] = dict(info.parameters)
            if info.parameters.get("rivulet_task") != ASR_TASK:
                continue
            try:
                models[info.name] = AsrModel.from_triton(info, self._language_model(info))
            except (ValueError, TypeError) as exc:
                log.warning("ignoring ASR model %s: its config parameters are unusable (%s)", info.name, exc)
        self._models = models
        self._second_passes = second_passes

    def second_pass(self, name: str) -> str | None:
        """`name` when that second-pass model is ready on Triton (else finals stay streaming)."""
        return name if name and name in self._second_passes else None

    def second_pass_description(self, name: str) -> str:
        params = self._second_passes.get(name)
        if params is None:
            return "none"
        return f"{name} (whisper {params.get('whisper_model', '?')}, {params.get('compute_type', '?')})"

    @property
    def models(self) -> list[AsrModel]:
        return sorted(self._models.values(), key=lambda m: m.name)

    @property
    def default_ready(self) -> bool:
        return self.default_model in self._models

    def _available(self) -> str:
        served = ", ".join(f"{m.name} ({m.language_code})" for m in self.models) or "none"
        return served + self.aliases.note([m.name for m in self.models])

    def get(self, name: str) -> AsrModel | None:
        """The model called `name`, directly or through an alias; None when neither is loaded."""
        return self._models.get(name) or self._models.get(self.aliases.resolve(name))

    def select(self, model: str = "", language_code: str = "") -> AsrModel:
        """The model named `model`, else the default (or first) model speaking `language_code`."""
        if not self._models:
            raise unavailable(
                f"no ASR model is ready on Triton at {self.triton_url}; retry when it has loaded"
            )
        if model:
            found = self.get(model)
            if found is None:
                raise not_found(f"unknown ASR model {model!r}; available models: {self._available()}")
            if not found.speaks(language_code):
                raise not_found(
                    f"model {model!r} recognizes {found.language_code}, not {language_code!r}; "
                    f"send language_code {found.language_code!r} or leave it empty"
                )
            return found
        candidates = [m for m in self.models if m.speaks(language_code)]
        if not candidates:
            raise not_found(
                f"no ASR model recognizes language_code {language_code!r}; available: {self._available()}"
            )
        default = self._models.get(self.default_model)
        return default if default in candidates else candidates[0]
