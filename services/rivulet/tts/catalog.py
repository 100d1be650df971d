"""Which voices exist: discovered from Triton, chosen by Riva voice name or language.

A Triton model is a synthesizer when its config.pbtxt has ``rivulet_task = "tts"``. Its
parameters say what it speaks, in the form Riva's ``GetRivaSynthesisConfig`` and
``talk.py --list-voices`` read: ``language_code`` (``en-US``), ``voice_name`` (``English-US``)
and ``subvoices`` (``Female-1:0,Male-1:1``); the full Riva voice name is
``<voice_name>.<subvoice>`` (``English-US.Female-1``). ``voices`` (JSON) adds, per subvoice, the
native sample rate and how the engine takes pronunciations (``phoneme_input``).
The catalog refreshes on every readiness check, so voices follow what Triton has loaded.

Voice aliases (`RIVULET_TTS_VOICE_ALIASES`, default `rivulet/aliases.toml`) give the names Riva
clients send by default (Pipecat's `Magpie-Multilingual.EN-US.Aria`, LiveKit's `…EN-US.Leo`) a
voice Rivulet has; an emotion suffix after an aliased name (`….Aria.Calm`) resolves like the name.
Aliases are listed as voice groups of their own (`voice_name` `Magpie-Multilingual.EN-US`,
`subvoices` `Aria:0,…`), so `talk.py --list-voices` shows them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from rivulet.core.aliases import Aliases
from rivulet.core.errors import not_found, unavailable
from rivulet.core.triton import ModelInfo, language_matches

TTS_TASK = "tts"


@dataclass(frozen=True)
class TtsVoice:
    """One Riva voice: a subvoice of a Triton synthesizer model."""

    model: str
    voice_name: str  # the model's Riva voice_name, e.g. "English-US"
    subvoice: str  # e.g. "Female-1"
    language_code: str
    sample_rate_hz: int
    phoneme_input: str = "respell"
    details: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.voice_name}.{self.subvoice}"

    def speaks(self, language_code: str) -> bool:
        return language_matches(self.language_code, language_code)


def voices_of(info: ModelInfo) -> list[TtsVoice]:
    params = info.parameters
    details = json.loads(params.get("voices", "{}") or "{}")
    language = params.get("language_code", "en-US")
    voice_name = params.get("voice_name", info.name)
    subvoices = [s.split(":")[0].strip() for s in params.get("subvoices", "").split(",") if s.strip()]
    found = []
    for sub in subvoices or list(details):
        spec = details.get(sub, {})
        found.append(
            TtsVoice(
                model=info.name,
                voice_name=voice_name,
                subvoice=sub,
                language_code=spec.get("language_code", language),
                sample_rate_hz=int(spec.get("sample_rate_hz", params.get("sample_rate_hz", 22050))),
                phoneme_input=spec.get("phoneme_input", params.get("phoneme_input", "respell")),
                details=spec,
            )
        )
    return found


class VoiceCatalog:
    def __init__(self, default_voice: str, triton_url: str, aliases: Aliases | None = None) -> None:
        self.default_voice = default_voice
        self.aliases = aliases or Aliases({})
        self.triton_url = triton_url
        self._models: dict[str, ModelInfo] = {}
        self._voices: dict[str, TtsVoice] = {}

    def update(self, infos: Iterable[ModelInfo]) -> None:
        models = {i.name: i for i in infos if i.parameters.get("rivulet_task") == TTS_TASK}
        voices: dict[str, TtsVoice] = {}
        for info in sorted(models.values(), key=lambda i: i.name):
            for voice in voices_of(info):
                voices.setdefault(voice.name.lower(), voice)
        self._models, self._voices = models, voices

    @property
    def models(self) -> list[ModelInfo]:
        return sorted(self._models.values(), key=lambda i: i.name)

    @property
    def voices(self) -> list[TtsVoice]:
        return list(self._voices.values())

    @property
    def default_ready(self) -> bool:
        return self.default_voice.lower() in self._voices

    def _alias_target(self, voice_name: str) -> str | None:
        """The voice an alias stands for; `<alias>.<Emotion>` (Magpie's emotions) counts as the alias."""
        target = self.aliases.target(voice_name)
        if target is None and voice_name.count(".") >= 2:
            target = self.aliases.target(voice_name.rsplit(".", 1)[0])
        return target

    def alias_groups(self) -> dict[str, list[tuple[str, TtsVoice]]]:
        """Aliases of loaded voices by their Riva voice_name: {"Magpie-Multilingual.EN-US":
        [("Aria", <English-US.Female-1>), ...]}; a name without a dot is a group of its own."""
        groups: dict[str, list[tuple[str, TtsVoice]]] = {}
        for alias, target in self.aliases.table.items():
            voice = self._voices.get(target.lower())
            if voice is not None:
                group, _, subvoice = alias.rpartition(".")
                groups.setdefault(group or alias, []).append((subvoice, voice))
        return groups

    def resolve(self, voice_name: str, language_code: str) -> TtsVoice:
        """The voice a request asks for: by full name, by a model's voice_name (its first subvoice),
        or — when empty — the default voice, else the first voice speaking ``language_code``."""
        if not self._voices:
            raise unavailable(
                f"no TTS model is ready on Triton at {self.triton_url}; retry when it has loaded"
            )
        names = ", ".join(v.name for v in self.voices)
        if voice_name:
            wanted = self._alias_target(voice_name) or voice_name
            voice = self._voices.get(wanted.lower()) or next(
                (v for v in self.voices if v.voice_name.lower() == wanted.lower()), None
            )
            if voice is None:
                aliases = self.aliases.note([v.name for v in self.voices])
                raise not_found(f"unknown voice {voice_name!r}; available voices: {names}{aliases}")
            if not voice.speaks(language_code):
                raise not_found(
                    f"voice {voice.name!r} speaks {voice.language_code}, not {language_code!r}; "
                    f"send language_code {voice.language_code!r} or pick another voice ({names})"
                )
            return voice
        default = self._voices.get(self.default_voice.lower())
        if default is not None and default.speaks(language_code):
            return default
        for voice in self.voices:
            if voice.speaks(language_code):
                return voice
        languages = ", ".join(sorted({v.language_code for v in self.voices}))
        raise not_found(f"no voice speaks language_code {language_code!r}; available languages: {languages}")
