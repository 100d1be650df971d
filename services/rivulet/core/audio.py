"""Audio formats at the service edge: decode what clients send, encode what they receive.

Riva clients send and receive audio as bytes with an ``AudioEncoding`` and a sample rate. Inside
Rivulet audio is always mono float32 in [-1, 1] at the model's rate. This module is the one place
that converts between the two:

- ``decode(data, encoding, sample_rate_hz)`` → float32 samples at ``sample_rate_hz``;
- ``encode(samples, encoding, sample_rate_hz)`` → bytes;
- ``resample(samples, from_hz, to_hz)`` (soxr, high quality);
- ``PcmDecoder`` for streams: it reads a WAV/FLAC/Ogg header at the start of the stream when
  there is one (``audio_header``), and carries a partial sample or FLAC frame over to the next
  chunk, so chunk boundaries never corrupt the audio.

Problems raise ``AudioFormatError`` whose message says what to fix; services turn it into
``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile
import soxr

from rivulet.core import audio_header

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


@dataclass(frozen=True)
class SampleLayout:
    """How samples are laid out in a stream's bytes: a WAV format tag, bits per sample, rate (mono)."""

    format_tag: int  # audio_header.PCM, IEEE_FLOAT, ALAW or MULAW
    bits_per_sample: int
    sample_rate_hz: int

    @property
    def sample_bytes(self) -> int:
        return self.bits_per_sample // 8

    @classmethod
    def declared(cls, encoding: int, sample_rate_hz: int) -> SampleLayout:
        """The layout a client declared for headerless audio (LINEAR_PCM is 16-bit)."""
        tags = {
            LINEAR_PCM: (audio_header.PCM, 16),
            MULAW: (audio_header.MULAW, 8),
            ALAW: (audio_header.ALAW, 8),
        }
        return cls(*tags[encoding], sample_rate_hz)


