"""Small NeMo checkpoints of the public streaming CTC families, made locally (no model hub here).

``make_bpe_checkpoint`` trains a SentencePiece BPE tokenizer on some text and saves an untrained
``EncDecCTCModelBPE`` with a FastConformer-style cache-aware streaming encoder (8× ``dw_striding``
causal subsampling, ``chunked_limited`` attention, causal convolutions) as a ``.nemo`` — the
same classes and config keys as NVIDIA's streaming FastConformer CTC checkpoints, at a tiny size.
Used to test ``import-nemo``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import OmegaConf

from pipelines.asr.model_config import preprocessor_config


def train_sentencepiece(lines: list[str], out_dir: Path, vocab_size: int = 64) -> Path:
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = out_dir / "text.txt"
    corpus.write_text("\n".join(lines) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(out_dir / "tokenizer"),
        vocab_size=vocab_size,
        model_type="bpe",
        character_coverage=1.0,
        bos_id=-1,
        eos_id=-1,
        minloglevel=2,
    )
    vocab = [line.split("\t")[0] for line in (out_dir / "tokenizer.vocab").read_text().splitlines()]
    (out_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return out_dir


def fastconformer_config(
    tokenizer_dir: Path,
    d_model: int = 32,
    n_layers: int = 2,
    left: int = 14,
    right: int = 1,
    multi_lookahead: bool = False,
) -> dict:
    context = [[left, right], [left, 0]] if multi_lookahead else [left, right]
    return {
        "sample_rate": 16000,
        "tokenizer": {"dir": str(tokenizer_dir), "type": "bpe"},
        "preprocessor": {**preprocessor_config(), "dither": 1e-5},
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConformerEncoder",
            "feat_in": 80,
            "feat_out": -1,
            "n_layers": n_layers,
            "d_model": d_model,
            "subsampling": "dw_striding",
            "subsampling_factor": 8,
            "subsampling_conv_channels": 16,
            "causal_downsampling": True,
            "ff_expansion_factor": 2,
            "self_attention_model": "rel_pos",
            "n_heads": 2,
            "att_context_size": context,
            "att_context_style": "chunked_limited",
            "xscaling": True,
            "untie_biases": True,
            "pos_emb_max_len": 256,
            "conv_kernel_size": 9,
            "conv_norm_type": "layer_norm",
            "conv_context_size": "causal",
            "dropout": 0.0,
            "dropout_pre_encoder": 0.0,
            "dropout_emb": 0.0,
            "dropout_att": 0.0,
        },
        "decoder": {
            "_target_": "nemo.collections.asr.modules.ConvASRDecoder",
            "feat_in": d_model,
            "num_classes": -1,
            "vocabulary": [],
        },
        "optim": {"name": "adamw", "lr": 1e-3},
    }


def make_bpe_checkpoint(lines: list[str], out_dir: Path, multi_lookahead: bool = False) -> Path:
    """Train the tokenizer, build the model from config, save ``out_dir/tiny_fastconformer_ctc_bpe.nemo``."""
    import torch
    from nemo.collections.asr.models import EncDecCTCModelBPE
    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(logging.ERROR)
    torch.manual_seed(0)
    tokenizer_dir = train_sentencepiece(lines, out_dir / "tokenizer")
    cfg = OmegaConf.create(fastconformer_config(tokenizer_dir, multi_lookahead=multi_lookahead))
    model = EncDecCTCModelBPE(cfg=cfg)
    path = out_dir / "tiny_fastconformer_ctc_bpe.nemo"
    model.save_to(str(path))
    return path


def make_char_model(size: str = "quick"):
    """An untrained character model of the pipeline's own config (no data sets attached)."""
    import torch
    from nemo.collections.asr.models import EncDecCTCModel
    from nemo.utils import logging as nemo_logging

    from pipelines.asr.model_config import SIZES, model_config

    nemo_logging.setLevel(logging.ERROR)
    torch.manual_seed(0)
    cfg = model_config(SIZES[size], "unused", "unused", 4, 1e-3, 10, 100)
    del cfg.train_ds, cfg.validation_ds
    return EncDecCTCModel(cfg=cfg).eval()
