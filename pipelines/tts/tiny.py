"""Small randomly-initialised FastPitch + HiFi-GAN of NeMo's real classes, saved as .nemo files.

For tests and CI: they exercise the same export, ONNX graphs, Triton model and streaming as a
pretrained pair (none can be downloaded here), in seconds. They speak noise, not words. The
duration predictor's output layer is set to predict 4 frames per token, so a sentence yields a
speech-length spectrogram (a random predictor gives about zero frames) and chunked vocoding has
several chunks to stream.
"""

from __future__ import annotations

import math
from pathlib import Path

FRAMES_PER_TOKEN = 4


def make_tiny(out_dir: Path, seed: int = 0) -> tuple[Path, Path]:
    import torch
    from nemo.collections.tts.models import FastPitchModel, HifiGanModel

    from pipelines.tts.configs import tiny_fastpitch, tiny_hifigan

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fastpitch = FastPitchModel(cfg=tiny_fastpitch())
    with torch.no_grad():
        fc = fastpitch.fastpitch.duration_predictor.fc
        fc.weight.zero_()
        fc.bias.fill_(math.log(FRAMES_PER_TOKEN + 1))  # durations = exp(log_dur) - 1
    hifigan = HifiGanModel(cfg=tiny_hifigan())
    fp_path, hg_path = out_dir / "fastpitch_tiny.nemo", out_dir / "hifigan_tiny.nemo"
    fastpitch.save_to(str(fp_path))
    hifigan.save_to(str(hg_path))
    return fp_path, hg_path
