"""The hand-written NeMo config of the small cache-aware streaming Conformer-CTC (the wheel ships no YAML).

Character vocabulary (``text.VOCABULARY``) with 4× subsampling: 8× leaves too few frames for CTC
on short words (FACTS.md). Causal convolutions (causal subsampling and ``conv_context_size:
causal``) and ``chunked_limited`` attention with 3 frames of right context: each 4-frame chunk
(160 ms of 10 ms mel frames subsampled 4×) sees itself and the past only, so a 160 ms chunk works.
Features are normalized with constant per-band mean and deviation measured on the training audio
(per-utterance statistics do not exist in streaming; unnormalized log-mels kept a first run on the
CTC blank plateau).
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from pipelines.asr.text import VOCABULARY


@dataclass(frozen=True)
class ModelSize:
    d_model: int
    n_layers: int
    n_heads: int
    ff_expansion: int
    conv_kernel: int
    subsampling_channels: int
    left_context: int  # encoder frames (40 ms each) of attention history


SIZES = {
    "full": ModelSize(
        d_model=96,
        n_layers=6,
        n_heads=4,
        ff_expansion=3,
        conv_kernel=9,
        subsampling_channels=32,
        left_context=64,
    ),
    "quick": ModelSize(
        d_model=48,
        n_layers=2,
        n_heads=2,
        ff_expansion=2,
        conv_kernel=5,
        subsampling_channels=16,
        left_context=16,
    ),
}

CHUNK_FRAMES = 4  # encoder frames per 160 ms chunk: right context = CHUNK_FRAMES - 1
N_MELS = 80


def preprocessor_config(sample_rate: int = 16000, feature_stats: dict | None = None) -> dict:
    """NeMo's mel front-end; ``feature_stats`` ({"fixed_mean": [...], "fixed_std": [...]}, one value per
    mel band, measured on the training audio) normalizes with constants, which streams."""
    return {
        "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
        "sample_rate": sample_rate,
        "normalize": feature_stats or "NA",
        "window_size": 0.025,
        "window_stride": 0.01,
        "window": "hann",
        "features": N_MELS,
        "n_fft": 512,
        "log": True,
        "frame_splicing": 1,
        "dither": 0.0,  # the streaming front-end adds none: train on what is served
        "pad_to": 0,
        "pad_value": 0.0,
    }


def model_config(
    size: ModelSize,
    train_manifest: str,
    dev_manifest: str,
    batch_size: int,
    lr: float,
    warmup_steps: int,
    max_steps: int,
    feature_stats: dict | None = None,
) -> DictConfig:
    """The full EncDecCTCModel config."""
    labels = list(VOCABULARY)
    dataset = {
        "labels": labels,
        "sample_rate": 16000,
        "trim_silence": False,
        "num_workers": 1,
        "pin_memory": False,
        "max_duration": 12.0,
        "min_duration": 0.1,
    }
    cfg = {
        "sample_rate": 16000,
        "labels": labels,
        "train_ds": {
            **dataset,
            "manifest_filepath": train_manifest,
            "batch_size": batch_size,
            "shuffle": True,
        },
        "validation_ds": {**dataset, "manifest_filepath": dev_manifest, "batch_size": 32, "shuffle": False},
        "preprocessor": preprocessor_config(feature_stats=feature_stats),
        "spec_augment": {
            "_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
            "freq_masks": 2,
            "time_masks": 2,
            "freq_width": 15,
            "time_width": 0.05,
        },
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConformerEncoder",
            "feat_in": N_MELS,
            "feat_out": -1,
            "n_layers": size.n_layers,
            "d_model": size.d_model,
            "subsampling": "striding",
            "subsampling_factor": 4,
            "subsampling_conv_channels": size.subsampling_channels,
            "causal_downsampling": True,
            "ff_expansion_factor": size.ff_expansion,
            "self_attention_model": "rel_pos",
            "n_heads": size.n_heads,
            "att_context_size": [size.left_context, CHUNK_FRAMES - 1],
            "att_context_style": "chunked_limited",
            "xscaling": True,
            "untie_biases": True,
            "pos_emb_max_len": 512,  # grows on demand (NeMo extends it); keeps the ONNX small
            "conv_kernel_size": size.conv_kernel,
            "conv_norm_type": "layer_norm",
            "conv_context_size": "causal",
            "dropout": 0.1,
            "dropout_pre_encoder": 0.1,
            "dropout_emb": 0.0,
            "dropout_att": 0.1,
        },
        "decoder": {
            "_target_": "nemo.collections.asr.modules.ConvASRDecoder",
            "feat_in": size.d_model,
            "num_classes": len(labels),
            "vocabulary": labels,
        },
        "optim": {
            "name": "adamw",
            "lr": lr,
            "betas": [0.9, 0.98],
            "weight_decay": 1e-3,
            "sched": {
                "name": "CosineAnnealing",
                "warmup_steps": warmup_steps,
                "min_lr": lr / 50,
                "max_steps": max_steps,
            },
        },
    }
    return OmegaConf.create(cfg)


def patch_fixed_normalization() -> None:
    """NeMo 3.0's constant normalization reshapes the mean to [batch, features], so it only works
    for batch 1; this replaces it (for the training process) with the broadcast it means."""
    import torch
    from nemo.collections.asr.parts.preprocessing import features

    original = features.normalize_batch
    if getattr(original, "rivulet_fixed", False):
        return

    def normalize_batch(x, seq_len, normalize_type):
        if isinstance(normalize_type, dict | DictConfig) and "fixed_mean" in normalize_type:
            mean = torch.as_tensor(list(normalize_type["fixed_mean"]), device=x.device, dtype=x.dtype)
            std = torch.as_tensor(list(normalize_type["fixed_std"]), device=x.device, dtype=x.dtype)
            return (x - mean[None, :, None]) / std[None, :, None], mean, std
        return original(x, seq_len, normalize_type)

    normalize_batch.rivulet_fixed = True
    features.normalize_batch = normalize_batch


def measure_feature_stats(paths: list[str]) -> dict:
    """Per-band mean and deviation of the (unnormalized) log-mels of ``paths``."""
    import numpy as np
    import soundfile
    import torch
    from hydra.utils import instantiate

    preprocessor = instantiate(OmegaConf.create(preprocessor_config())).eval()
    total, total_sq, count = np.zeros(N_MELS), np.zeros(N_MELS), 0
    for path in paths:
        audio, _ = soundfile.read(path, dtype="float32")
        with torch.no_grad():
            mel, length = preprocessor(
                input_signal=torch.from_numpy(audio)[None], length=torch.tensor([audio.size])
            )
        frames = mel[0, :, : int(length[0])].double().numpy()
        total += frames.sum(1)
        total_sq += (frames**2).sum(1)
        count += frames.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-6))
    return {"fixed_mean": [round(float(v), 5) for v in mean], "fixed_std": [round(float(v), 5) for v in std]}
