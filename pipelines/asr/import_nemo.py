"""Import a NeMo ``.nemo`` streaming CTC checkpoint into the same Triton layout as the trained default.

Targets the public cache-aware streaming families: FastConformer / Conformer CTC with a
SentencePiece BPE tokenizer (``EncDecCTCModelBPE``, 8× ``dw_striding`` subsampling, 80 ms frames),
and the CTC branch of hybrid RNNT-CTC models. Character models (``EncDecCTCModel``) import too.
The encoder must be a cache-aware streaming one (``chunked_limited`` attention, causal
convolutions), the preprocessor streamable (``normalize: NA``). For multi-lookahead models pick the
attention context with ``att_context_size`` (default: the model's first).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from pipelines.asr.build import install, write_model


def _vocabulary(model) -> tuple[list[str], int, str]:
    """LOGPROBS column labels, the blank index, and the tokenizer kind ("bpe" or "char")."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None:
        pieces = [tokenizer.ids_to_tokens([i])[0] for i in range(tokenizer.vocab_size)]
        return [*pieces, "<blank>"], len(pieces), "bpe"
    labels = list(model.decoder.vocabulary)
    return [*labels, "<blank>"], len(labels), "char"


def _check_streaming(model) -> None:
    encoder = model.encoder
    problems = []
    if not hasattr(encoder, "setup_streaming_params"):
        problems.append(f"{type(encoder).__name__} is not a cache-aware streaming encoder")
    elif getattr(encoder, "att_context_style", "") not in ("chunked_limited",):
        problems.append(f"att_context_style={encoder.att_context_style!r} (chunked_limited is needed)")
    elif getattr(encoder, "conv_context_size", None) is not None and encoder.conv_context_size[1] != 0:
        problems.append(f"conv_context_size={encoder.conv_context_size} (causal convolutions are needed)")
    if problems:
        raise ValueError("not a cache-aware streaming model: " + "; ".join(problems))


def load_nemo(checkpoint: Path):
    """Restore any ASR ``.nemo`` (the class is read from its config) on the CPU, in eval mode."""
    import torch
    from nemo.core.classes.modelPT import ModelPT

    if not checkpoint.is_file():
        raise FileNotFoundError(f"no such .nemo file: {checkpoint}")
    torch.set_num_threads(2)
    model = ModelPT.restore_from(str(checkpoint), map_location="cpu")
    if hasattr(model, "ctc_decoder") and hasattr(model, "change_decoding_strategy"):  # hybrid RNNT-CTC
        model.change_decoding_strategy(decoder_type="ctc", verbose=False)
        model.set_export_config({"decoder_type": "ctc"})
    return model.eval()


def _test_clips(sample_rate: int) -> list[np.ndarray]:
    """Short speech-like and silent clips for the parity check (no data set needed)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(2.3 * sample_rate)) / sample_rate
    voiced = (0.3 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return [
        voiced + 0.01 * rng.standard_normal(t.size).astype(np.float32),
        (0.1 * rng.standard_normal(int(1.37 * sample_rate))).astype(np.float32),
        np.zeros(int(0.5 * sample_rate), np.float32),
    ]


def import_nemo(
    checkpoint: Path,
    repository: Path,
    model_name: str = "asr_streaming",
    att_context_size: list | None = None,
) -> Path:
    """Export ``checkpoint`` into ``repository/model_name`` (config.pbtxt + 1/); returns that directory."""
    model = load_nemo(checkpoint)
    _check_streaming(model)
    if att_context_size is not None:
        model.encoder.set_default_att_context_size(list(att_context_size))
    vocabulary, blank, tokenizer = _vocabulary(model)
    kind = type(model).__name__
    encoder = model.encoder
    architecture = (
        f"{kind}: {type(encoder).__name__} {len(encoder.layers)} layers d_model {encoder.d_model}, "
        f"{encoder.subsampling_factor}x subsampling, attention context {list(encoder.att_context_size)}"
    )
    description = (
        f"Imported from {checkpoint.name} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params)"
    )
    staging = repository / f".{model_name}.importing"
    shutil.rmtree(staging, ignore_errors=True)
    sample_rate = int(model.preprocessor._sample_rate)
    info = write_model(
        model,
        staging / model_name,
        description,
        vocabulary,
        blank,
        tokenizer,
        architecture,
        _test_clips(sample_rate),
        {"source": str(checkpoint), "class": kind},
        min_agreement=0.5,  # the export itself is held to NeMo's streaming step; see export.parity
    )
    target = repository / model_name
    shutil.rmtree(target, ignore_errors=True)
    install(staging / model_name, repository, model_name)
    shutil.rmtree(staging, ignore_errors=True)
    print(json.dumps({"model": str(target), "parity": info["parity"]}, indent=1))
    return target
