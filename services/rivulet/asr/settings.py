"""ASR service settings (`RIVULET_*` environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from rivulet.core.aliases import alias_setting
from rivulet.core.settings import ServiceSettings


class AsrSettings(ServiceSettings):
    asr_default_model: str = Field(
        "asr_streaming", description="Triton model used when a request names no model or language."
    )
    asr_max_stream_seconds: float = Field(
        300.0, gt=0, description="Longest audio per stream or Recognize call; longer → RESOURCE_EXHAUSTED."
    )
    asr_max_stream_bytes: int = Field(
        32 * 1024 * 1024, gt=0, description="Most audio bytes per stream or call; more → RESOURCE_EXHAUSTED."
    )
    asr_max_streams: int = Field(
        256, gt=0, description="Most concurrent streams and Recognize calls; more → RESOURCE_EXHAUSTED."
    )
    asr_offline_request_seconds: float = Field(
        1.6, gt=0, description="Recognize sends the audio to the model in requests of this many seconds."
    )
    asr_max_alternatives: int = Field(
        5, ge=1, description="Upper bound on max_alternatives (larger requests are clamped to it)."
    )
    asr_beam_size: int = Field(
        16, ge=1, description="Beam width of the Python CTC prefix beam search (open vocabulary, biasing)."
    )
    asr_lm_search: Literal["lexicon", "open"] = Field(
        "lexicon",
        description="How finals are decoded with a language model. lexicon: flashlight-text's C++ "
        "lexicon beam search (the LM's words only; ~4x cheaper and more accurate here); open: the Python "
        "search that also spells words outside the LM (at lm_oov_penalty). With speech_contexts the "
        "lexicon search boosts each word of the phrases (see asr_boost_floor_per_unit; words it lacks are "
        "added); the open search boosts whole phrases. Models without a ' ' token (BPE) use the open search.",
    )
    asr_lexicon_beam_size: int = Field(64, ge=1, description="Beam width of the lexicon search.")
    asr_lexicon_beam_threshold: float = Field(
        10.0, gt=0, description="The lexicon search drops hypotheses this many nats below the best."
    )
    asr_final_decoding: Literal["auto", "beam"] = Field(
        "auto",
        description="auto: finals by beam search with a language model, speech_contexts or "
        "max_alternatives > 1 (greedy otherwise: without an LM the best path rarely differs); beam: always.",
    )
    asr_model_repository: Path | None = Field(
        None,
        description="The Triton model repository, readable here: a model's `language_model` file is "
        "read from <repository>/<model>/. Unset: decoding without language models.",
    )
    asr_language_models: bool = Field(
        True,
        description="Decode finals with each model's n-gram language model (more accurate; costs some "
        "CPU). false: greedy finals, no LM.",
    )
    # LM fusion weights: each model's tuned values (config.pbtxt lexicon_alpha / lexicon_beta for the
    # lexicon search; lm_alpha, lm_beta, lm_oov_penalty for the open one) unless set here.
    asr_lm_alpha: float | None = Field(None, ge=0, description="Weight of the LM's ln P(word | history).")
    asr_lm_beta: float | None = Field(None, description="Bonus (nats) per word when decoding with an LM.")
    asr_lm_oov_penalty: float | None = Field(
        None, le=0, description="Penalty (nats) for a word the language model cannot spell."
    )
    asr_boost_scale: float = Field(
        0.2,
        gt=0,
        description="Natural-log score per unit of speech_contexts boost: per phrase in the open search; "
        "per word for negative boosts in the lexicon search.",
    )
    asr_boost_floor_per_unit: float = Field(
        1 / 300,
        gt=0,
        description="Lexicon search: a word boosted by b is at least b × this likely after any history "
        "(at most 0.5): boost 30 → 0.1.",
    )
    asr_max_context_phrases: int = Field(
        1000, gt=0, description="Most speech_contexts phrases per request; more → INVALID_ARGUMENT."
    )
    # Endpointing defaults (Riva-like); a request's EndpointingConfig overrides any of them.
    asr_start_history_ms: int = Field(300, ge=0, description="Window (ms) watched for the start of speech.")
    asr_start_threshold: float = Field(0.2, ge=0, le=1, description="Speech share that starts an utterance.")
    asr_stop_history_ms: int = Field(800, gt=0, description="Silence window (ms) that ends an utterance.")
    asr_stop_threshold: float = Field(0.98, ge=0, le=1, description="Non-speech share that ends it.")
    asr_stop_history_eou_ms: int = Field(
        -1, description="Earlier end-of-utterance window (ms) for an intermediate final; ≤ 0 disables."
    )
    asr_stop_threshold_eou: float = Field(0.77, ge=0, le=1, description="Non-speech share for that check.")
    # The second pass: a pretrained Whisper on Triton writes each final (see second_pass.py).
    asr_second_pass_model: str = Field(
        "asr_whisper",
        description="Triton model that transcribes each endpointed utterance for the final result "
        "(Whisper; the streaming model keeps interims and endpoints). Empty: the streaming model's finals.",
    )
    asr_second_pass_timeout_ms: float = Field(
        2000.0,
        gt=0,
        description="A second pass slower than this (after the endpoint) is dropped: the final is the "
        "streaming model's hypothesis instead (counted in rivulet_asr_finals_total{pass='streaming'}). "
        "Its Triton request is not cancelled: it ends by its deadline, this timeout + 1 s.",
    )
    asr_second_pass_max_in_flight: int = Field(
        32,
        ge=0,
        description="The most second passes in Triton at once. Below it the limit adapts to how fast "
        "Whisper answers (pass_admission.py: a few on 2 CPU cores, more on a GPU); a pass over the "
        "limit is not sent and the final is the streaming model's at once, rather than after the "
        "timeout. 0: no limit (every pass is sent, however late it will be).",
    )
    asr_second_pass_target_ms: float = Field(
        300.0,
        gt=0,
        description="A final that waited longer than this after its endpoint for its second pass (which "
        "started at the first silence) was late: it lowers the limit on passes in flight; one that "
        "waited less raises it.",
    )
    asr_second_pass_beam_size: int = Field(
        2,
        ge=1,
        le=10,
        description="Whisper beam (1: greedy, faster, less accurate); max_alternatives > 1 widens it, and "
        "hints are chosen among 5. 2 is as accurate as 5 on the dev speakers and about a fifth faster "
        "(services/rivulet/asr/README.md).",
    )
    asr_second_pass_speculate_after_ms: int = Field(
        60,
        ge=20,
        le=1000,
        description="VAD silence after speech at which an utterance's second pass starts speculatively "
        "while Whisper is idle; the pass's audio ends this long after the speech wherever it starts, so "
        "its transcript does not depend on when it ran. 30 brought the final ~25 ms sooner at p95 on 2 "
        "CPU cores but cut lone words' last sounds ('yes' -> 'yeah'; dev speakers streamed, WER 7.0 -> "
        "7.9 % at 8 streams): the VAD can place the end of a faint last sound up to 60 ms early "
        "(services/rivulet/asr/README.md).",
    )
    asr_second_pass_busy_speculate_after_ms: int = Field(
        240,
        ge=60,
        description="VAD silence after speech at which an utterance's second pass starts speculatively "
        "while Whisper is busy (asr_second_pass_busy_passes in flight); otherwise "
        "asr_second_pass_speculate_after_ms. A speculation "
        "that speech resumes after is dropped but still runs: on 2 CPU cores at 8–12 streams, 30 % of "
        "all speculations at 60 ms. Never later than 60 ms before the stream's early final "
        "(stop_history_eou) or endpoint (stop_history), so a short endpoint still finds its pass begun.",
    )
    asr_second_pass_busy_passes: int = Field(
        1,
        ge=0,
        description="Whisper counts as busy (asr_second_pass_busy_speculate_after_ms) while this many "
        "second passes are in flight. 0: always.",
    )
    asr_punctuation_model: str = Field(
        "punct_capit_en",
        description="Triton model that punctuates and capitalizes the streaming model's finals when a "
        "request sets enable_automatic_punctuation (Whisper's finals carry their own). Empty: none.",
    )
    asr_second_pass_context_ms: int = Field(
        300,
        ge=0,
        description="Audio kept before an utterance's first frame (after its speech: 60 ms, the "
        "silence at which the pass starts).",
    )
    asr_model_aliases: dict[str, str] = alias_setting(
        "asr", "ASR model", "config.model and GetRivaSpeechRecognitionConfig"
    )
