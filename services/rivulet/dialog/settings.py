"""Dialog service settings (`RIVULET_DIALOG_*` environment variables)."""

from __future__ import annotations

from pydantic import Field, field_validator

from rivulet.core.settings import ServiceSettings

DEFAULT_BACKCHANNELS = (
    "uh-huh uh huh mhm mm-hmm mm hmm hm um uh ah oh okay ok yeah yes yep right sure alright "
    "i see got it wow really nice cool great"
)


class DialogSettings(ServiceSettings):
    dialog_asr_url: str = Field("localhost:50051", description="Riva ASR service address host:port.")
    dialog_nlu_url: str = Field("localhost:50051", description="Riva NLU service address host:port.")
    dialog_tts_url: str = Field("localhost:50051", description="Riva TTS service address host:port.")
    dialog_nlu_domain: str = Field("assistant", description="AnalyzeIntentOptions.domain sent to the NLU.")
    dialog_asr_model: str = Field("", description="ASR model name (empty: the ASR service's default).")
    dialog_rpc_timeout_s: float = Field(5.0, gt=0, description="Deadline of one NLU call / TTS stream start.")
    dialog_session_ttl_s: int = Field(
        7 * 24 * 3600, gt=0, description="A session (and its data) expires this long after its last turn."
    )
    dialog_history_limit: int = Field(50, gt=0, description="Turns kept in a session's history.")
    dialog_log_maxlen: int = Field(10_000, gt=0, description="Approximate cap of a session's event log.")
    dialog_lock_timeout_s: float = Field(
        2.0,
        gt=0,
        description=(
            "Expiry of a session lock, renewed every third of it while its turn runs: a replica killed "
            "mid-turn holds the session at most this long."
        ),
    )
    dialog_lock_wait_s: float = Field(
        10.0, gt=0, description="How long a request waits for another request on the same session."
    )
    dialog_time_zone: str = Field("UTC", description="Default IANA time zone for clocks, timers and alarms.")
    dialog_nlu_threshold: float = Field(
        0.5, ge=0, le=1, description="Intent scores below this are treated as not understood."
    )
    dialog_out_of_scope_intent: str = Field(
        "OutOfScope",
        description=(
            "The NLU intent that means a request outside everything the assistant does: answered with "
            "what it can do instead of acting (the model's out_of_scope_intent in GetRivaNLPConfig)."
        ),
    )
    dialog_max_text_chars: int = Field(512, gt=0, description="Longest typed or transcribed turn.")
    dialog_max_streams: int = Field(256, gt=0, description="Open Converse streams per replica.")
    dialog_stop_silence_ms: int = Field(160, gt=0, description="Default end-of-turn silence (endpointing).")
    dialog_early_final_ms: int = Field(
        100,
        ge=0,
        description=(
            "Silence (ms) after which the ASR is asked for an early final (Riva's stop_history_eou: "
            "with the Whisper pass, its transcript as soon as it is back): the turn is then understood and "
            "its reply synthesized while the end-of-turn silence is still awaited, and spoken only if the "
            "final says the same words. 0: no early final, every turn waits for its final."
        ),
    )
    dialog_vad_endpointing: bool = Field(
        True,
        description=(
            "End a spoken turn when a voice activity detector (WebRTC VAD) hears the end-of-turn silence "
            "in the audio, without waiting for the ASR's own endpointing (LINEAR_PCM, MULAW, ALAW)."
        ),
    )
    dialog_asr_hint_boost: float = Field(
        30.0,
        ge=0,
        description=(
            "Riva speech_contexts boost given to the words the dialog expects next (the answers to its "
            "question, yes/no, follow-ups; rivulet.dialog.hints); 0 turns the hints off."
        ),
    )
    dialog_asr_follow_up_boost: float = Field(
        10.0,
        ge=0,
        description=(
            'The boost of the follow-ups the dialog allows after an answer ("what about tomorrow"): '
            "possible rather than expected, so lower than dialog_asr_hint_boost. On the dialog bench's "
            "requests and follow-ups in held-out voices (bench/reports/dialog_follow_up_boost.md) 10 "
            'heard as many follow-ups as 30, wrote fewer hinted words over other requests ("Saturday '
            'time of 4" for "set a timer for ten minutes") and made the pass about 40 ms '
            "cheaper at p95; 0 sends no follow-up hints."
        ),
    )
    dialog_asr_second_pass_window_s: float = Field(
        10.0,
        description=(
            "The least encoder window (s) of the ASR's Whisper pass for spoken turns (custom_configuration "
            "second_pass_window_s, 10-30): 10 answers a short turn in about a third of the time of "
            "Whisper's whole 30 s window, with the turn's hints making up most of the accuracy; 0: the "
            "ASR model's own setting."
        ),
    )
    dialog_asr_whisper_interims_ms: int = Field(
        0,
        ge=0,
        le=10_000,
        description=(
            "Ask the ASR for Whisper's live captions (custom_configuration whisper_interims_ms, 200-10000): "
            "the interim transcripts the web app shows are Whisper's transcript of the turn so far, every "
            "that many ms of speech, instead of the streaming model's; each caption is a Whisper pass "
            "beside the turn's own, so it is off (0) by default on 2 CPU cores."
        ),
    )
    dialog_backchannels: str = Field(
        DEFAULT_BACKCHANNELS, description="Space-separated words that never barge in over a reply."
    )
    dialog_reply_lead_ms: int = Field(
        1000,
        ge=0,
        description=(
            "Reply audio is sent at most this far ahead of real-time playback, so a barge-in stops the "
            "synthesis itself and little unplayed audio sits at the client (0: send as fast as synthesized)."
        ),
    )
    dialog_default_voice: str = Field("", description="TTS voice when a client names none (TTS default).")
    dialog_default_sample_rate_hz: int = Field(
        16000, ge=0, description="Reply audio rate when a client asks for none (0: the voice's own rate)."
    )
    dialog_scheduler_interval_s: float = Field(0.1, gt=0, description="How often due timers are checked.")
    dialog_weather_url: str = Field(
        "", description="Open-Meteo-format forecast API base URL (…/v1/forecast); empty: no weather provider."
    )
    dialog_geocoding_url: str = Field(
        "",
        description="Open-Meteo-format geocoding URL (…/v1/search); empty: derived from the forecast URL.",
    )
    dialog_weather_timeout_s: float = Field(3.0, gt=0, description="Deadline of one weather provider call.")

    @property
    def backchannel_words(self) -> frozenset[str]:
        return frozenset(self.dialog_backchannels.lower().split())

    @field_validator("dialog_asr_second_pass_window_s")
    @classmethod
    def _window_in_range(cls, seconds: float) -> float:
        if seconds and not 10.0 <= seconds <= 30.0:
            raise ValueError("RIVULET_DIALOG_ASR_SECOND_PASS_WINDOW_S must be 0 or 10-30 seconds")
        return seconds

    @field_validator("dialog_asr_whisper_interims_ms")
    @classmethod
    def _captions_in_range(cls, ms: int) -> int:
        if ms and not 200 <= ms <= 10_000:
            raise ValueError("RIVULET_DIALOG_ASR_WHISPER_INTERIMS_MS must be 0 or 200-10000 ms")
        return ms
