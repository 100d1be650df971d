"""Which NLU models exist: discovered from Triton, chosen by model name or domain.

A Triton model is an NLU intent/slot model when its config.pbtxt has
`parameters { key: "rivulet_task" value { string_value: "intent_slot" } }`; its `domain` and
`language_code` parameters say what it covers. The catalog refreshes on every readiness check,
so models loaded or unloaded on Triton appear and disappear without a restart. Names in the alias
table (`RIVULET_NLU_MODEL_ALIASES`, default `rivulet/aliases.toml`: python-clients' r2.14 script
defaults such as `riva_intent_weather`) select their target model, as a model name or a domain.
Punctuation models (`rivulet_task: punctuation`, rivulet.core.punctuation) are kept beside them
for `PunctuateText`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rivulet.core.aliases import Aliases
from rivulet.core.errors import not_found, unavailable, unimplemented
from rivulet.core.punctuation import is_punctuation_model
from rivulet.core.triton import ModelInfo, language_matches

INTENT_SLOT_TASK = "intent_slot"


@dataclass(frozen=True)
class NluModel:
    name: str
    domain: str
    language_code: str
    parameters: dict[str, str] = field(default_factory=dict)
    task: str = INTENT_SLOT_TASK

    @classmethod
    def from_triton(cls, info: ModelInfo) -> NluModel:
        params = dict(info.parameters)
        return cls(
            name=info.name,
            domain=params.get("domain", info.name),
            language_code=params.get("language_code", "en-US"),
            parameters=params,
            task=params.get("rivulet_task", INTENT_SLOT_TASK),
        )

    def speaks(self, language_code: str) -> bool:
        return language_matches(self.language_code, language_code)


class ModelCatalog:
    def __init__(self, default_model: str, triton_url: str, aliases: Aliases | None = None) -> None:
        self.default_model = default_model
        self.aliases = aliases or Aliases({})
        self.triton_url = triton_url
        self._models: dict[str, NluModel] = {}
        self._punctuation: dict[str, NluModel] = {}

    def update(self, infos: Iterable[ModelInfo]) -> None:
        infos = list(infos)
        self._models = {
            info.name: NluModel.from_triton(info)
            for info in infos
            if info.parameters.get("rivulet_task") == INTENT_SLOT_TASK
        }
        self._punctuation = {
            info.name: NluModel.from_triton(info) for info in infos if is_punctuation_model(info)
        }

    @property
    def models(self) -> list[NluModel]:
        """The intent/slot models."""
        return sorted(self._models.values(), key=lambda m: m.name)

    @property
    def listed_models(self) -> list[NluModel]:
        """Every NLU model GetRivaNLPConfig lists: intent/slot models, then punctuation models."""
        return self.models + sorted(self._punctuation.values(), key=lambda m: m.name)

    @property
    def default_ready(self) -> bool:
        return self.default_model in self._models

    def _available(self) -> str:
        served = ", ".join(sorted(self._models)) or "none"
        return served + self.aliases.note([m.name for m in self.models])

    def _require_any(self) -> None:
        if not self._models:
            raise unavailable(
                f"no NLU model is ready on Triton at {self.triton_url}; retry when it has loaded"
            )

    def _check_language(self, model: NluModel, language_code: str) -> NluModel:
        if not model.speaks(language_code):
            raise not_found(
                f"model {model.name!r} serves {model.language_code}, not {language_code!r}; "
                f"send language_code {model.language_code!r} or leave it empty"
            )
        return model

    def by_name(self, name: str, language_code: str = "") -> NluModel:
        """The model named `name` ('' = the default model)."""
        self._require_any()
        key = name or self.default_model
        model = self._models.get(key) or self._models.get(self.aliases.resolve(key))
        if model is None:
            raise not_found(f"unknown NLU model {key!r}; available models: {self._available()}")
        return self._check_language(model, language_code)

    def by_domain(self, domain: str, language_code: str = "") -> NluModel:
        """The model for `domain` ('' = the default model); a model name is accepted as a domain too."""
        self._require_any()
        if not domain:
            return self.by_name("", language_code)
        name = self.aliases.resolve(domain)
        for model in self.models:
            if model.domain == domain or model.name in (domain, name):
                return self._check_language(model, language_code)
        available = ", ".join(sorted({m.domain for m in self.models}))
        raise not_found(f"unknown NLU domain {domain!r}; available domains: {available}")

    def punctuation(self, name: str, language_code: str = "") -> NluModel:
        """The punctuation model named `name` (or an alias of it); '' = the first one loaded that
        speaks `language_code`, as Riva picks one when PunctuateText names no model."""
        self._require_any()
        if not name:
            for model in sorted(self._punctuation.values(), key=lambda m: m.name):
                if model.speaks(language_code):
                    return model
            if not self._punctuation:
                raise unimplemented(
                    "PunctuateText: no punctuation model is loaded on Triton (`make models` builds "
                    "punct_capit_en; `make run` serves it)"
                )
            raise not_found(f"no punctuation model speaks {language_code!r}; {self._punctuation_note()}")
        model = self._punctuation.get(name) or self._punctuation.get(self.aliases.resolve(name))
        if model is None:
            raise not_found(f"unknown punctuation model {name!r}; {self._punctuation_note()}")
        return self._check_language(model, language_code)

    def _punctuation_note(self) -> str:
        served = sorted(self._punctuation)
        languages = ", ".join(f"{m.name} ({m.language_code})" for m in self._punctuation.values())
        return f"available punctuation models: {languages or 'none'}" + self.aliases.note(served)