def decode_samples(data: bytes, layout: SampleLayout) -> np.ndarray:
    """Whole mono samples in `layout` → float32 in [-1, 1]."""
    tag, bits = layout.format_tag, layout.bits_per_sample
    if tag == audio_header.MULAW:
        return pcm16_to_float(_MULAW_DECODE[np.frombuffer(data, dtype=np.uint8)])
    if tag == audio_header.ALAW:
        return pcm16_to_float(_ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)])
    if tag == audio_header.IEEE_FLOAT:
        return np.frombuffer(data, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
    if bits == 8:  # 8-bit WAV PCM is unsigned
        return ((np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if bits == 16:
        return pcm16_to_float(np.frombuffer(data, dtype="<i2"))
    if bits == 24:
        b = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value & 0x800000, value - 0x1000000, value)
        return (value / 8388608.0).astype(np.float32)
    return (np.frombuffer(data, dtype="<i4") / 2147483648.0).astype(np.float32)


STREAM_ENCODINGS = (ENCODING_UNSPECIFIED, LINEAR_PCM, FLAC, MULAW, ALAW, OGGOPUS)


@dataclass
class PcmDecoder:
    """Incremental decoder for a stream of chunks, resampled to ``target_hz``.

    The first bytes decide how the stream is read (``audio_header``): a RIFF/WAVE header gives the
    sample format, channels and rate, and is skipped (its bytes are never decoded as samples; the
    data chunk's declared size, when known, ends the samples); FLAC and Ogg files are buffered and
    decoded at ``finish``, since a chunk boundary may split a frame. Audio with no header is read
    as the declared ``encoding`` at ``sample_rate_hz``; ``ENCODING_UNSPECIFIED`` means the client
    declared no rate, so a stream without a header is refused (AudioFormatError). A chunk boundary
    may split a sample: the partial sample is carried to the next chunk (``finish`` rejects one
    left at the end). Resampling is streaming (soxr keeps its filter state).
    """

    encoding: int
    sample_rate_hz: int
    target_hz: int

    def __post_init__(self) -> None:
        if self.encoding not in STREAM_ENCODINGS:
            raise AudioFormatError(
                f"audio encoding {encoding_name(self.encoding)} is not supported: "
                "use LINEAR_PCM, FLAC, MULAW or ALAW"
            )
        check_sample_rate(self.sample_rate_hz)
        self._head = bytearray()  # bytes held until the first ones say what the stream is
        self._layout: SampleLayout | None = None  # decided: samples in this layout
        self._container: bytearray | None = None  # decided: a FLAC/Ogg file, decoded at finish
        self._data_left: int | None = None  # a WAV data chunk's declared bytes not yet read
        self._carry = b""
        self._resampler: soxr.ResampleStream | None = None
        self.bytes_in = 0
        self.header: audio_header.WavHeader | None = None

    @property
    def buffers_whole_stream(self) -> bool:
        return self.encoding in (FLAC, OGGOPUS) or self._container is not None

    def _start_samples(self, layout: SampleLayout) -> None:
        self._layout = layout
        if layout.sample_rate_hz != self.target_hz:
            self._resampler = soxr.ResampleStream(
                layout.sample_rate_hz, self.target_hz, 1, dtype="float32", quality="HQ"
            )

    def _start_wav(self, head: bytes, final: bool) -> bytes | None:
        try:
            header = audio_header.parse_wav_header(head)
        except audio_header.WavHeaderError as exc:
            raise AudioFormatError(f"the audio starts like a WAV file, but {exc}") from exc
        if header is None:
            if final:
                raise AudioFormatError(
                    f"the audio ended inside its WAV header ({len(head)} bytes, no data chunk yet): "
                    "send the whole file"
                )
            return None
        if header.channels != 1:
            raise AudioFormatError(
                f"the WAV header says {header.channels} channels: send mono audio (1 channel; "
                "downmix it, or one stream per channel)"
            )
        check_sample_rate(header.sample_rate_hz, field="the WAV header's sample rate")
        self.header = header
        self._data_left = header.data_bytes
        self._start_samples(SampleLayout(header.format_tag, header.bits_per_sample, header.sample_rate_hz))
        return head[header.data_offset :]

    def _decide(self, final: bool) -> bytes | None:
        """Read the stream's first bytes; returns the bytes after any header, None until decided."""
        head = bytes(self._head)
        if len(head) < audio_header.MAGIC_BYTES and not final:
            return None
        container = audio_header.container_of(head)
        if container == "WAV":
            rest = self._start_wav(head, final)
            if rest is None:
                return None
        elif container is not None:
            self._container = bytearray()
            rest = head
        elif self.encoding in (FLAC, OGGOPUS):
            raise AudioFormatError(
                f"audio is not a {encoding_name(self.encoding)} file (no header found): "
                "send the whole file from its first byte, or raw samples with encoding LINEAR_PCM"
            )
        elif self.encoding == ENCODING_UNSPECIFIED:
            raise AudioFormatError(
                "sample_rate_hertz is missing and the audio has no header to read it from (it does not "
                "start with RIFF/WAVE, fLaC or OggS): set sample_rate_hertz "
                f"({MIN_SAMPLE_RATE_HZ}-{MAX_SAMPLE_RATE_HZ} Hz) and the encoding of raw audio, or stream "
                "the file from its first byte"
            )
        else:
            self._start_samples(SampleLayout.declared(self.encoding, self.sample_rate_hz))
            rest = head
        self._head = bytearray()
        return rest

    @property
    def _decided(self) -> bool:
        return self._layout is not None or self._container is not None

    def _consume(self, data: bytes) -> np.ndarray:
        if self._container is not None:
            self._container.extend(data)
            return np.zeros(0, dtype=np.float32)
        assert self._layout is not None
        if self._data_left is not None:  # bytes after a WAV data chunk are other chunks, not audio
            data, self._data_left = data[: self._data_left], max(0, self._data_left - len(data))
        data = self._carry + data
        cut = len(data) - (len(data) % self._layout.sample_bytes)
        self._carry = data[cut:]
        samples = decode_samples(data[:cut], self._layout)
        if self._resampler is None:
            return samples
        return self._resampler.resample_chunk(samples)

    def feed(self, data: bytes) -> np.ndarray:
        """Decode one chunk; returns the samples that are complete so far (may be empty)."""
        self.bytes_in += len(data)
        if not self._decided:
            self._head.extend(data)
            rest = self._decide(final=False)
            if rest is None:
                return np.zeros(0, dtype=np.float32)
            data = rest
        return self._consume(data)

    def finish(self) -> np.ndarray:
        """Flush: the rest of the resampler, or the whole decoded FLAC/OGG stream."""
        samples = np.zeros(0, dtype=np.float32)
        if not self._decided:
            if not self._head:
                return samples  # no audio at all
            samples = self._consume(self._decide(final=True) or b"")
        if self._container is not None:
            decoded, rate = decode_file(bytes(self._container))
            return resample(decoded, rate, self.target_hz)
        if self._carry:
            width = self._layout.sample_bytes if self._layout else 2
            what = "an odd byte" if width == 2 else f"{len(self._carry)} bytes of a {width}-byte sample"
            raise AudioFormatError(
                f"the audio stream ended on {what} ({self.bytes_in} bytes in all): "
                "send whole samples (16-bit LINEAR_PCM: whole int16 samples)"
            )
        if self._resampler is None:
            return samples
        tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        return np.concatenate([samples, tail])
