"""ONNX export of a NeMo CTC model for ``asr_stream.py``, and the parity check against NeMo itself.

Two graphs: the mel front-end (NeMo's ``model.export`` starts from mel features, so the front-end
is rebuilt here from the model's own window and filterbank and exported with
``torch.onnx.export(dynamo=True)``) and the cache-aware streaming encoder + CTC head
(``set_export_config({'cache_support': 'True'})``). ``asr_stream.json`` describes both. The parity
check runs the exported graphs through the serving runtime, chunk by chunk, and compares them with
NeMo's whole-utterance forward pass on the same audio.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from pipelines.asr.paths import RUNTIME_DIR, RUNTIME_FILES


class MelFrontend(torch.nn.Module):
    """NeMo's FilterbankFeatures (pre-emphasized input, no dither, centered frames) as a strided conv.

    Input: pre-emphasized audio whose first sample is the start of a frame window (the caller keeps
    the centered-STFT padding); output: log-mel [B, n_mels, (L - n_fft) // hop + 1].
    """

    def __init__(self, featurizer) -> None:
        super().__init__()
        n_fft, hop = int(featurizer.n_fft), int(featurizer.hop_length)
        window = featurizer.window.detach().float()
        left = (n_fft - window.numel()) // 2
        padded = torch.zeros(n_fft)
        padded[left : left + window.numel()] = window
        bins = n_fft // 2 + 1
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(bins, dtype=torch.float64)[:, None]
        angle = 2 * torch.pi * k * n / n_fft
        kernel = torch.cat([torch.cos(angle), -torch.sin(angle)]) * padded.double()
        self.register_buffer("kernel", kernel.float()[:, None, :])
        self.register_buffer("fb", featurizer.fb.detach().float()[0])
        self.hop, self.bins = hop, bins
        guard = featurizer.log_zero_guard_value
        self.guard = float(guard) if not isinstance(guard, str) else float(torch.finfo(torch.float32).tiny)
        self.mag_power = float(featurizer.mag_power)
        mean, std = torch.zeros(self.fb.shape[0]), torch.ones(self.fb.shape[0])
        if _fixed_stats(featurizer.normalize):
            mean = torch.tensor(list(featurizer.normalize["fixed_mean"]), dtype=torch.float32)
            std = torch.tensor(list(featurizer.normalize["fixed_std"]), dtype=torch.float32)
        self.register_buffer("mean", mean[:, None])
        self.register_buffer("inv_std", 1.0 / std[:, None])

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = torch.nn.functional.conv1d(audio[:, None, :], self.kernel, stride=self.hop)
        power = spec[:, : self.bins] ** 2 + spec[:, self.bins :] ** 2
        if self.mag_power != 2.0:
            power = power ** (self.mag_power / 2.0)
        return (torch.log(torch.matmul(self.fb, power) + self.guard) - self.mean) * self.inv_std


def _fixed_stats(normalize) -> bool:
    return hasattr(normalize, "keys") and "fixed_mean" in normalize and "fixed_std" in normalize


def check_preprocessor(model) -> None:
    """The streaming front-end reproduces only this kind of preprocessor; say so early otherwise."""
    featurizer = model.preprocessor.featurizer
    problems = []
    if not _fixed_stats(featurizer.normalize) and featurizer.normalize not in (None, "NA", "None", ""):
        problems.append(f"normalize={featurizer.normalize!r} (per-utterance statistics cannot stream)")
    if featurizer.frame_splicing != 1:
        problems.append("frame_splicing != 1")
    if featurizer.exact_pad:
        problems.append("exact_pad=True")
    if not featurizer.log or featurizer.log_zero_guard_type != "add":
        problems.append("log features with an additive zero guard are required")
    if problems:
        raise ValueError("unsupported preprocessor for streaming: " + "; ".join(problems))


def export_frontend(model, path: Path) -> None:
    module = MelFrontend(model.preprocessor.featurizer).eval()
    n_fft = int(model.preprocessor.featurizer.n_fft)
    example = torch.randn(2, n_fft + 15 * module.hop)
    batch, samples = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("samples", min=n_fft)
    program = torch.onnx.export(
        module,
        (example,),
        dynamo=True,
        input_names=["audio"],
        output_names=["mel"],
        dynamic_shapes={"audio": {0: batch, 1: samples}},
        optimize=True,
        verbose=False,
    )
    program.save(str(path))


def stream_settings(model, chunk_ms: int | None = None) -> dict:
    """Chunking and cache sizes of the model's streaming configuration (for asr_stream.json)."""
    encoder = model.encoder
    encoder.setup_streaming_params()
    cfg = encoder.streaming_cfg
    featurizer = model.preprocessor.featurizer
    hop = int(featurizer.hop_length)
    sample_rate = int(model.preprocessor._sample_rate)
    chunk = cfg.chunk_size[1] if isinstance(cfg.chunk_size, list) else cfg.chunk_size
    pre_cache = cfg.pre_encode_cache_size
    pre_cache = pre_cache[1] if isinstance(pre_cache, list) else pre_cache
    factor = int(encoder.subsampling_factor)
    frame_ms = round(1000 * hop * factor / sample_rate)
    return {
        "sample_rate": sample_rate,
        "n_fft": int(featurizer.n_fft),
        "hop": hop,
        "n_mels": int(featurizer.nfilt),
        "preemph": float(featurizer.preemph or 0.0),
        "chunk_frames": int(chunk),
        "pre_cache_frames": int(pre_cache),
        "prefix_frames": int((-pre_cache) % factor),
        "subsampling": factor,
        "n_layers": len(encoder.layers),
        "d_model": int(encoder.d_model),
        "channel_cache": int(cfg.last_channel_cache_size),
        "time_cache": int(encoder.conv_context_size[0]),
        "frame_shift_ms": frame_ms,
        "chunk_ms": chunk_ms or round(1000 * chunk * hop / sample_rate),
    }


def export_encoder(model, path: Path) -> None:
    model.eval()
    model.encoder.setup_streaming_params()
    model.set_export_config({"cache_support": "True"})
    model.export(str(path), onnx_opset_version=17, check_trace=False, verbose=False)
    model.set_export_config({"cache_support": "False"})
    model.encoder.export_cache_support = False


def copy_runtime(version_dir: Path) -> None:
    version_dir.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_FILES:
        source, target = RUNTIME_DIR / name, version_dir / name
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)


