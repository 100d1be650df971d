"""Model configs for FastPitch + HiFi-GAN built from scratch (NeMo ships no YAML in its wheel).

``tiny_*`` are small randomly-initialised models of the real classes for tests: the same export,
ONNX graphs, Triton model and streaming code paths as a pretrained pair, in seconds on a CPU.
Shapes follow NeMo's LJSpeech recipes (22.05 kHz, 80 mels, hop 256) so a real checkpoint and a
tiny one produce the same tensors.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

SAMPLE_RATE = 22050
N_MELS = 80
HOP = 256
N_FFT = 1024
CHARS_TOKENIZER = "nemo.collections.common.tokenizers.text_to_speech.tts_tokenizers.EnglishCharsTokenizer"
TEMPORAL_PREDICTOR = "nemo.collections.tts.modules.fastpitch.TemporalPredictor"
FFT_ENCODER = "nemo.collections.tts.modules.transformer.FFTransformerEncoder"
FFT_DECODER = "nemo.collections.tts.modules.transformer.FFTransformerDecoder"


def _preprocessor() -> dict:
    return {
        "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
        "features": N_MELS,
        "lowfreq": 0,
        "highfreq": 8000,
        "n_fft": N_FFT,
        "n_window_size": N_FFT,
        "window_size": False,
        "n_window_stride": HOP,
        "window_stride": False,
        "pad_to": 1,
        "pad_value": 0,
        "sample_rate": SAMPLE_RATE,
        "window": "hann",
        "normalize": None,
        "preemph": None,
        "dither": 0.0,
        "frame_splicing": 1,
        "log": True,
        "log_zero_guard_type": "add",
        "log_zero_guard_value": 1e-05,
        "mag_power": 1.0,
    }


def _dataset(target: str) -> dict:
    # Only the class name is read (FastPitch checks it); no data is loaded for a built model.
    return {"dataset": {"_target_": target}, "dataloader_params": {"batch_size": 1}, "defer_setup": True}


def tiny_fastpitch(d_model: int = 64, layers: int = 2) -> DictConfig:
    """A small FastPitch with the character tokenizer (no G2P files needed) and a learned aligner."""
    fft = {
        "n_layer": layers,
        "n_head": 1,
        "d_model": d_model,
        "d_head": 32,
        "d_inner": 4 * d_model,
        "kernel_size": 3,
        "dropout": 0.1,
        "dropatt": 0.1,
        "dropemb": 0.0,
    }
    predictor = {
        "_target_": TEMPORAL_PREDICTOR,
        "input_size": d_model,
        "kernel_size": 3,
        "filter_size": d_model,
        "dropout": 0.1,
        "n_layers": 2,
    }
    return OmegaConf.create(
        {
            "learn_alignment": True,
            "n_speakers": 1,
            "max_token_duration": 75,
            "symbols_embedding_dim": d_model,
            "pitch_embedding_kernel_size": 3,
            "pitch_fmin": 65.4,
            "pitch_fmax": 2093.0,
            "pitch_mean": 212.35,
            "pitch_std": 68.52,
            "sample_rate": SAMPLE_RATE,
            "n_mel_channels": N_MELS,
            "n_window_size": N_FFT,
            "n_window_stride": HOP,
            "n_fft": N_FFT,
            "lowfreq": 0,
            "highfreq": 8000,
            "window": "hann",
            "text_tokenizer": {
                "_target_": CHARS_TOKENIZER,
                "punct": True,
                "apostrophe": True,
                "pad_with_space": True,
            },
            "train_ds": _dataset("nemo.collections.tts.data.dataset.TTSDataset"),
            "preprocessor": _preprocessor(),
            "input_fft": {
                "_target_": FFT_ENCODER,
                "d_embed": d_model,
                **fft,
            },
            "output_fft": {
                "_target_": FFT_DECODER,
                **fft,
            },
            "alignment_module": {
                "_target_": "nemo.collections.tts.modules.aligner.AlignmentEncoder",
                "n_text_channels": d_model,
            },
            "duration_predictor": predictor,
            "pitch_predictor": predictor,
            "optim": {"name": "adamw", "lr": 1e-3},
        }
    )


def tiny_hifigan(channels: int = 32) -> DictConfig:
    """A small HiFi-GAN generator (upsampling 8·8·2·2 = 256 = the mel hop)."""
    return OmegaConf.create(
        {
            "preprocessor": {
                "_target_": "nemo.collections.asr.parts.preprocessing.features.FilterbankFeatures",
                "nfilt": N_MELS,
                "lowfreq": 0,
                "highfreq": 8000,
                "n_fft": N_FFT,
                "n_window_size": N_FFT,
                "n_window_stride": HOP,
                "pad_to": 0,
                "pad_value": -11.52,
                "sample_rate": SAMPLE_RATE,
                "window": "hann",
                "normalize": None,
                "preemph": None,
                "dither": 0.0,
                "frame_splicing": 1,
                "log": True,
                "log_zero_guard_type": "clamp",
                "log_zero_guard_value": 1e-05,
                "mag_power": 1.0,
                "use_grads": False,
                "exact_pad": True,
            },
            "generator": {
                "_target_": "nemo.collections.tts.modules.hifigan_modules.Generator",
                "resblock": 1,
                "upsample_rates": [8, 8, 2, 2],
                "upsample_kernel_sizes": [16, 16, 4, 4],
                "upsample_initial_channel": channels * 4,
                "resblock_kernel_sizes": [3, 7],
                "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]],
            },
            "train_ds": _dataset("nemo.collections.tts.data.dataset.VocoderDataset"),
            "optim": {"_target_": "torch.optim.AdamW", "lr": 2e-4},
            "max_steps": 1,
            "l1_loss_factor": 45,
            "denoise_strength": 0.0025,
        }
    )
