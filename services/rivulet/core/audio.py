"""Audio formats at the service edge: decode what clients send, encode what they receive.

Riva clients send and receive audio as bytes with an ``AudioEncoding`` and a sample rate. Inside
Rivulet audio is always mono float32 in [-1, 1] at the model's rate. This module is the one place
that converts between the two:

- ``decode(data, encoding, sample_rate_hz)`` → float32 samples at ``sample_rate_hz``;
- ``encode(samples, encoding, sample_rate_hz)`` → bytes;
- ``resample(samples, from_hz, to_hz)`` (soxr, high quality);
- ``PcmDecoder`` for streams: it carries an odd trailing byte or a partial FLAC frame over to the
  next chunk, so chunk boundaries never corrupt the audio.

Problems raise ``AudioFormatError`` whose message says what to fix; services turn it into
``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile
import soxr

# Values of riva.proto.AudioEncoding (kept here so the core library does not import generated code).
ENCODING_UNSPECIFIED = 0
LINEAR_PCM = 1
FLAC = 2
MULAW = 3
OGGOPUS = 4
ALAW = 20

ENCODING_NAMES = {
    ENCODING_UNSPECIFIED: "ENCODING_UNSPECIFIED",
    LINEAR_PCM: "LINEAR_PCM",
    FLAC: "FLAC",
    MULAW: "MULAW",
    OGGOPUS: "OGGOPUS",
    ALAW: "ALAW",
}

MIN_SAMPLE_RATE_HZ = 8_000
MAX_SAMPLE_RATE_HZ = 48_000


class AudioFormatError(ValueError):
    """Audio the service cannot use; the message says what the client should change."""


def encoding_name(encoding: int) -> str:
    return ENCODING_NAMES.get(encoding, f"unknown encoding {encoding}")


def check_sample_rate(sample_rate_hz: int, *, field: str = "sample_rate_hertz") -> None:
    if not MIN_SAMPLE_RATE_HZ <= sample_rate_hz <= MAX_SAMPLE_RATE_HZ:
        raise AudioFormatError(
            f"{field}={sample_rate_hz} is not supported: use a rate from {MIN_SAMPLE_RATE_HZ} "
            f"to {MAX_SAMPLE_RATE_HZ} Hz"
        )


# --- G.711 (mu-law and A-law), vectorised -------------------------------------------------------


def _mulaw_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1))
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


_MULAW_DECODE = _mulaw_table()
_ALAW_DECODE = _alaw_table()


def _g711_encode(pcm: np.ndarray, table: np.ndarray) -> bytes:
    """Nearest code for each sample (searching the sorted decode table; exact for table values)."""
    order = np.argsort(table, kind="stable")
    sorted_values = table[order].astype(np.int32)
    x = pcm.astype(np.int32)
    idx = np.clip(np.searchsorted(sorted_values, x), 1, len(sorted_values) - 1)
    left, right = sorted_values[idx - 1], sorted_values[idx]
    idx = np.where(np.abs(x - left) <= np.abs(right - x), idx - 1, idx)
    return order[idx].astype(np.uint8).tobytes()


# --- conversions ------------------------------------------------------------------------------------


def pcm16_to_float(pcm: np.ndarray) -> np.ndarray:
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32, copy=False)


def float_to_pcm16(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 32767 / 32768) * 32768.0).round().astype(np.int16)


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Resample mono float32 audio (soxr HQ); returns the input unchanged when the rates match."""
    if from_hz == to_hz or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples.astype(np.float32, copy=False), from_hz, to_hz, quality="HQ")


def _mono(data: np.ndarray, channels_hint: int | None = None) -> np.ndarray:
    if data.ndim == 1:
        return data
    if data.shape[1] != 1:
        raise AudioFormatError(f"audio has {data.shape[1]} channels: send mono audio (1 channel)")
    return data[:, 0]


def decode_file(data: bytes) -> tuple[np.ndarray, int]:
    """Decode a self-describing file (WAV, FLAC, OGG) → (mono float32, sample rate)."""
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioFormatError(
            f"audio could not be decoded ({exc}): send a valid FLAC, WAV or OGG file"
        ) from exc
    return _mono(samples), int(rate)


def decode(data: bytes, encoding: int, sample_rate_hz: int) -> np.ndarray:
    """Decode a whole buffer of ``encoding`` audio at ``sample_rate_hz`` into mono float32."""
    if encoding == LINEAR_PCM:
        if data[:4] == b"RIFF":  # a WAV file sent as LINEAR_PCM (riva.client does this for files)
            samples, rate = decode_file(data)
            return resample(samples, rate, sample_rate_hz)
        if len(data) % 2:
            raise AudioFormatError(
                f"LINEAR_PCM audio must be 16-bit samples, but {len(data)} bytes is an odd count: "
                "send whole little-endian int16 samples"
            )
        return pcm16_to_float(np.frombuffer(data, dtype="<i2"))
    if encoding == MULAW:
        return pcm16_to_float(_MULAW_DECODE[np.frombuffer(data, dtype=np.uint8)])
    if encoding == ALAW:
        return pcm16_to_float(_ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)])
    if encoding in (FLAC, OGGOPUS):
        samples, rate = decode_file(data)
        return resample(samples, rate, sample_rate_hz)
    raise AudioFormatError(
        f"audio encoding {encoding_name(encoding)} is not supported: use LINEAR_PCM, FLAC, MULAW or ALAW"
    )


