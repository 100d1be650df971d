"""Recognition as NVIDIA python-clients' scripts do it: no encoding, no rate, the file's header says.

`scripts/asr/transcribe_file.py` (python-clients main, MIT; and `riva_streaming_asr_client.py`)
builds its config from its argparse defaults with neither `encoding` nor `sample_rate_hertz`, and
streams the whole WAV file, header first, through `riva.client.AudioChunkFileIterator` in messages
of `--file-streaming-chunk` (1600) frames. `transcribe_config` below repeats its `main()` with the
argument parser the script uses (`riva.client.argparse_utils`), so the defaults are the package's own.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import grpc
import numpy as np
import pytest
import riva.client
import soundfile
from riva.client.argparse_utils import add_asr_config_argparse_parameters
from riva.client.proto import riva_asr_pb2 as rasr

from rivulet.core import audio
from tests.integration.asr.conftest import RATE, pcm16, speech

pytestmark = pytest.mark.integration

TEXT = "three seven one"
FILE_STREAMING_CHUNK = 1600  # transcribe_file.py's --file-streaming-chunk default


def transcribe_config() -> rasr.StreamingRecognitionConfig:
    """The StreamingRecognitionConfig transcribe_file.py sends when run with only --input-file."""
    parser = add_asr_config_argparse_parameters(
        argparse.ArgumentParser(), max_alternatives=True, profanity_filter=True, word_time_offsets=True
    )
    args = parser.parse_args([])
    config = riva.client.StreamingRecognitionConfig(
        config=riva.client.RecognitionConfig(
            language_code=args.language_code,
            model=args.model_name,
            max_alternatives=1,
            profanity_filter=args.profanity_filter,
            enable_automatic_punctuation=args.automatic_punctuation,
            verbatim_transcripts=not args.no_verbatim_transcripts,
            enable_word_time_offsets=args.word_time_offsets or args.speaker_diarization,
        ),
        interim_results=True,
    )
    riva.client.add_word_boosting_to_config(config, args.boosted_lm_words, args.boosted_lm_score)
    riva.client.add_speaker_diarization_to_config(
        config, args.speaker_diarization, args.diarization_max_speakers
    )
    riva.client.add_endpoint_parameters_to_config(
        config,
        args.start_history,
        args.start_threshold,
        args.stop_history,
        args.stop_history_eou,
        args.stop_threshold,
        args.stop_threshold_eou,
    )
    riva.client.add_custom_configuration_to_config(config, args.custom_configuration)
    return config


def transcribe_file(client: riva.client.ASRService, path: Path) -> list[rasr.StreamingRecognitionResult]:
    with riva.client.AudioChunkFileIterator(str(path), FILE_STREAMING_CHUNK, None) as chunks:
        responses = client.streaming_response_generator(
            audio_chunks=chunks, streaming_config=transcribe_config()
        )
        return [result for response in responses for result in response.results]


def wav_file(
    path: Path, samples: np.ndarray, rate: int, subtype: str = "PCM_16", metadata_bytes: int = 0
) -> Path:
    """`samples` (16 kHz) as a WAV file at `rate`; with `metadata_bytes`, a LIST chunk of that size
    sits between the fmt and data chunks (as tagged files have): bytes that must not become audio."""
    buffer = io.BytesIO()
    soundfile.write(buffer, audio.resample(samples, RATE, rate), rate, format="WAV", subtype=subtype)
    data = buffer.getvalue()
    if metadata_bytes:
        start = data.index(b"data")
        chunk = b"LIST" + metadata_bytes.to_bytes(4, "little") + b"INFO" + b"x" * (metadata_bytes - 4)
        data = data[:start] + chunk + data[start:]
        data = data[:4] + (len(data) - 8).to_bytes(4, "little") + data[8:]
    path.write_bytes(data)
    return path


def finals(results) -> str:
    return " ".join(r.alternatives[0].transcript for r in results if r.is_final).strip()


def test_the_config_declares_neither_encoding_nor_rate():
    config = transcribe_config().config
    assert config.encoding == 0 and config.sample_rate_hertz == 0


@pytest.mark.parametrize(
    ("rate", "subtype"), [(16000, "PCM_16"), (44100, "PCM_16"), (8000, "PCM_16"), (22050, "PCM_24")]
)
def test_transcribe_file_streams_a_wav_file_header_first(client, tmp_path, rate, subtype):
    samples = speech(TEXT)
    path = wav_file(tmp_path / "speech.wav", samples, rate, subtype, metadata_bytes=8000)
    results = transcribe_file(client, path)
    assert finals(results) == TEXT
    assert any(not r.is_final for r in results)  # interim results, as the script shows them
    # the header (with 8000 bytes of metadata: 250 ms of 16-bit 16 kHz audio) was not recognized as audio
    assert results[-1].audio_processed == pytest.approx(len(samples) / RATE, abs=0.005)


def test_recognize_reads_the_header_too(client, tmp_path):
    samples = speech(TEXT)
    data = wav_file(tmp_path / "speech.wav", samples, 22050).read_bytes()
    config = riva.client.RecognitionConfig(language_code="en-US", verbatim_transcripts=True)
    response = client.offline_recognize(data, config)
    assert " ".join(r.alternatives[0].transcript for r in response.results) == TEXT


def test_headerless_audio_without_a_rate_is_refused_saying_what_to_send(client):
    raw = pcm16(speech(TEXT))
    with pytest.raises(grpc.RpcError) as err:
        list(client.streaming_response_generator([raw[:3200], raw[3200:6400]], transcribe_config()))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "sample_rate_hertz is missing and the audio has no header" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        client.offline_recognize(raw, riva.client.RecognitionConfig(language_code="en-US"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "sample_rate_hertz is missing" in err.value.details()


LIVEKIT_STT_MODEL = (
    "parakeet-1.1b-en-US-asr-streaming-silero-vad-sortformer"  # livekit-plugins-nvidia default
)


def test_an_aliased_model_name_recognizes_and_is_listed_as_transcribe_file_lists_models(client, tmp_path):
    config = transcribe_config()
    config.config.model = LIVEKIT_STT_MODEL
    path = wav_file(tmp_path / "speech.wav", speech(TEXT), 16000)
    with riva.client.AudioChunkFileIterator(str(path), FILE_STREAMING_CHUNK, None) as chunks:
        results = [
            r for response in client.streaming_response_generator(chunks, config) for r in response.results
        ]
    assert finals(results) == TEXT
    listed = client.stub.GetRivaSpeechRecognitionConfig(rasr.RivaSpeechRecognitionConfigRequest())
    online = {c.model_name: c.parameters for c in listed.model_config if c.parameters["type"] == "online"}
    assert online[LIVEKIT_STT_MODEL]["alias_of"] == "asr_streaming"
    assert online[LIVEKIT_STT_MODEL]["language_code"] == "en-US"


@pytest.mark.parametrize(("fmt", "subtype", "rate"), [("FLAC", "PCM_16", 44100), ("OGG", "OPUS", 48000)])
def test_transcribe_file_streams_flac_and_ogg_opus_files(client, tmp_path, fmt, subtype, rate):
    """Not a WAV file: AudioChunkFileIterator sends 1600-byte pieces; the file's own header says."""
    path = tmp_path / f"speech.{fmt.lower()}"
    soundfile.write(path, audio.resample(speech(TEXT), RATE, rate), rate, format=fmt, subtype=subtype)
    assert finals(transcribe_file(client, path)) == TEXT
