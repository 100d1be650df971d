"""ASR request handling without servers: model choice, config checks, whole-file decoding, listing."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
from riva.proto import riva_asr_pb2 as asr

from rivulet.asr.catalog import ModelCatalog
from rivulet.asr.options import pass_options, recognition_options
from rivulet.asr.servicer import AsrServicer, decode_whole
from rivulet.asr.settings import AsrSettings
from rivulet.core import audio
from rivulet.core.errors import RivuletError
from rivulet.core.triton import ModelInfo

VOCAB = ["<blank>", " ", "'", *"abcdefghijklmnopqrstuvwxyz"]


def asr_info(name: str, language: str = "en-US", **extra: str) -> ModelInfo:
    params = {
        "rivulet_task": "asr_streaming",
        "language_code": language,
        "vocabulary": json.dumps(VOCAB),
        "blank_index": "0",
        "tokenizer": "char",
        "sample_rate_hz": "16000",
        "chunk_ms": "160",
        "frame_shift_ms": "40",
        **extra,
    }
    return ModelInfo(name, "1", params)


@pytest.fixture
def catalog() -> ModelCatalog:
    catalog = ModelCatalog("asr_streaming", "triton:8001")
    catalog.update(
        [
            asr_info("asr_streaming"),
            asr_info("asr_german", "de-DE"),
            asr_info("asr_broken", vocabulary="not json"),
            ModelInfo("intent_assistant", "1", {"rivulet_task": "intent_slot"}),
        ]
    )
    return catalog


SETTINGS = AsrSettings(asr_max_context_phrases=3, asr_max_alternatives=4)


def error(call) -> RivuletError:
    with pytest.raises(RivuletError) as err:
        call()
    return err.value


def config(**fields) -> asr.RecognitionConfig:
    fields.setdefault("encoding", audio.LINEAR_PCM)
    fields.setdefault("sample_rate_hertz", 16000)
    return asr.RecognitionConfig(**fields)


def options(cfg: asr.RecognitionConfig, catalog: ModelCatalog, streaming: bool = True):
    return recognition_options(cfg, catalog, SETTINGS, streaming=streaming)


def test_catalog_lists_only_usable_asr_models(catalog):
    assert [m.name for m in catalog.models] == ["asr_german", "asr_streaming"]
    model = catalog.select()
    assert model.name == "asr_streaming" and model.chunk_samples == 2560
    assert model.vocabulary.blank == 0 and model.frame_shift_ms == 40


def test_catalog_selects_by_name_and_language(catalog):
    assert catalog.select(language_code="de-DE").name == "asr_german"
    assert catalog.select(language_code="en").name == "asr_streaming"
    assert catalog.select("asr_german").name == "asr_german"
    unknown = error(lambda: catalog.select("conformer-en-US-asr-streaming"))
    assert unknown.code == grpc.StatusCode.NOT_FOUND
    assert "asr_streaming (en-US)" in unknown.message and "asr_german (de-DE)" in unknown.message
    wrong = error(lambda: catalog.select("asr_german", "en-US"))
    assert wrong.code == grpc.StatusCode.NOT_FOUND and "de-DE" in wrong.message
    french = error(lambda: catalog.select(language_code="fr-FR"))
    assert french.code == grpc.StatusCode.NOT_FOUND and "fr-FR" in french.message
    empty = ModelCatalog("asr_streaming", "triton:8001")
    assert error(empty.select).code == grpc.StatusCode.UNAVAILABLE


def test_valid_config_becomes_options(catalog):
    cfg = config(
        sample_rate_hertz=8000,
        max_alternatives=9,
        enable_word_time_offsets=True,
        speech_contexts=[asr.SpeechContext(phrases=["Seven", "turn on"], boost=20.0)],
        endpointing_config=asr.EndpointingConfig(stop_history=160),
    )
    opts = options(cfg, catalog)
    assert opts.model.name == "asr_streaming"
    assert opts.max_alternatives == 4  # clamped to the server's limit
    assert opts.endpointing.stop_history_ms == 160
    assert opts.endpointing.start_history_ms == SETTINGS.asr_start_history_ms  # unset: the default
    assert opts.context is not None and opts.context.phrases == 2
    assert opts.word_time_offsets


@pytest.mark.parametrize(
    ("encoding", "rate", "expected"),
    [
        (0, 0, audio.ENCODING_UNSPECIFIED),  # python-clients' transcribe_file.py: the WAV header says
        (audio.LINEAR_PCM, 0, audio.ENCODING_UNSPECIFIED),
        (audio.MULAW, 0, audio.ENCODING_UNSPECIFIED),
        (0, 8000, audio.LINEAR_PCM),  # Riva's default encoding
        (audio.FLAC, 0, audio.FLAC),
    ],
)
def test_audio_without_a_rate_must_carry_a_header(catalog, encoding, rate, expected):
    opts = options(config(encoding=encoding, sample_rate_hertz=rate), catalog)
    assert (opts.encoding, opts.sample_rate_hz) == (expected, rate)


@pytest.mark.parametrize(
    ("fields", "code", "needle"),
    [
        ({"encoding": 7}, grpc.StatusCode.INVALID_ARGUMENT, "LINEAR_PCM"),
        ({"sample_rate_hertz": 4000}, grpc.StatusCode.INVALID_ARGUMENT, "8000 to 48000 Hz"),
        ({"sample_rate_hertz": 96000}, grpc.StatusCode.INVALID_ARGUMENT, "8000 to 48000 Hz"),
        ({"audio_channel_count": 2}, grpc.StatusCode.INVALID_ARGUMENT, "only mono"),
        ({"model": "nope"}, grpc.StatusCode.NOT_FOUND, "available models"),
        ({"language_code": "ja-JP"}, grpc.StatusCode.NOT_FOUND, "ja-JP"),
        (
            {"endpointing_config": asr.EndpointingConfig(stop_history=0, stop_threshold=1.5)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "stop_history=0 must be > 0 ms; stop_threshold=1.5 must be a fraction",
        ),
        (
            {"speech_contexts": [asr.SpeechContext(phrases=["a", "b", "c", "d"], boost=5)]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "the limit is 3",
        ),
        (
            {"speech_contexts": [asr.SpeechContext(phrases=["a"], boost=float("nan"))]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "finite",
        ),
        (
            {"diarization_config": asr.SpeakerDiarizationConfig(enable_speaker_diarization=True)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "diarization",
        ),
        (
            {"custom_configuration": {"lm_search": "fast"}},
            grpc.StatusCode.INVALID_ARGUMENT,
            "lm_search='fast' is unknown: use 'lexicon'",
        ),
    ],
)
def test_bad_configs_say_what_to_fix(catalog, fields, code, needle):
    err = error(lambda: options(config(**fields), catalog))
    assert err.code == code
    assert needle in err.message


def test_custom_configuration_sets_the_whisper_window():
    assert pass_options(config(), SETTINGS, 1).window_s == 0.0  # the model's own setting
    fast = config(custom_configuration={"second_pass_window_s": "10"})
    assert pass_options(fast, SETTINGS, 1).window_s == 10.0
    assert json.loads(pass_options(fast, SETTINGS, 1).as_json())["window_s"] == 10.0
    for bad in ("5", "31", "fast", "nan"):
        err = error(
            lambda bad=bad: pass_options(
                config(custom_configuration={"second_pass_window_s": bad}), SETTINGS, 1
            )
        )
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT
        assert f"second_pass_window_s={bad!r}: use a number of seconds from 10" in err.message


def test_custom_configuration_asks_for_whispers_interims(catalog):
    assert options(config(), catalog).whisper_interims_ms == 0  # the streaming model's interims
    assert (
        options(config(custom_configuration={"whisper_interims_ms": "500"}), catalog).whisper_interims_ms
        == 500
    )
    for bad in ("50", "20000", "-1", "fast", "0.5"):
        err = error(
            lambda bad=bad: options(config(custom_configuration={"whisper_interims_ms": bad}), catalog)
        )
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT
        assert f"whisper_interims_ms={bad!r}: use 0" in err.message and "200 to 10000" in err.message


def test_custom_configuration_picks_the_lm_search_and_ignores_other_keys(catalog):
    assert options(config(), catalog).lm_search is None  # the service's setting
    chosen = config(custom_configuration={"lm_search": "open", "some_riva_key": "x"})
    assert options(chosen, catalog).lm_search == "open"


def test_flac_needs_no_rate(catalog):
    assert options(config(encoding=audio.FLAC, sample_rate_hertz=0), catalog).sample_rate_hz == 0


def tone(rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize(
    ("encoding", "rate"),
    [(audio.LINEAR_PCM, 8000), (audio.LINEAR_PCM, 44100), (audio.MULAW, 8000), (audio.ALAW, 16000)],
)
def test_decode_whole_raw_resamples_to_the_model_rate(catalog, encoding, rate):
    opts = options(config(encoding=encoding, sample_rate_hertz=rate), catalog, streaming=False)
    samples = decode_whole(audio.encode(tone(rate), encoding, rate), opts)
    assert abs(len(samples) - 8000) <= 2  # 0.5 s at 16 kHz


@pytest.mark.parametrize("container", [audio.FLAC, "wav"])
def test_decode_whole_reads_files_whatever_the_config_says(catalog, container):
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, tone(22050), 22050, format="FLAC" if container == audio.FLAC else "WAV")
    opts = options(config(encoding=audio.LINEAR_PCM, sample_rate_hertz=0), catalog, streaming=False)
    assert abs(len(decode_whole(buffer.getvalue(), opts)) - 8000) <= 2


def test_decode_whole_rejects_bad_audio(catalog):
    pcm = options(config(), catalog, streaming=False)
    odd = error(lambda: decode_whole(b"\x00\x01\x02", pcm))
    assert odd.code == grpc.StatusCode.INVALID_ARGUMENT and "odd" in odd.message
    no_rate = options(config(sample_rate_hertz=0), catalog, streaming=False)
    assert "sample_rate_hertz is missing" in error(lambda: decode_whole(b"\x00\x01", no_rate)).message
    flac = options(config(encoding=audio.FLAC), catalog, streaming=False)
    assert "not a FLAC file" in error(lambda: decode_whole(b"\x00\x01", flac)).message


async def test_config_lists_each_model_online_and_offline(catalog):
    servicer = AsrServicer(SETTINGS, triton=None, catalog=catalog, releaser=None)  # no RPC reaches Triton
    reply = await servicer.GetRivaSpeechRecognitionConfig(asr.RivaSpeechRecognitionConfigRequest(), None)
    listed = [(c.model_name, c.parameters["type"], c.parameters["language_code"]) for c in reply.model_config]
    assert ("asr_streaming", "online", "en-US") in listed
    assert ("asr_streaming", "offline", "en-US") in listed
    assert ("asr_german", "online", "de-DE") in listed
    assert all("vocabulary" not in c.parameters for c in reply.model_config)
    with pytest.raises(RivuletError) as err:
        await servicer.GetRivaSpeechRecognitionConfig(
            asr.RivaSpeechRecognitionConfigRequest(model_name="x"), None
        )
    assert err.value.code == grpc.StatusCode.NOT_FOUND


def test_admission_limit_is_resource_exhausted(catalog):
    servicer = AsrServicer(AsrSettings(asr_max_streams=1), triton=None, catalog=catalog, releaser=None)
    with servicer._admit():
        err = error(lambda: servicer._admit().__enter__())
        assert err.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "RIVULET_ASR_MAX_STREAMS" in err.message
    with servicer._admit():  # the slot is free again
        assert servicer.active == 1
    assert servicer.active == 0
