"""FastPitch + HiFi-GAN at serving time: tokenizer, spectrogram, chunked streaming vocoding.

Copied next to the exported ONNX files by ``python -m pipelines.tts export`` and loaded by the
Triton model; it imports only numpy and onnxruntime (no NeMo, no torch), so it also runs in
NVIDIA's Triton container.

Streaming vocoding: FastPitch produces the whole mel spectrogram of a piece of text in one pass
(it is non-autoregressive and fast); HiFi-GAN, the expensive part, then runs on chunks of mel
frames, each with ``overlap`` frames of context on both sides, and only the audio of the chunk's
own frames is kept. HiFi-GAN is convolutional with a limited receptive field, so with enough
overlap the joined chunks match one whole-spectrogram run (a test checks this), while the first
audio leaves after one short chunk (``first_chunk_frames``) instead of the whole utterance.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort


class CharTokenizer:
    """NeMo's EnglishCharsTokenizer.encode without NeMo (its vocabulary exported as JSON)."""

    def __init__(self, spec: dict) -> None:
        if spec.get("type") != "chars":
            raise ValueError(f"tokenizer type {spec.get('type')!r} is not supported at serving time")
        self.tokens: list[str] = spec["tokens"]
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.space = self.tokens[spec.get("space", 0)]
        self.punct = set(spec.get("punct", []))
        self.pad_with_space = bool(spec.get("pad_with_space", False))
        self.lower = bool(spec.get("lower", True))

    def encode(self, text: str) -> list[int]:
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        text = text.replace("’", "'").replace("“", '"').replace("”", '"')
        if self.lower:
            text = text.lower()
        chars: list[str] = []
        for c in text:
            if c.isspace():
                if chars and chars[-1] != self.space:
                    chars.append(self.space)
            elif (c.isalnum() or c == "'") and c in self.ids:
                chars.append(c)
            elif c in self.punct and c in self.ids:
                chars.append(c)
        while chars and chars[-1] == self.space:
            chars.pop()
        if self.pad_with_space:
            chars = [self.space, *chars, self.space]
        return [self.ids[c] for c in chars]


class FastPitchHifiGan:
    """The two ONNX graphs and their settings, loaded once per Triton model instance."""

    def __init__(
        self,
        directory: Path,
        *,
        threads: int = 1,
        chunk_frames: int = 64,
        first_chunk_frames: int = 16,
        overlap_frames: int = 12,
        providers: list | None = None,
    ) -> None:
        """``providers``: onnxruntime's execution providers (the Triton model's choice for its
        instance, ``onnx_device.py``); the CPU provider when not given."""
        directory = Path(directory)
        meta = json.loads((directory / "tts_meta.json").read_text())
        self.sample_rate = int(meta["sample_rate"])
        self.hop = int(meta["hop_length"])
        self.pitch_mean = float(meta.get("pitch_mean", 212.35))
        self.pitch_std = float(meta.get("pitch_std", 68.52))
        self.tokenizer = CharTokenizer(meta["tokenizer"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        providers = providers or ["CPUExecutionProvider"]
        self.fastpitch = ort.InferenceSession(str(directory / "fastpitch.onnx"), options, providers=providers)
        self.hifigan = ort.InferenceSession(str(directory / "hifigan.onnx"), options, providers=providers)
        self.chunk_frames = chunk_frames
        self.first_chunk_frames = first_chunk_frames
        self.overlap = overlap_frames

    def spectrogram(self, text: str, rate: float = 1.0, pitch: float = 1.0) -> np.ndarray:
        """Mel spectrogram [80, frames] of ``text``; ``rate`` is FastPitch's pace, ``pitch`` a factor."""
        tokens = self.tokenizer.encode(text)
        if not tokens:
            return np.zeros((80, 0), dtype=np.float32)
        ids = np.array([tokens], dtype=np.int64)
        shift = self.pitch_mean * (pitch - 1.0) / self.pitch_std  # FastPitch pitch is normalized Hz
        spect, frames = self.fastpitch.run(
            ["spect", "num_frames"],
            {
                "text": ids,
                "pitch": np.full(ids.shape, shift, dtype=np.float32),
                "pace": np.full(ids.shape, rate, dtype=np.float32),
            },
        )[:2]
        return spect[0, :, : int(frames.reshape(-1)[0])]

    def vocode(self, spect: np.ndarray) -> np.ndarray:
        """HiFi-GAN on a whole spectrogram [80, frames] → float32 audio (frames × hop samples)."""
        if spect.shape[1] == 0:
            return np.zeros(0, dtype=np.float32)
        audio = self.hifigan.run(["audio"], {"spec": spect[None].astype(np.float32)})[0]
        return audio.reshape(-1)

    def vocode_chunks(self, spect: np.ndarray) -> Iterator[np.ndarray]:
        """The same audio as ``vocode``, chunk by chunk (first chunk short), with overlapping context."""
        frames = spect.shape[1]
        start = 0
        size = self.first_chunk_frames
        while start < frames:
            end = min(frames, start + size)
            lo, hi = max(0, start - self.overlap), min(frames, end + self.overlap)
            audio = self.vocode(spect[:, lo:hi])
            yield audio[(start - lo) * self.hop : (end - lo) * self.hop]
            start, size = end, self.chunk_frames

    def speak(self, text: str, rate: float = 1.0, pitch: float = 1.0) -> Iterator[np.ndarray]:
        yield from self.vocode_chunks(self.spectrogram(text, rate, pitch))