def load_runtime():
    """The runtime module ``asr_stream`` from its one canonical copy in models/asr_streaming/1/."""
    name = "rivulet_asr_stream_runtime"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, RUNTIME_DIR / "asr_stream.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def export_model(
    model,
    version_dir: Path,
    vocabulary: list[str],
    blank_index: int,
    tokenizer: str,
    description: str,
    chunk_ms: int | None = None,
) -> dict:
    """Write frontend.onnx, encoder.onnx, asr_stream.json and the runtime into ``version_dir``."""
    check_preprocessor(model)
    from pipelines.asr.model_config import patch_fixed_normalization

    patch_fixed_normalization()
    version_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    settings = stream_settings(model, chunk_ms)
    export_frontend(model, version_dir / "frontend.onnx")
    export_encoder(model, version_dir / "encoder.onnx")
    settings.update(
        {
            "vocabulary": vocabulary,
            "blank_index": blank_index,
            "tokenizer": tokenizer,
            "description": description,
        }
    )
    (version_dir / "asr_stream.json").write_text(json.dumps(settings, indent=1, ensure_ascii=False))
    copy_runtime(version_dir)
    return settings


@torch.no_grad()
def nemo_logprobs(model, audio: np.ndarray) -> np.ndarray:
    """NeMo's whole-utterance log-probabilities [T, V] (eval mode, full chunked-limited attention)."""
    model.eval()
    signal = torch.from_numpy(audio.astype(np.float32))[None]
    logprobs, lengths, _ = model(input_signal=signal, input_signal_length=torch.tensor([signal.shape[1]]))
    return logprobs[0, : int(lengths[0])].numpy()


