"""The audio a TTS client receives: resampled to its rate and encoded, piece by piece.

``AudioOutput(encoding, from_hz, to_hz)``: ``add(samples) -> bytes`` for each synthesized piece,
``finish() -> bytes`` at the end. Resampling is streaming (soxr keeps its filter state across
pieces), so the pieces join without clicks. LINEAR_PCM: raw 16-bit little-endian samples.
OGGOPUS: one Ogg/Opus stream across all responses (libsndfile writes pages as they fill; the
concatenated bytes are one valid file). Opus codes 8, 12, 16, 24 and 48 kHz only: any other rate a
client asks for (talk.py's default 44100) is encoded at the next Opus rate up (44100 → 48000,
22050 → 24000; `opus_rate`), so no bandwidth the client asked for is lost. The stream's OpusHead
says that rate, as every Opus decoder reads it (most decode at 48 kHz whatever it says).
"""

from __future__ import annotations

import numpy as np
import soundfile
import soxr

from rivulet.core import audio as core_audio

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
SUPPORTED = (core_audio.LINEAR_PCM, core_audio.OGGOPUS)


class _Sink:
    """A write-only file object for libsndfile's virtual I/O."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data.extend(data)
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return len(self.data)

    def tell(self) -> int:
        return len(self.data)

    def read(self, size: int = -1) -> bytes:
        return b""

    def take(self) -> bytes:
        out = bytes(self.data)
        self.data.clear()
        return out


def check_output_format(encoding: int, sample_rate_hz: int) -> None:
    """Raise AudioFormatError (→ INVALID_ARGUMENT) for a format the service cannot produce."""
    if encoding not in (core_audio.ENCODING_UNSPECIFIED, *SUPPORTED):
        raise core_audio.AudioFormatError(
            f"encoding {core_audio.encoding_name(encoding)} is not supported for synthesis: "
            "use LINEAR_PCM or OGGOPUS"
        )
    core_audio.check_sample_rate(sample_rate_hz, field="sample_rate_hz")


def opus_rate(sample_rate_hz: int) -> int:
    """The Opus rate audio asked for at `sample_rate_hz` is encoded at: that rate, or the next one up."""
    return next(rate for rate in OPUS_RATES if rate >= sample_rate_hz)


class AudioOutput:
    def __init__(self, encoding: int, from_hz: int, to_hz: int) -> None:
        check_output_format(encoding, to_hz)
        if encoding == core_audio.OGGOPUS:
            to_hz = opus_rate(to_hz)
        self.encoding = encoding
        self.to_hz = to_hz
        self.samples_out = 0
        self._resampler = (
            soxr.ResampleStream(from_hz, to_hz, 1, dtype="float32", quality="HQ")
            if from_hz != to_hz
            else None
        )
        self._sink: _Sink | None = None
        self._ogg: soundfile.SoundFile | None = None
        if encoding == core_audio.OGGOPUS:
            self._sink = _Sink()
            self._ogg = soundfile.SoundFile(
                self._sink, "w", samplerate=to_hz, channels=1, format="OGG", subtype="OPUS"
            )

    def _encode(self, samples: np.ndarray) -> bytes:
        self.samples_out += samples.size
        if self._ogg is not None and self._sink is not None:
            if samples.size:
                self._ogg.write(samples)
            return self._sink.take()
        return core_audio.encode(samples, core_audio.LINEAR_PCM, self.to_hz)

    def add(self, samples: np.ndarray) -> bytes:
        samples = samples.astype(np.float32, copy=False)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        return self._encode(samples)

    def finish(self) -> bytes:
        tail = np.zeros(0, dtype=np.float32)
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(tail, last=True)
        data = self._encode(tail)
        if self._ogg is not None and self._sink is not None:
            self._ogg.close()
            self._ogg = None
            data += self._sink.take()
        return data

    @property
    def seconds(self) -> float:
        return self.samples_out / self.to_hz
