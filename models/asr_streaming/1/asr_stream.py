"""Streaming speech recognition runtime: per-stream state, batched onnxruntime steps (numpy only).

Two ONNX graphs sit next to this file, described by ``asr_stream.json``:

- ``frontend.onnx``: pre-emphasized audio window [B, L] → log-mel frames [B, n_mels, (L - n_fft) // hop + 1],
  the same numbers as NeMo's ``AudioToMelSpectrogramPreprocessor`` (centered STFT, ``normalize: NA``);
- ``encoder.onnx``: the cache-aware streaming encoder + CTC head exported by NeMo (``cache_support``):
  [B, n_mels, pre_cache + chunk] mel frames + caches → log-probabilities of the chunk's encoder frames
  and the next caches.

A stream's audio arrives in pieces of any size. The front-end emits a mel frame as soon as its
window is complete; the encoder runs whenever a whole chunk of mel frames is pending. Every stream
runs the same graph from its first chunk on ("padded" first chunk: zero pre-encode cache), with
``prefix_frames`` zero mel frames in front so the subsampling grid matches training. On ``end`` the
remaining audio and frames are padded and flushed. Steps of many streams run as one batched call.
Nothing here imports Triton or NeMo: the Triton model, the pipeline's parity checks and the
benchmarks all use this one file.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort


@dataclass
class StreamConfig:
    """What ``asr_stream.json`` says about the two graphs (written by the pipeline)."""

    sample_rate: int
    n_fft: int
    hop: int
    n_mels: int
    preemph: float
    chunk_frames: int  # mel frames consumed per encoder step
    pre_cache_frames: int  # previous mel frames prepended to each step (pre-encode cache)
    prefix_frames: int  # zero mel frames in front of every stream (aligns the subsampling grid)
    subsampling: int
    n_layers: int
    d_model: int
    channel_cache: int  # attention history (encoder frames)
    time_cache: int  # causal convolution history
    vocabulary: list[str]
    blank_index: int
    tokenizer: str
    frame_shift_ms: int
    chunk_ms: int
    description: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str) -> StreamConfig:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class StreamState:
    """Everything one stream carries between requests."""

    prev_sample: float
    audio: np.ndarray  # pre-emphasized samples not yet fully framed, padded coordinates from audio_offset
    audio_offset: int
    n_samples: int
    mel_done: int  # index of the next mel frame to compute
    pending: np.ndarray  # [n_mels, k] mel frames waiting for the encoder
    pre_cache: np.ndarray  # [n_mels, pre_cache_frames]
    cache_channel: np.ndarray  # [n_layers, channel_cache, d_model]
    cache_time: np.ndarray  # [n_layers, d_model, time_cache]
    cache_len: int
    frames_out: int
    last_used: float


@dataclass
class StepResult:
    """Log-probabilities [T, V] of the encoder frames completed by one request, and their first index."""

    logprobs: np.ndarray
    frame_start: int


class StreamError(ValueError):
    """A request that cannot be served (its stream is unknown, or its audio is malformed)."""


class StreamingRecognizer:
    """Holds the sessions and state of many streams; ``process`` advances a batch of them."""

    def __init__(self, model_dir: str, intra_op_num_threads: int = 1, idle_timeout_s: float = 60.0) -> None:
        self.config = StreamConfig.load(os.path.join(model_dir, "asr_stream.json"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        self.frontend = ort.InferenceSession(
            os.path.join(model_dir, "frontend.onnx"), options, providers=providers
        )
        self.encoder = ort.InferenceSession(
            os.path.join(model_dir, "encoder.onnx"), options, providers=providers
        )
        self._encoder_inputs = [i.name for i in self.encoder.get_inputs()]
        self.idle_timeout_s = idle_timeout_s
        self.streams: dict[int, StreamState] = {}

    # ----------------------------------------------------------------------------------- state
    def new_state(self) -> StreamState:
        c = self.config
        return StreamState(
            prev_sample=0.0,
            audio=np.zeros(c.n_fft // 2, dtype=np.float32),  # the centered STFT's left padding
            audio_offset=0,
            n_samples=0,
            mel_done=0,
            pending=np.zeros((c.n_mels, c.prefix_frames), dtype=np.float32),
            pre_cache=np.zeros((c.n_mels, c.pre_cache_frames), dtype=np.float32),
            cache_channel=np.zeros((c.n_layers, c.channel_cache, c.d_model), dtype=np.float32),
            cache_time=np.zeros((c.n_layers, c.d_model, c.time_cache), dtype=np.float32),
            cache_len=0,
            frames_out=0,
            last_used=time.monotonic(),
        )

    def evict_idle(self, now: float | None = None) -> list[int]:
        """Forget streams idle longer than the timeout (clients that vanished without END)."""
        now = time.monotonic() if now is None else now
        stale = [k for k, s in self.streams.items() if now - s.last_used > self.idle_timeout_s]
        for key in stale:
            del self.streams[key]
        return stale

    # ------------------------------------------------------------------------------ processing
    def process(self, requests: list[tuple[int, np.ndarray, bool, bool]]) -> list[StepResult | StreamError]:
        """Advance streams by one request each: (stream id, float32 audio, start, end) → result or error.

        A stream id may appear more than once; its requests are applied in order.
        """
        results: list[StepResult | StreamError | None] = [None] * len(requests)
        remaining = list(range(len(requests)))
        while remaining:  # waves: at most one request per stream in each
            wave, seen, later = [], set(), []
            for i in remaining:
                (later if requests[i][0] in seen else wave).append(i)
                seen.add(requests[i][0])
            self._process_wave([(i, *requests[i]) for i in wave], results)
            remaining = later
        self.evict_idle()
        return results  # type: ignore[return-value]

    def _process_wave(self, wave: list, results: list) -> None:
        active: list[tuple[int, int, StreamState, bool]] = []
        for index, key, audio, start, end in wave:
            if start:
                self.streams[key] = self.new_state()
            state = self.streams.get(key)
            if state is None:
                results[index] = StreamError(
                    f"unknown stream {key}: its first request must set START (or it idled out and was freed)"
                )
                continue
            try:
                samples = np.asarray(audio, dtype=np.float32).reshape(-1)
                if samples.size and not np.all(np.isfinite(samples)):
                    raise StreamError("AUDIO holds NaN or infinite samples")
            except (TypeError, ValueError) as error:
                self.streams.pop(key, None)
                results[index] = error if isinstance(error, StreamError) else StreamError(str(error))
                continue
            state.last_used = time.monotonic()
            self._append_audio(state, samples, end)
            active.append((index, key, state, end))
        if not active:
            return
        starts = {index: state.frames_out for index, _, state, _ in active}
        outputs: dict[int, list[np.ndarray]] = {index: [] for index, _, _, _ in active}
        self._run_frontend([(index, state, end) for index, _, state, end in active])
        self._run_encoder([(index, state, end) for index, _, state, end in active], outputs)
        vocab = len(self.config.vocabulary)
        for index, key, _, end in active:
            parts = outputs[index]
            logprobs = np.concatenate(parts, axis=0) if parts else np.zeros((0, vocab), dtype=np.float32)
            results[index] = StepResult(logprobs.astype(np.float32, copy=False), starts[index])
            if end:
                self.streams.pop(key, None)

    def _append_audio(self, state: StreamState, samples: np.ndarray, end: bool) -> None:
        c = self.config
        if samples.size:
            shifted = np.concatenate(([state.prev_sample], samples[:-1])).astype(np.float32)
            emphasized = samples - np.float32(c.preemph) * shifted
            state.prev_sample = float(samples[-1])
            state.audio = np.concatenate((state.audio, emphasized.astype(np.float32)))
            state.n_samples += samples.size
        if end:  # the centered STFT's right padding
            state.audio = np.concatenate((state.audio, np.zeros(c.n_fft // 2, dtype=np.float32)))

    def _frames_ready(self, state: StreamState, end: bool) -> int:
        """How many mel frames (from mel_done) can be computed now."""
        c = self.config
        available = state.audio_offset + state.audio.size
        last = (available - c.n_fft) // c.hop + 1  # frames whose window is complete
        if end:
            last = min(last, state.n_samples // c.hop)  # NeMo's frame count: floor(N / hop)
        return max(0, last - state.mel_done)

    def _run_frontend(self, items: list[tuple[int, StreamState, bool]]) -> None:
        c = self.config
        groups: dict[int, list[StreamState]] = {}
        for _, state, end in items:
            n = self._frames_ready(state, end)
            if n > 0:
                groups.setdefault(n, []).append(state)
        for n, states in groups.items():
            length = (n - 1) * c.hop + c.n_fft
            batch = np.stack([s.audio[s.mel_done * c.hop - s.audio_offset :][:length] for s in states])
            mel = self.frontend.run(None, {"audio": batch})[0]
            for state, frames in zip(states, mel, strict=True):
                state.pending = np.concatenate((state.pending, frames), axis=1)
                state.mel_done += n
                drop = state.mel_done * c.hop - state.audio_offset
                state.audio = state.audio[drop:]
                state.audio_offset += drop

    def _run_encoder(
        self, items: list[tuple[int, StreamState, bool]], outputs: dict[int, list[np.ndarray]]
    ) -> None:
        c = self.config
        while True:
            batch = [(i, s) for i, s, _ in items if s.pending.shape[1] >= c.chunk_frames]
            if not batch:
                break
            self._encoder_step(batch, [c.chunk_frames] * len(batch), outputs)
        flush = [(i, s) for i, s, end in items if end and s.pending.shape[1] > 0]
        if flush:
            lengths = [s.pending.shape[1] for _, s in flush]
            for _, s in flush:
                pad = np.zeros((c.n_mels, c.chunk_frames - s.pending.shape[1]), dtype=np.float32)
                s.pending = np.concatenate((s.pending, pad), axis=1)
            self._encoder_step(flush, lengths, outputs)

    def _encoder_step(self, batch: list[tuple[int, StreamState]], valid: list[int], outputs: dict) -> None:
        c = self.config
        signal = np.stack(
            [np.concatenate((s.pre_cache, s.pending[:, : c.chunk_frames]), axis=1) for _, s in batch]
        )
        feeds = {
            "audio_signal": signal.astype(np.float32),
            "length": np.array([c.pre_cache_frames + v for v in valid], dtype=np.int64),
            "cache_last_channel": np.stack([s.cache_channel for _, s in batch]),
            "cache_last_time": np.stack([s.cache_time for _, s in batch]),
            "cache_last_channel_len": np.array([s.cache_len for _, s in batch], dtype=np.int64),
        }
        logprobs, lengths, channel, time_cache, channel_len = self.encoder.run(
            None, {k: v for k, v in feeds.items() if k in self._encoder_inputs}
        )
        for row, ((index, state), _) in enumerate(zip(batch, valid, strict=True)):
            n = int(lengths[row])
            state.pre_cache = signal[row][:, -c.pre_cache_frames :] if c.pre_cache_frames else state.pre_cache
            state.pending = state.pending[:, c.chunk_frames :]
            state.cache_channel = channel[row]
            state.cache_time = time_cache[row]
            state.cache_len = int(channel_len[row])
            outputs[index].append(logprobs[row, :n])
            state.frames_out += n

    # ---------------------------------------------------------------------------- conveniences
    def transcribe_logprobs(self, audio: np.ndarray, chunk_samples: int | None = None) -> np.ndarray:
        """Whole-utterance log-probabilities, sent as one request or in chunks (for tests and benchmarks)."""
        key = -1 - len(self.streams)
        if chunk_samples is None:
            return self.process([(key, audio, True, True)])[0].logprobs  # type: ignore[union-attr]
        parts = []
        pieces = [audio[i : i + chunk_samples] for i in range(0, max(audio.size, 1), chunk_samples)]
        for n, piece in enumerate(pieces):
            result = self.process([(key, piece, n == 0, n == len(pieces) - 1)])[0]
            if isinstance(result, StreamError):
                raise result
            parts.append(result.logprobs)
        return np.concatenate(parts, axis=0)


def greedy_ctc(logprobs: np.ndarray, vocabulary: list[str], blank_index: int, tokenizer: str = "char") -> str:
    """Best-path CTC decoding: argmax per frame, collapse repeats, drop blanks."""
    best = logprobs.argmax(axis=-1) if logprobs.size else np.zeros(0, dtype=np.int64)
    tokens, previous = [], -1
    for token in best.tolist():
        if token != previous and token != blank_index:
            tokens.append(vocabulary[token])
        previous = token
    if tokenizer == "bpe":
        return "".join(tokens).replace("▁", " ").strip()
    return " ".join("".join(tokens).split())
