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

Where the graphs run comes from ``onnx_device.py`` (next to this file): the CPU provider by default;
on a ``KIND_GPU`` instance the CUDA (and optionally TensorRT) provider, and each stream's encoder
caches then stay on the device between chunks (``DeviceCaches``: onnxruntime I/O binding with
OrtValues; only audio, mel frames and log-probabilities cross host memory).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort


def _sibling_module(file_name: str, module_name: str):
    """A module that sits next to this file (model directories are self-contained, not packages)."""
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            module_name, os.path.join(os.path.dirname(os.path.abspath(__file__)), file_name)
        )
        sys.modules[module_name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[module_name]


onnx_device = _sibling_module("onnx_device.py", "rivulet_onnx_device")


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
    # [n_layers, channel_cache, d_model] (numpy), or [1, ...] OrtValues on the device (DeviceCaches)
    cache_channel: np.ndarray | ort.OrtValue
    # [n_layers, d_model, time_cache], likewise
    cache_time: np.ndarray | ort.OrtValue
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


class DeviceCaches:
    """Keeps each stream's encoder caches as [1, ...] OrtValues on the placement's device.

    A batched encoder step needs the caches of its streams stacked along the batch axis, and gives
    back the batch's next caches stacked: two tiny graphs, built once per batch size, concatenate
    and split them on the device, so no cache crosses host memory between chunks. (On the CPU
    the same path runs with CPU OrtValues: the tests check it against the numpy path.)
    """

    def __init__(self, config: StreamConfig, device: tuple[str, int], options) -> None:
        """``device``: ("cuda", id) or ("cpu", 0), where the encoder session runs."""
        self.config = config
        self.device = device
        self.options = options
        self.providers = [(onnx_device.CUDA, {"device_id": device[1]})] if device[0] == "cuda" else []
        self.providers.append(onnx_device.CPU)
        c = config
        self.zero_channel = self.on_device(np.zeros((1, c.n_layers, c.channel_cache, c.d_model), np.float32))
        self.zero_time = self.on_device(np.zeros((1, c.n_layers, c.d_model, c.time_cache), np.float32))
        self._stackers: dict[int, ort.InferenceSession] = {}
        self._splitters: dict[int, ort.InferenceSession] = {}

    def on_device(self, array: np.ndarray) -> ort.OrtValue:
        return ort.OrtValue.ortvalue_from_numpy(array, *self.device)

    def stack(self, channels: list, times: list) -> tuple[ort.OrtValue, ort.OrtValue]:
        """[1, ...] OrtValues of B streams → the two [B, ...] batch inputs."""
        if len(channels) == 1:
            return channels[0], times[0]
        session = self._stackers.get(len(channels)) or self._build(len(channels), self._stackers, stack=True)
        return self._run(session, [*channels, *times])

    def split(self, channel: ort.OrtValue, time_cache: ort.OrtValue, batch: int) -> tuple[list, list]:
        """The [B, ...] next caches → B [1, ...] OrtValues each (one per stream)."""
        if batch == 1:
            return [channel], [time_cache]
        session = self._splitters.get(batch) or self._build(batch, self._splitters, stack=False)
        values = self._run(session, [channel, time_cache])
        return list(values[:batch]), list(values[batch:])

    def _run(self, session: ort.InferenceSession, inputs: list) -> list:
        binding = session.io_binding()
        for meta, value in zip(session.get_inputs(), inputs, strict=True):
            binding.bind_ortvalue_input(meta.name, value)
        for meta in session.get_outputs():
            binding.bind_output(meta.name, *self.device)
        session.run_with_iobinding(binding)
        return binding.get_outputs()

    def _build(self, batch: int, sessions: dict, stack: bool) -> ort.InferenceSession:
        from onnx import TensorProto, helper

        c = self.config
        shapes = {
            "channel": [c.n_layers, c.channel_cache, c.d_model],
            "time": [c.n_layers, c.d_model, c.time_cache],
        }
        rows = [f"{kind}_{i}" for kind in shapes for i in range(batch)]

        def tensor(name: str, leading: int) -> object:
            dims = [leading, *shapes[name.split("_")[0]]]
            return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)

        if stack:
            inputs = [tensor(name, 1) for name in rows]
            outputs = [tensor(kind, batch) for kind in shapes]
            nodes = [
                helper.make_node("Concat", [f"{kind}_{i}" for i in range(batch)], [kind], axis=0)
                for kind in shapes
            ]
            initializers = []
        else:
            inputs = [tensor(kind, batch) for kind in shapes]
            outputs = [tensor(name, 1) for name in rows]
            nodes = [
                helper.make_node("Split", [kind, "ones"], [f"{kind}_{i}" for i in range(batch)], axis=0)
                for kind in shapes
            ]
            initializers = [helper.make_tensor("ones", TensorProto.INT64, [batch], [1] * batch)]
        graph = helper.make_graph(nodes, "stack" if stack else "split", inputs, outputs, initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8  # what every onnxruntime since 1.10 reads
        session = ort.InferenceSession(model.SerializeToString(), self.options, providers=self.providers)
        sessions[batch] = session
        return session


class StreamingRecognizer:
    """Holds the sessions and state of many streams; ``process`` advances a batch of them."""

    def __init__(
        self,
        model_dir: str,
        intra_op_num_threads: int = 1,
        idle_timeout_s: float = 60.0,
        placement: onnx_device.Placement | None = None,
        caches_on_device: bool | None = None,
    ) -> None:
        """``placement``: where the graphs run (the CPU by default); ``caches_on_device``: keep the
        encoder caches in OrtValues between chunks (default: when the placement is a GPU)."""
        self.config = StreamConfig.load(os.path.join(model_dir, "asr_stream.json"))
        self.placement = placement or onnx_device.CPU_PLACEMENT
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.frontend = onnx_device.create_session(
            os.path.join(model_dir, "frontend.onnx"), options, self.placement
        )
        self.encoder = onnx_device.create_session(
            os.path.join(model_dir, "encoder.onnx"), options, self.placement
        )
        self._encoder_inputs = [i.name for i in self.encoder.get_inputs()]
        self._encoder_outputs = [o.name for o in self.encoder.get_outputs()]
        if caches_on_device is None:
            caches_on_device = self.placement.on_gpu
        # where the encoder really runs (a GPU placement without the CUDA provider runs on the CPU)
        on_cuda = onnx_device.CUDA in self.encoder.get_providers()
        device = onnx_device.iobinding_device(self.placement) if on_cuda else ("cpu", 0)
        self.device_caches = DeviceCaches(self.config, device, options) if caches_on_device else None
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
            cache_channel=(
                self.device_caches.zero_channel
                if self.device_caches
                else np.zeros((c.n_layers, c.channel_cache, c.d_model), dtype=np.float32)
            ),
            cache_time=(
                self.device_caches.zero_time
                if self.device_caches
                else np.zeros((c.n_layers, c.d_model, c.time_cache), dtype=np.float32)
            ),
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
            "cache_last_channel_len": np.array([s.cache_len for _, s in batch], dtype=np.int64),
        }
        if self.device_caches:
            logprobs, lengths, channel, time_cache, channel_len = self._encoder_run_on_device(batch, feeds)
        else:
            feeds["cache_last_channel"] = np.stack([s.cache_channel for _, s in batch])
            feeds["cache_last_time"] = np.stack([s.cache_time for _, s in batch])
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

    def _encoder_run_on_device(self, batch: list[tuple[int, StreamState]], feeds: dict) -> tuple:
        """One encoder step with the caches read from and left on the device: returns the outputs in
        the graph's order, the two caches as lists of per-stream [1, ...] OrtValues."""
        caches = self.device_caches
        binding = self.encoder.io_binding()
        for name, value in feeds.items():
            if name in self._encoder_inputs:
                binding.bind_cpu_input(name, value)
        channel, time_cache = caches.stack(
            [s.cache_channel for _, s in batch], [s.cache_time for _, s in batch]
        )
        binding.bind_ortvalue_input("cache_last_channel", channel)
        binding.bind_ortvalue_input("cache_last_time", time_cache)
        device, device_id = caches.device
        for position, name in enumerate(self._encoder_outputs):
            if position in (2, 3):  # the next caches stay where they are
                binding.bind_output(name, device, device_id)
            else:
                binding.bind_output(name, "cpu")
        self.encoder.run_with_iobinding(binding)
        values = binding.get_outputs()
        channels, times = caches.split(values[2], values[3], len(batch))
        return values[0].numpy(), values[1].numpy(), channels, times, values[4].numpy()

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
