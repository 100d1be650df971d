"""A corpus of malformed and extreme audio for the ASR: truncated and corrupt WAV/FLAC/Ogg headers,
huge declared sizes, wrong rates, zero-length, NaN-free extreme PCM. Each case names the
`RecognitionConfig` it is sent with (encoding 0 = unspecified: the server must read the header)."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import soundfile as sf

LINEAR_PCM, FLAC, MULAW, OGGOPUS, ALAW = 1, 2, 3, 4, 20
RATE = 16_000


@dataclass(frozen=True)
class AudioCase:
    name: str
    audio: bytes
    encoding: int = 0
    sample_rate_hertz: int = 0
    audio_channel_count: int = 0


def _tone(seconds: float = 0.5, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _encode(samples: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _wav(samples: np.ndarray | None = None, rate: int = RATE, subtype: str = "PCM_16") -> bytes:
    return _encode(_tone() if samples is None else samples, rate, "WAV", subtype)


def _patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    patched = bytearray(data)
    struct.pack_into(fmt, patched, offset, value)
    return bytes(patched)


def _flip(data: bytes, start: int, count: int) -> bytes:
    patched = bytearray(data)
    for i in range(start, min(len(data), start + count)):
        patched[i] ^= 0xA5
    return bytes(patched)


def corpus() -> list[AudioCase]:
    wav = _wav()  # 44-byte canonical header: rate at 24, channels at 22, bits at 34, data size at 40
    flac = _encode(_tone(), RATE, "FLAC", "PCM_16")
    ogg = _encode(_tone(1.0, 48_000), 48_000, "OGG", "OPUS")
    full_scale = np.tile(np.array([32767, -32768], dtype="<i2"), RATE // 2).tobytes()
    cases = [
        AudioCase("zero-length, LINEAR_PCM", b"", LINEAR_PCM, RATE),
        AudioCase("zero-length, no encoding", b""),
        AudioCase("one byte of PCM", b"\x01", LINEAR_PCM, RATE),
        AudioCase("odd number of PCM bytes", full_scale[:3001], LINEAR_PCM, RATE),
        AudioCase("full-scale square PCM", full_scale, LINEAR_PCM, RATE),
        AudioCase("DC at -32768", np.full(RATE, -32768, "<i2").tobytes(), LINEAR_PCM, RATE),
        AudioCase("PCM at 1 Hz", full_scale[:800], LINEAR_PCM, 1),
        AudioCase("PCM at 7999 Hz", full_scale[:8000], LINEAR_PCM, 7_999),
        AudioCase("PCM at 192 kHz", full_scale, LINEAR_PCM, 192_000),
        AudioCase("PCM at 2^31-1 Hz", full_scale[:800], LINEAR_PCM, 2**31 - 1),
        AudioCase("PCM at -16000 Hz", full_scale[:800], LINEAR_PCM, -16_000),
        AudioCase("PCM with 0 Hz", full_scale[:800], LINEAR_PCM, 0),
        AudioCase("PCM declared 2 channels", full_scale, LINEAR_PCM, RATE, 2),
        AudioCase("PCM declared 1000 channels", full_scale, LINEAR_PCM, RATE, 1000),
        AudioCase("MULAW garbage", bytes(range(256)) * 20, MULAW, 8_000),
        AudioCase("ALAW at 0 Hz", bytes(range(256)) * 4, ALAW, 0),
        AudioCase("unknown encoding 99", full_scale[:800], 99, RATE),
        AudioCase("WAV header only", wav[:44]),
        AudioCase("WAV truncated header", wav[:20]),
        AudioCase("WAV RIFF magic only", b"RIFF"),
        AudioCase("WAV data size 4 GiB", _patch(wav, 40, "<I", 0xFFFFFFF0)),
        AudioCase("WAV RIFF size 4 GiB", _patch(wav, 4, "<I", 0xFFFFFFF0)),
        AudioCase("WAV rate 0", _patch(wav, 24, "<I", 0)),
        AudioCase("WAV rate 4e9", _patch(wav, 24, "<I", 4_000_000_000)),
        AudioCase("WAV 0 channels", _patch(wav, 22, "<H", 0)),
        AudioCase("WAV 65535 channels", _patch(wav, 22, "<H", 65535)),
        AudioCase("WAV 0 bits per sample", _patch(wav, 34, "<H", 0)),
        AudioCase("WAV corrupt fmt chunk", _flip(wav, 12, 24)),
        AudioCase("WAV but config says MULAW", wav, MULAW, 8_000),
        AudioCase("WAV but config says FLAC", wav, FLAC, RATE),
        AudioCase("WAV as LINEAR_PCM (header included)", wav, LINEAR_PCM, RATE),
        AudioCase("WAV 8 kHz declared 16 kHz", _wav(_tone(0.5, 8_000), 8_000), LINEAR_PCM, RATE),
        AudioCase("WAV stereo", _wav(np.stack([_tone(), _tone()], axis=1))),
        AudioCase("WAV 8-bit unsigned", _wav(subtype="PCM_U8")),
        AudioCase("WAV 24-bit", _wav(subtype="PCM_24")),
        AudioCase(
            "WAV float32 extreme (±3e38)",
            _wav(np.tile(np.float32([3e38, -3e38]), RATE // 2), subtype="FLOAT"),
        ),
        AudioCase("WAV float32 at 1e6 amplitude", _wav(_tone() * 1e6, subtype="FLOAT")),
        AudioCase("WAV 5 ms", _wav(_tone(0.005))),
        AudioCase("FLAC truncated in half", flac[: len(flac) // 2]),
        AudioCase("FLAC magic only", b"fLaC"),
        AudioCase("FLAC corrupt STREAMINFO", _flip(flac, 8, 34)),
        AudioCase("FLAC corrupt frames", _flip(flac, len(flac) // 2, 64)),
        AudioCase(
            "FLAC declared, random bytes",
            bytes(np.random.default_rng(1).integers(0, 256, 4000, np.uint8)),
            FLAC,
        ),
        AudioCase("Ogg truncated in half", ogg[: len(ogg) // 2]),
        AudioCase("Ogg magic only", b"OggS"),
        AudioCase("Ogg corrupt first page", _flip(ogg, 4, 40)),
        AudioCase("Ogg corrupt middle", _flip(ogg, len(ogg) // 2, 200)),
        AudioCase("Ogg Opus declared OGGOPUS", ogg, OGGOPUS, 48_000),
        AudioCase(
            "random bytes, no encoding", bytes(np.random.default_rng(2).integers(0, 256, 8000, np.uint8))
        ),
    ]
    return cases
