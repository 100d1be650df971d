"""`python -m pipelines.asr import-nemo` on small checkpoints of the public streaming CTC classes made
here (SentencePiece BPE tokenizer, FastConformer-style 8x dw_striding causal encoder, EncDecCTCModelBPE):
the same Triton layout (tokenizer "bpe", 80 ms frames), ONNX equal to NeMo's streaming step, BPE
pieces as the vocabulary, multi-lookahead context selection, and non-streaming models refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.asr.export import load_runtime, nemo_stream_logprobs
from pipelines.asr.import_nemo import import_nemo, load_nemo
from pipelines.asr.paths import REPO_ROOT
from pipelines.asr.texts import assistant_commands
from pipelines.asr.tiny_nemo import make_bpe_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_bpe_checkpoint(assistant_commands("train")[:2000], tmp_path_factory.mktemp("tiny-bpe"))


@pytest.fixture(scope="module")
def imported(checkpoint, tmp_path_factory) -> Path:
    """Through the CLI, as a user would run it."""
    repository = tmp_path_factory.mktemp("repo")
    env = dict(os.environ, PYTHONPATH=f"{REPO_ROOT / 'services'}{os.pathsep}{REPO_ROOT}")
    command = [sys.executable, "-m", "pipelines.asr", "import-nemo", "--checkpoint", str(checkpoint)]
    command += ["--repository", str(repository), "--model-name", "asr_fastconformer"]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return repository / "asr_fastconformer"


def test_layout_and_parameters(imported, checkpoint):
    version = imported / "1"
    for name in (
        "frontend.onnx",
        "encoder.onnx",
        "asr_stream.json",
        "model.py",
        "asr_stream.py",
        "build.json",
    ):
        assert (version / name).is_file(), name
    config = (imported / "config.pbtxt").read_text()
    assert 'name: "asr_fastconformer"' in config
    assert '"tokenizer" value: { string_value: "bpe" }' in config
    assert '"frame_shift_ms" value: { string_value: "80" }' in config
    assert '"rivulet_task" value: { string_value: "asr_streaming" }' in config
    settings = json.loads((version / "asr_stream.json").read_text())
    model = load_nemo(checkpoint)
    pieces = [model.tokenizer.ids_to_tokens([i])[0] for i in range(model.tokenizer.vocab_size)]
    assert settings["vocabulary"] == [*pieces, "<blank>"] and settings["blank_index"] == len(pieces)
    assert any(p.startswith("▁") for p in pieces)
    assert settings["subsampling"] == 8 and settings["prefix_frames"] == (-settings["pre_cache_frames"]) % 8
    build = json.loads((version / "build.json").read_text())
    assert build["class"] == "EncDecCTCModelBPE"
    assert (
        build["parity"]["max_abs_diff_onnx_vs_nemo_stream"] < 1e-3 and build["parity"]["frame_counts_match"]
    )


def test_runtime_matches_nemo_streaming(imported, checkpoint):
    model = load_nemo(checkpoint)
    settings = json.loads((imported / "1" / "asr_stream.json").read_text())
    runtime = load_runtime().StreamingRecognizer(str(imported / "1"))
    rng = np.random.default_rng(3)
    audio = (0.1 * rng.standard_normal(int(2.7 * 16000))).astype(np.float32)
    streamed = runtime.transcribe_logprobs(audio, 2560)
    np.testing.assert_allclose(streamed, nemo_stream_logprobs(model, audio, settings), atol=1e-3)
    np.testing.assert_allclose(runtime.transcribe_logprobs(audio), streamed, atol=1e-4)
    text = load_runtime().greedy_ctc(streamed, settings["vocabulary"], settings["blank_index"], "bpe")
    assert isinstance(text, str) and "▁" not in text


def test_multi_lookahead_context_is_selectable(tmp_path):
    checkpoint = make_bpe_checkpoint(
        assistant_commands("train")[:2000], tmp_path / "multi", multi_lookahead=True
    )
    model_dir = import_nemo(checkpoint, tmp_path / "repo", "asr_ml", att_context_size=[14, 0])
    settings = json.loads((model_dir / "1" / "asr_stream.json").read_text())
    assert settings["chunk_frames"] == 8 and settings["chunk_ms"] == 80  # right context 0: one 80 ms frame
    assert "attention context [14, 0]" in (model_dir / "config.pbtxt").read_text()


def test_non_streaming_models_are_refused(tmp_path, checkpoint):
    from nemo.collections.asr.models import EncDecCTCModelBPE
    from omegaconf import OmegaConf

    from pipelines.asr.tiny_nemo import fastconformer_config

    cfg = fastconformer_config(checkpoint.parent / "tokenizer")
    cfg["encoder"].update(
        {"att_context_style": "regular", "att_context_size": [-1, -1], "conv_context_size": None}
    )
    path = tmp_path / "offline.nemo"
    EncDecCTCModelBPE(cfg=OmegaConf.create(cfg)).save_to(str(path))
    with pytest.raises(ValueError, match="not a cache-aware streaming model"):
        import_nemo(path, tmp_path / "repo")
    with pytest.raises(FileNotFoundError):
        import_nemo(tmp_path / "missing.nemo", tmp_path / "repo")
