"""Streams that declare no encoding or rate: the WAV/FLAC/Ogg header at their start says.

python-clients' transcribe_file.py streams a whole WAV file, header first, in messages of 1600
frames, with neither encoding nor sample_rate_hertz in its config.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from rivulet.core import audio, audio_header

RATE = 16_000


def _tone(rate: int, seconds: float = 0.5, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _file(samples: np.ndarray, rate: int, fmt: str = "WAV", subtype: str | None = "PCM_16", **meta) -> bytes:
    buffer = io.BytesIO()
    with soundfile.SoundFile(
        buffer,
        "w",
        samplerate=rate,
        channels=1 if samples.ndim == 1 else samples.shape[1],
        format=fmt,
        subtype=subtype,
    ) as f:
        for key, value in meta.items():  # a title makes libsndfile write a LIST chunk
            setattr(f, key, value)
        f.write(samples)
    return buffer.getvalue()


def _stream(data: bytes, sizes=(1, 3, 5, 40, 7, 3200), encoding=audio.ENCODING_UNSPECIFIED, rate=RATE):
    """Decode `data` fed in messages of the given sizes (then 3200 bytes at a time)."""
    decoder = audio.PcmDecoder(encoding, rate, RATE)
    pieces, pos = [], 0
    for size in [*sizes, *[3200] * (len(data) // 3200 + 1)]:
        pieces.append(decoder.feed(data[pos : pos + size]))
        pos += size
    pieces.append(decoder.finish())
    return np.concatenate(pieces), decoder


@pytest.mark.parametrize(
    ("subtype", "tolerance"),
    [
        ("PCM_U8", 1 / 64),
        ("PCM_16", 1e-3),
        ("PCM_24", 1e-3),
        ("PCM_32", 1e-3),
        ("FLOAT", 1e-3),
        ("DOUBLE", 1e-3),
        ("ULAW", 0.03),
        ("ALAW", 0.03),
    ],
)
@pytest.mark.parametrize("fmt", ["WAV", "WAVEX"])
def test_every_wav_sample_format_is_read_from_its_header(fmt, subtype, tolerance):
    tone = _tone(RATE)
    got, decoder = _stream(_file(tone, RATE, fmt, subtype))
    assert decoder.header is not None and decoder.header.sample_rate_hz == RATE
    assert len(got) == len(tone)  # not one header byte became a sample
    assert np.max(np.abs(got - tone)) < tolerance


def test_the_header_rate_is_used_and_metadata_chunks_are_skipped():
    """A 22.05 kHz WAV with a LIST chunk before the data and one after: resampled from the header's
    rate; neither chunk is decoded as samples, whatever the message boundaries."""
    tone = _tone(22050, seconds=1.0)
    data = _file(tone, 22050, title="a title long enough to matter " * 20)
    header = audio_header.parse_wav_header(data)
    assert header is not None and header.data_offset > 44 and header.data_bytes == 2 * len(tone)
    data += b"LIST" + (26).to_bytes(4, "little") + b"INFOISFT" + (14).to_bytes(4, "little") + b"x" * 14
    expected = audio.resample(tone, 22050, RATE)
    for sizes in [(1,) * 300, (3200,), (len(data),)]:
        got, _ = _stream(data, sizes)
        assert abs(len(got) - len(expected)) <= 2
        n = min(len(got), len(expected))
        assert np.max(np.abs(got[:n] - expected[:n])) < 1e-2


def test_a_header_overrides_a_declared_rate():
    tone = _tone(8000)
    got, _ = _stream(_file(tone, 8000), encoding=audio.LINEAR_PCM, rate=44100)
    assert abs(len(got) - RATE // 2) <= 2  # 0.5 s read at the header's 8 kHz, not at 44.1 kHz


@pytest.mark.parametrize(("fmt", "subtype"), [("FLAC", "PCM_16"), ("OGG", "OPUS"), ("OGG", "VORBIS")])
def test_flac_and_ogg_are_read_without_a_declared_encoding(fmt, subtype):
    tone = _tone(48000)
    got, decoder = _stream(_file(tone, 48000, fmt, subtype))
    assert decoder.buffers_whole_stream
    assert abs(len(got) - RATE // 2) <= 400  # Opus pads its start a little
    spectrum = np.abs(np.fft.rfft(got))
    assert abs(np.argmax(spectrum) * RATE / len(got) - 440) < 5


def test_no_header_and_no_rate_is_refused_saying_what_to_send():
    raw = audio.encode(_tone(RATE), audio.LINEAR_PCM, RATE)
    with pytest.raises(
        audio.AudioFormatError, match="sample_rate_hertz is missing and the audio has no header"
    ):
        _stream(raw)
    decoder = audio.PcmDecoder(audio.ENCODING_UNSPECIFIED, RATE, RATE)
    decoder.feed(b"\x00\x01")  # too short to tell yet: refused at the end
    with pytest.raises(audio.AudioFormatError, match="sample_rate_hertz is missing"):
        decoder.finish()
    assert audio.PcmDecoder(audio.ENCODING_UNSPECIFIED, RATE, RATE).finish().size == 0  # no audio at all


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (_file(np.zeros((800, 2), dtype=np.float32), 8000), "2 channels: send mono"),
        (_file(_tone(4000), 4000), "the WAV header's sample rate=4000"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "not a RIFF/WAVE file"),
        (b"RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00", "data chunk comes before any fmt chunk"),
        (_file(_tone(RATE), RATE)[:30], "ended inside its WAV header"),
    ],
)
def test_unusable_headers_say_what_is_wrong(data, needle):
    with pytest.raises(audio.AudioFormatError, match=needle):
        _stream(data)


def test_a_declared_container_without_its_header_is_refused():
    with pytest.raises(audio.AudioFormatError, match="not a FLAC file"):
        _stream(b"\x00" * 100, encoding=audio.FLAC)