def encode(samples: np.ndarray, encoding: int, sample_rate_hz: int) -> bytes:
    """Encode mono float32 audio as ``encoding`` bytes (headerless for PCM and G.711)."""
    if encoding in (LINEAR_PCM, ENCODING_UNSPECIFIED):
        return float_to_pcm16(samples).astype("<i2").tobytes()
    if encoding == MULAW:
        return _g711_encode(float_to_pcm16(samples), _MULAW_DECODE)
    if encoding == ALAW:
        return _g711_encode(float_to_pcm16(samples), _ALAW_DECODE)
    if encoding in (FLAC, OGGOPUS):
        buffer = io.BytesIO()
        fmt, subtype = ("FLAC", "PCM_16") if encoding == FLAC else ("OGG", "OPUS")
        try:
            soundfile.write(buffer, samples, sample_rate_hz, format=fmt, subtype=subtype)
        except (soundfile.LibsndfileError, RuntimeError, ValueError) as exc:
            raise AudioFormatError(f"{encoding_name(encoding)} at {sample_rate_hz} Hz: {exc}") from exc
        return buffer.getvalue()
    raise AudioFormatError(
        f"audio encoding {encoding_name(encoding)} is not supported: use LINEAR_PCM, FLAC, MULAW or ALAW"
    )


@dataclass
class PcmDecoder:
    """Incremental decoder for a stream of chunks in one encoding, resampled to ``target_hz``.

    LINEAR_PCM carries an odd trailing byte to the next chunk (``finish`` rejects one left at the
    end); MULAW/ALAW are byte-aligned; FLAC and OGG are buffered and decoded at ``finish``, since a
    chunk boundary may split a frame. Resampling is streaming (soxr keeps its filter state).
    """

    encoding: int
    sample_rate_hz: int
    target_hz: int

    def __post_init__(self) -> None:
        if self.encoding not in (LINEAR_PCM, FLAC, MULAW, ALAW, OGGOPUS):
            raise AudioFormatError(
                f"audio encoding {encoding_name(self.encoding)} is not supported: "
                "use LINEAR_PCM, FLAC, MULAW or ALAW"
            )
        check_sample_rate(self.sample_rate_hz)
        self._carry = b""
        self._container = bytearray()
        self._header_checked = False
        self._resampler = (
            soxr.ResampleStream(self.sample_rate_hz, self.target_hz, 1, dtype="float32", quality="HQ")
            if self.sample_rate_hz != self.target_hz
            else None
        )
        self.bytes_in = 0

    @property
    def buffers_whole_stream(self) -> bool:
        return self.encoding in (FLAC, OGGOPUS)

    def _resample(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        if self._resampler is None:
            return samples
        return self._resampler.resample_chunk(samples.astype(np.float32, copy=False), last=last)

    def feed(self, data: bytes) -> np.ndarray:
        """Decode one chunk; returns the samples that are complete so far (may be empty)."""
        self.bytes_in += len(data)
        if self.buffers_whole_stream:
            self._container.extend(data)
            return np.zeros(0, dtype=np.float32)
        if self.encoding == LINEAR_PCM:
            data = self._carry + data
            if not self._header_checked and len(data) >= 44:
                self._header_checked = True
                if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
                    data = _strip_wav_header(data)
            cut = len(data) - (len(data) % 2)
            self._carry = data[cut:]
            samples = pcm16_to_float(np.frombuffer(data[:cut], dtype="<i2"))
        else:
            table = _MULAW_DECODE if self.encoding == MULAW else _ALAW_DECODE
            samples = pcm16_to_float(table[np.frombuffer(data, dtype=np.uint8)])
        return self._resample(samples)

    def finish(self) -> np.ndarray:
        """Flush: the rest of the resampler, or the whole decoded FLAC/OGG stream."""
        if self.buffers_whole_stream:
            samples, rate = decode_file(bytes(self._container))
            return resample(samples, rate, self.target_hz)
        if self._carry:
            raise AudioFormatError(
                f"LINEAR_PCM stream ended on an odd byte ({self.bytes_in} bytes in all): "
                "16-bit audio must be whole int16 samples"
            )
        if self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        return self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


def _strip_wav_header(data: bytes) -> bytes:
    """Drop a RIFF/WAVE header (riva.client streams WAV files with their header); keep the PCM."""
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk_id == b"data":
            return data[pos + 8 :]
        pos += 8 + size + (size % 2)
    return data
