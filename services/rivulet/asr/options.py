"""A Riva `RecognitionConfig` checked and turned into what one recognition needs.

Every problem becomes INVALID_ARGUMENT with a message that says what to send instead. With the
second pass (Whisper) deployed, `verbatim_transcripts` chooses the spoken or written form of
finals and `enable_automatic_punctuation` keeps Whisper's punctuation and capitals; without it
both are accepted and ignored (lower-case words). `profanity_filter` is accepted and ignored.
`custom_configuration` keys Rivulet reads: `lm_search` (`lexicon` or `open`: which LM search
decodes the streaming model's finals, instead of `RIVULET_ASR_LM_SEARCH`) and
`speech_contexts_mode` (`boost`, the default, or `closed`: the final is one of the
speech_contexts phrases), `second_pass` (`false`: the streaming model's finals) and
`second_pass_window_s` (10-30: the least Whisper encoder window, faster when smaller) and
`whisper_interims_ms` (0, the default, or 200-10000: while an utterance goes on, Whisper's transcript
of it so far as the interim results, every that many ms of speech; `live_captions.py`); other keys
are ignored, as Riva ignores keys its pipeline does not use.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field

from riva.proto import riva_asr_pb2 as asr

from rivulet.asr.biasing import ContextGraph, word_boosts
from rivulet.asr.catalog import AsrModel, ModelCatalog
from rivulet.asr.endpointing import EndpointingParams
from rivulet.asr.second_pass import CLOSED_SET, PassOptions
from rivulet.asr.settings import AsrSettings
from rivulet.core import audio
from rivulet.core.errors import invalid_argument

# Raw encodings need the client's sample rate; container formats carry their own.
RAW_ENCODINGS = (audio.LINEAR_PCM, audio.MULAW, audio.ALAW)
SUPPORTED = (audio.LINEAR_PCM, audio.FLAC, audio.MULAW, audio.ALAW, audio.OGGOPUS)


@dataclass(frozen=True)
class RecognitionOptions:
    model: AsrModel
    encoding: int  # ENCODING_UNSPECIFIED: no rate declared, the audio's header (WAV/FLAC/Ogg) says
    sample_rate_hz: int  # 0 when the audio's header says it
    endpointing: EndpointingParams
    context: ContextGraph | None  # speech_contexts for the open search (phrases)
    max_alternatives: int
    word_time_offsets: bool
    interim_results: bool = False
    lm_search: str | None = None  # custom_configuration["lm_search"]; None: the service's setting
    word_boosts: dict[str, float] = field(default_factory=dict)  # speech_contexts for the lexicon search
    second_pass: str | None = None  # the Whisper model writing finals, when one is ready
    pass_options: PassOptions = field(default_factory=PassOptions)
    verbatim: bool = True  # second-pass finals: spoken form (words) or written form (digits)
    punctuation: bool = False  # second-pass finals: keep punctuation and capitals
    whisper_interims_ms: int = 0  # live captions by Whisper every this many ms of speech; 0: off


CONTEXT_MODES = ("boost", CLOSED_SET)


def _second_pass_on(config: asr.RecognitionConfig) -> bool:
    value = config.custom_configuration.get("second_pass", "true").lower()
    if value not in ("true", "false"):
        raise invalid_argument(
            f"custom_configuration second_pass={value!r}: use 'true' (Whisper writes the finals, the "
            "default) or 'false' (the streaming model's own finals)"
        )
    return value == "true"


def pass_options(config: asr.RecognitionConfig, settings: AsrSettings, alternatives: int) -> PassOptions:
    mode = config.custom_configuration.get("speech_contexts_mode", "boost")
    if mode not in CONTEXT_MODES:
        raise invalid_argument(
            f"custom_configuration speech_contexts_mode={mode!r} is unknown: use 'boost' (the phrases are "
            "made likelier) or 'closed' (only the phrases can be heard), or leave it out"
        )
    phrases = tuple((p, c.boost) for c in config.speech_contexts for p in c.phrases if p.strip())
    if mode == CLOSED_SET and not phrases:
        raise invalid_argument("speech_contexts_mode=closed needs speech_contexts with the allowed phrases")
    return PassOptions(
        beam_size=max(settings.asr_second_pass_beam_size, alternatives if alternatives > 1 else 1),
        num_hypotheses=alternatives,
        word_timestamps=config.enable_word_time_offsets,
        phrases=phrases,
        closed=mode == CLOSED_SET,
        window_s=_second_pass_window_s(config),
    )


def _second_pass_window_s(config: asr.RecognitionConfig) -> float:
    """custom_configuration second_pass_window_s: the least Whisper encoder window, 10-30 s (a
    shorter window is faster and less accurate; below 10 s Whisper loops)."""
    value = config.custom_configuration.get("second_pass_window_s")
    if value is None:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 10.0 <= seconds <= 30.0:
        raise invalid_argument(
            f"custom_configuration second_pass_window_s={value!r}: use a number of seconds from 10 (fast) "
            "to 30 (Whisper's whole window, the most accurate), or leave it out (the model's setting)"
        )
    return seconds


LM_SEARCHES = typing.get_args(AsrSettings.model_fields["asr_lm_search"].annotation)


WHISPER_INTERIMS_MS = (200, 10_000)  # the allowed interval between live captions


def _whisper_interims_ms(config: asr.RecognitionConfig) -> int:
    """custom_configuration whisper_interims_ms: 0 (off) or 200-10000 ms of speech between captions."""
    value = config.custom_configuration.get("whisper_interims_ms", "0")
    low, high = WHISPER_INTERIMS_MS
    try:
        ms = int(value)
    except ValueError:
        ms = -1
    if ms != 0 and not low <= ms <= high:
        raise invalid_argument(
            f"custom_configuration whisper_interims_ms={value!r}: use 0 (interim results from the "
            f"streaming model) or a whole number of milliseconds from {low} to {high} (Whisper's "
            "transcript of the utterance so far, that often while it goes on)"
        )
    return ms


def _lm_search(config: asr.RecognitionConfig) -> str | None:
    value = config.custom_configuration.get("lm_search")
    if value is None:
        return None
    if value not in LM_SEARCHES:
        raise invalid_argument(
            f"custom_configuration lm_search={value!r} is unknown: use 'lexicon' (closed vocabulary, "
            "the LM's words) or 'open' (also words outside the LM), or leave it out"
        )
    return value


def endpointing_params(config: asr.RecognitionConfig, settings: AsrSettings) -> EndpointingParams:
    ep = config.endpointing_config if config.HasField("endpointing_config") else None

    def pick(name: str, default: float) -> float:
        return getattr(ep, name) if ep is not None and ep.HasField(name) else default

    params = EndpointingParams(
        start_history_ms=int(pick("start_history", settings.asr_start_history_ms)),
        start_threshold=pick("start_threshold", settings.asr_start_threshold),
        stop_history_ms=int(pick("stop_history", settings.asr_stop_history_ms)),
        stop_threshold=pick("stop_threshold", settings.asr_stop_threshold),
        stop_history_eou_ms=int(pick("stop_history_eou", settings.asr_stop_history_eou_ms)),
        stop_threshold_eou=pick("stop_threshold_eou", settings.asr_stop_threshold_eou),
    )
    problems = params.problems()
    if problems:
        raise invalid_argument("endpointing_config: " + "; ".join(problems))
    return params


def _context(config: asr.RecognitionConfig, model: AsrModel, settings: AsrSettings) -> ContextGraph | None:
    phrases = sum(len(c.phrases) for c in config.speech_contexts)
    if phrases > settings.asr_max_context_phrases:
        raise invalid_argument(
            f"speech_contexts has {phrases} phrases; the limit is {settings.asr_max_context_phrases} "
            "(boost fewer phrases or raise RIVULET_ASR_MAX_CONTEXT_PHRASES)"
        )
    for i, context in enumerate(config.speech_contexts):
        if not math.isfinite(context.boost):
            raise invalid_argument(f"speech_contexts[{i}].boost={context.boost} must be a finite number")
    return ContextGraph.from_speech_contexts(
        ((c.phrases, c.boost) for c in config.speech_contexts), model.vocabulary, settings.asr_boost_scale
    )


def recognition_options(
    config: asr.RecognitionConfig,
    catalog: ModelCatalog,
    settings: AsrSettings,
    *,
    streaming: bool,
    interim_results: bool = False,
) -> RecognitionOptions:
    declared = config.encoding
    if declared and declared not in SUPPORTED:
        raise invalid_argument(
            f"encoding {audio.encoding_name(declared)} is not supported: use LINEAR_PCM (16-bit), "
            "FLAC, MULAW, ALAW or OGGOPUS, or leave it unset and send a WAV/FLAC/Ogg file"
        )
    rate = config.sample_rate_hertz
    if rate:
        try:
            audio.check_sample_rate(rate)
        except audio.AudioFormatError as exc:
            raise invalid_argument(str(exc)) from exc
    # Raw audio without a rate: the audio's own header must say (a WAV file streamed from its first
    # byte, as python-clients' transcribe_file.py does); audio.PcmDecoder refuses a stream without one.
    encoding = declared or audio.LINEAR_PCM
    if encoding in RAW_ENCODINGS and not rate:
        encoding = audio.ENCODING_UNSPECIFIED
    if config.audio_channel_count > 1:
        raise invalid_argument(
            f"audio_channel_count={config.audio_channel_count}: only mono audio is supported; "
            "send one channel (downmix, or one stream per channel)"
        )
    if config.diarization_config.enable_speaker_diarization:
        raise invalid_argument("speaker diarization is not supported: leave diarization_config unset")
    model = catalog.select(config.model, config.language_code)
    alternatives = min(max(config.max_alternatives, 1), settings.asr_max_alternatives)
    return RecognitionOptions(
        model=model,
        encoding=encoding,
        sample_rate_hz=rate,
        endpointing=endpointing_params(config, settings),
        context=_context(config, model, settings),
        max_alternatives=alternatives,
        word_time_offsets=config.enable_word_time_offsets,
        interim_results=interim_results,
        lm_search=_lm_search(config),
        word_boosts=word_boosts(((c.phrases, c.boost) for c in config.speech_contexts), model.vocabulary),
        second_pass=catalog.second_pass(settings.asr_second_pass_model if _second_pass_on(config) else ""),
        pass_options=pass_options(config, settings, alternatives),
        verbatim=config.verbatim_transcripts,
        punctuation=config.enable_automatic_punctuation,
        whisper_interims_ms=_whisper_interims_ms(config),
    )
