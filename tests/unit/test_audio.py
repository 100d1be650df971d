"""rivulet.core.audio: the formats Riva clients send and receive, decoded and encoded exactly."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from rivulet.core import audio


def _tone(rate: int, seconds: float = 0.5, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_linear_pcm_round_trip_is_exact_to_one_lsb():
    tone = _tone(16000)
    decoded = audio.decode(audio.encode(tone, audio.LINEAR_PCM, 16000), audio.LINEAR_PCM, 16000)
    assert decoded.dtype == np.float32
    assert np.max(np.abs(decoded - tone)) <= 1 / 32768 + 1e-7


def test_odd_pcm_byte_count_says_what_to_fix():
    with pytest.raises(audio.AudioFormatError, match="odd count"):
        audio.decode(b"\x00\x01\x02", audio.LINEAR_PCM, 16000)


@pytest.mark.parametrize("encoding", [audio.MULAW, audio.ALAW])
def test_g711_round_trip_keeps_the_waveform(encoding):
    tone = _tone(8000)
    data = audio.encode(tone, encoding, 8000)
    assert len(data) == len(tone)  # one byte per sample
    decoded = audio.decode(data, encoding, 8000)
    # G.711 is logarithmic: the error stays a small fraction of the signal.
    assert np.sqrt(np.mean((decoded - tone) ** 2)) < 0.02


def test_mulaw_decodes_known_codes():
    # 0xFF and 0x7F are the two zeros of mu-law; 0x00 is the largest negative value.
    decoded = audio.decode(bytes([0xFF, 0x7F, 0x00, 0x80]), audio.MULAW, 8000)
    assert decoded[0] == 0 and decoded[1] == 0
    assert decoded[2] == pytest.approx(-32124 / 32768)
    assert decoded[3] == pytest.approx(32124 / 32768)


def test_flac_is_decoded_and_resampled_to_the_requested_rate():
    tone = _tone(44100)
    flac = audio.encode(tone, audio.FLAC, 44100)
    decoded = audio.decode(flac, audio.FLAC, 16000)
    assert abs(len(decoded) - 8000) <= 2
    spectrum = np.abs(np.fft.rfft(decoded))
    assert abs(np.argmax(spectrum) * 16000 / len(decoded) - 440) < 5


def test_wav_file_sent_as_linear_pcm_is_read_with_its_header():
    buffer = io.BytesIO()
    soundfile.write(buffer, _tone(8000), 8000, format="WAV", subtype="PCM_16")
    decoded = audio.decode(buffer.getvalue(), audio.LINEAR_PCM, 16000)
    assert abs(len(decoded) - 8000) <= 2  # 0.5 s at 16 kHz


def test_stereo_is_rejected_with_a_clear_message():
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros((800, 2), dtype=np.float32), 8000, format="FLAC")
    with pytest.raises(audio.AudioFormatError, match="mono"):
        audio.decode(buffer.getvalue(), audio.FLAC, 16000)


def test_unsupported_encoding_and_rate_are_named():
    with pytest.raises(audio.AudioFormatError, match="ENCODING_UNSPECIFIED"):
        audio.decode(b"\x00\x00", audio.ENCODING_UNSPECIFIED, 16000)
    with pytest.raises(audio.AudioFormatError, match="from 8000 to 48000"):
        audio.check_sample_rate(4000)


def test_stream_decoder_is_independent_of_chunk_boundaries():
    tone = _tone(22050, seconds=1.0)
    data = audio.encode(tone, audio.LINEAR_PCM, 22050)
    whole = audio.PcmDecoder(audio.LINEAR_PCM, 22050, 16000)
    expected = np.concatenate([whole.feed(data), whole.finish()])
    chunked = audio.PcmDecoder(audio.LINEAR_PCM, 22050, 16000)
    pieces, pos = [], 0
    for size in [1, 3, 7, 1000, 4097, 3, len(data)]:  # odd sizes split samples in half
        pieces.append(chunked.feed(data[pos : pos + size]))
        pos += size
    pieces.append(chunked.finish())
    got = np.concatenate(pieces)
    assert len(got) == len(expected)
    assert np.allclose(got, expected, atol=1e-5)
    assert abs(len(got) - 16000) <= 4


def test_stream_decoder_rejects_a_stream_ending_on_half_a_sample():
    decoder = audio.PcmDecoder(audio.LINEAR_PCM, 16000, 16000)
    decoder.feed(b"\x00\x00\x01")
    with pytest.raises(audio.AudioFormatError, match="odd byte"):
        decoder.finish()


def test_stream_decoder_buffers_flac_until_the_end():
    tone = _tone(16000)
    flac = audio.encode(tone, audio.FLAC, 16000)
    decoder = audio.PcmDecoder(audio.FLAC, 16000, 16000)
    assert decoder.feed(flac[:100]).size == 0
    assert decoder.feed(flac[100:]).size == 0
    assert np.max(np.abs(decoder.finish() - tone)) < 1e-3