@torch.no_grad()
def nemo_stream_logprobs(model, audio: np.ndarray, settings: dict) -> np.ndarray:
    """NeMo's own cache-aware streaming (PyTorch) fed exactly the chunks the runtime feeds the ONNX graph."""
    model.eval()
    signal = torch.from_numpy(audio.astype(np.float32))[None]
    mel, mel_len = model.preprocessor(input_signal=signal, length=torch.tensor([signal.shape[1]]))
    mel = mel[:, :, : int(mel_len[0])]
    n_mels, chunk, pre = settings["n_mels"], settings["chunk_frames"], settings["pre_cache_frames"]
    mel = torch.cat([torch.zeros(1, n_mels, settings["prefix_frames"]), mel], dim=2)
    channel, time_cache, channel_len = model.encoder.get_initial_cache_state(batch_size=1)
    cache = torch.zeros(1, n_mels, pre)
    parts = []
    for start in range(0, mel.shape[2], chunk):
        piece = mel[:, :, start : start + chunk]
        valid = piece.shape[2]
        piece = torch.nn.functional.pad(piece, (0, chunk - valid))
        x = torch.cat([cache, piece], dim=2)
        cache = x[:, :, x.shape[2] - pre :]
        encoded, encoded_len, channel, time_cache, channel_len = model.encoder.cache_aware_stream_step(
            processed_signal=x,
            processed_signal_length=torch.tensor([pre + valid]),
            cache_last_channel=channel,
            cache_last_time=time_cache,
            cache_last_channel_len=channel_len,
            keep_all_outputs=False,
            drop_extra_pre_encoded=model.encoder.streaming_cfg.drop_extra_pre_encoded,
        )
        decoder = model.ctc_decoder if hasattr(model, "ctc_decoder") else model.decoder
        logprobs = decoder(encoder_output=encoded)
        parts.append(logprobs[0, : int(encoded_len[0])].numpy())
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def parity(model, version_dir: Path, clips: list[np.ndarray], chunk_samples: int = 2560) -> dict:
    """The exported graphs through the serving runtime against NeMo on the same audio.

    - ``max_abs_diff_onnx_vs_nemo_stream``: against NeMo's own cache-aware streaming step fed the
      same chunks: the export itself; must be at float precision.
    - ``argmax_agreement`` / ``max_abs_diff_stream_vs_nemo``: against NeMo's whole-utterance forward.
      The served graph runs the first chunk with a zero pre-encode cache ("padded" mode), which
      touches the first encoder frame and, through attention, a little of what follows.
    - ``max_abs_diff_stream_vs_offline``: 160 ms requests against one whole-file request.
    """
    runtime = load_runtime().StreamingRecognizer(str(version_dir), intra_op_num_threads=1)
    settings = json.loads((version_dir / "asr_stream.json").read_text())
    worst_stream = worst_offline = worst_export = 0.0
    agree = total = 0
    frame_counts = []
    for audio in clips:
        reference = nemo_logprobs(model, audio)
        nemo_stream = nemo_stream_logprobs(model, audio, settings)
        streamed = runtime.transcribe_logprobs(audio, chunk_samples)
        offline = runtime.transcribe_logprobs(audio)
        frame_counts.append((reference.shape[0], nemo_stream.shape[0], streamed.shape[0], offline.shape[0]))
        n = min(reference.shape[0], streamed.shape[0])
        if n > 1:
            worst_stream = max(worst_stream, float(np.abs(reference[1:n] - streamed[1:n]).max()))
            agree += int((reference[:n].argmax(-1) == streamed[:n].argmax(-1)).sum())
            total += n
        if nemo_stream.shape == streamed.shape and streamed.size:
            worst_export = max(worst_export, float(np.abs(nemo_stream - streamed).max()))
        if offline.shape == streamed.shape and offline.size:
            worst_offline = max(worst_offline, float(np.abs(offline - streamed).max()))
    return {
        "clips": len(clips),
        "max_abs_diff_onnx_vs_nemo_stream": worst_export,
        "max_abs_diff_stream_vs_nemo": worst_stream,
        "max_abs_diff_stream_vs_offline": worst_offline,
        "argmax_agreement": agree / max(total, 1),
        "frame_counts_nemo_nemostream_stream_offline": frame_counts[:5],
        "frame_counts_match": all(len(set(counts)) == 1 for counts in frame_counts),
    }
