"""Audio augmentation for the training data: speed, noise at an SNR, reverberation, gain, 8 kHz band.

Synthetic voices are too clean and too alike; real rooms, microphones and phone lines are not.
Every function takes and returns mono float32 at 16 kHz and draws from the ``numpy`` generator it
is given, so one seed reproduces one utterance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr
from scipy.signal import fftconvolve, lfilter

SAMPLE_RATE = 16000


def change_speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (pitch moves with it, like tape): resample and reinterpret."""
    if abs(factor - 1.0) < 1e-3:
        return audio
    return soxr.resample(audio, SAMPLE_RATE, round(SAMPLE_RATE / factor), quality="HQ").astype(np.float32)


def colored_noise(n: int, rng: np.random.Generator, color: str) -> np.ndarray:
    """White, pink (1/f) or brown (1/f²) noise, unit RMS."""
    white = rng.standard_normal(n).astype(np.float32)
    if color == "white" or n == 0:
        noise = white
    else:
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n)
        freqs[0] = freqs[1] if n > 1 else 1.0
        spectrum /= freqs ** (0.5 if color == "pink" else 1.0)
        noise = np.fft.irfft(spectrum, n).astype(np.float32)
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-9)


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum with harmonics (50 or 60 Hz), unit RMS."""
    t = np.arange(n) / SAMPLE_RATE
    base = rng.choice([50.0, 60.0])
    wave = sum(np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6.28)) / k for k in range(1, 6))
    wave = np.asarray(wave, dtype=np.float32)
    return wave / max(float(np.sqrt(np.mean(wave**2))), 1e-9)


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Mix noise at ``snr_db`` relative to the speech power (of the non-silent part)."""
    if audio.size == 0:
        return audio
    loud = audio[np.abs(audio) > 0.02 * np.max(np.abs(audio)) + 1e-9]
    power = float(np.mean(loud**2)) if loud.size else float(np.mean(audio**2))
    kind = rng.choice(["white", "pink", "brown", "pink", "hum"])
    noise = hum(audio.size, rng) if kind == "hum" else colored_noise(audio.size, rng, str(kind))
    return (audio + noise * np.sqrt(power / 10 ** (snr_db / 10))).astype(np.float32)


def synthetic_rir(rng: np.random.Generator) -> np.ndarray:
    """A room impulse response: direct path, a few early reflections, exponentially decaying tail."""
    rt60 = rng.uniform(0.15, 0.7)
    n = int(SAMPLE_RATE * min(rt60 * 1.2, 0.8))
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail = lfilter([1.0], [1.0, -rng.uniform(0.0, 0.7)], tail)  # darker tails: walls absorb treble
    rir = tail * rng.uniform(0.2, 0.6) / max(float(np.sqrt(np.sum(tail**2))), 1e-9)
    rir[0] = 1.0
    for _ in range(rng.integers(2, 6)):
        rir[rng.integers(int(0.002 * SAMPLE_RATE), int(0.03 * SAMPLE_RATE))] += rng.uniform(-0.5, 0.5)
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def reverberate(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if audio.size == 0:
        return audio
    wet = fftconvolve(audio, synthetic_rir(rng))[: audio.size]
    return wet.astype(np.float32)


def band_limit_8k(audio: np.ndarray) -> np.ndarray:
    """Telephone-like: down to 8 kHz and back (nothing above 4 kHz survives)."""
    narrow = soxr.resample(audio, SAMPLE_RATE, 8000, quality="HQ")
    return soxr.resample(narrow, 8000, SAMPLE_RATE, quality="HQ")[: audio.size].astype(np.float32)


@dataclass(frozen=True)
class AugmentPolicy:
    """Probabilities and ranges of each augmentation (the profile picks one)."""

    p_speed: float = 0.3
    speed_range: tuple[float, float] = (0.85, 1.15)
    p_reverb: float = 0.3
    p_noise: float = 0.6
    snr_db_choices: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0, 30.0)
    p_band_limit: float = 0.15
    gain_db_range: tuple[float, float] = (-24.0, 0.0)
    max_pad_s: float = 0.35


CLEAN = AugmentPolicy(p_speed=0.0, p_reverb=0.0, p_noise=0.0, p_band_limit=0.0, gain_db_range=(-6, 0))


def augment(audio: np.ndarray, rng: np.random.Generator, policy: AugmentPolicy) -> np.ndarray:
    """One random chain: silence padding, speed, reverberation, 8 kHz band, noise, gain."""
    pad = rng.uniform(0.0, policy.max_pad_s, size=2)
    audio = np.concatenate(
        [
            np.zeros(int(pad[0] * SAMPLE_RATE), np.float32),
            audio,
            np.zeros(int(pad[1] * SAMPLE_RATE), np.float32),
        ]
    )
    if rng.random() < policy.p_speed:
        audio = change_speed(audio, float(rng.uniform(*policy.speed_range)))
    if rng.random() < policy.p_reverb:
        audio = reverberate(audio, rng)
    if rng.random() < policy.p_band_limit:
        audio = band_limit_8k(audio)
    if rng.random() < policy.p_noise:
        audio = add_noise(audio, float(rng.choice(policy.snr_db_choices)) + rng.uniform(-2, 2), rng)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0:
        audio = audio / peak * 0.95 * 10 ** (rng.uniform(*policy.gain_db_range) / 20)
    return audio.astype(np.float32)
