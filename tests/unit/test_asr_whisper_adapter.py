"""The Whisper decoder adapter: CTranslate2's model file read and written byte for byte, the torch
decoder equal to CTranslate2's on the pinned weights, and the adapter applied as W + B·A."""

from __future__ import annotations

import hashlib

import ctranslate2
import numpy as np
import pytest
import torch

from pipelines.asr.whisper_decoder import WhisperDecoder
from rivulet.asr import ct2_model_file, whisper_weights


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_ctranslate2_model_file_is_written_back_byte_for_byte(tmp_path):
    source = whisper_weights.prepare("tiny.en") / "model.bin"
    model = ct2_model_file.read(source)
    assert model.spec == "WhisperSpec"
    assert model.get("decoder/projection/weight") is model.variables["decoder/embeddings/weight"]
    ct2_model_file.write(model, tmp_path / "model.bin")
    assert _sha(tmp_path / "model.bin") == _sha(source)


def test_an_adapter_adds_its_low_rank_update_and_nothing_else(tmp_path):
    base = whisper_weights.prepare("tiny.en")
    name = "decoder/layer_0/ffn/linear_1/weight"
    rng = np.random.default_rng(0)
    weight = ct2_model_file.read(base / "model.bin").variables[name]
    a = rng.normal(0, 0.1, (4, weight.shape[1])).astype(np.float32)
    b = rng.normal(0, 0.1, (weight.shape[0], 4)).astype(np.float32)
    np.savez(tmp_path / "adapter.npz", **{f"{name}|a": a, f"{name}|b": b})
    target = whisper_weights.prepare_adapted(tmp_path / "adapter.npz", tmp_path / "adapted")
    before = ct2_model_file.read(base / "model.bin")
    after = ct2_model_file.read(target / "model.bin")
    want = (weight.astype(np.float64) + b.astype(np.float64) @ a.astype(np.float64)).astype(np.float16)
    np.testing.assert_array_equal(after.variables[name], want)
    changed = [k for k in before.variables if not np.array_equal(before.variables[k], after.variables[k])]
    assert changed == [name]
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in base.iterdir())
    # the same bytes again: the pinned sha256 of an adapted model holds on every machine
    again = whisper_weights.prepare_adapted(tmp_path / "adapter.npz", tmp_path / "again")
    assert _sha(again / "model.bin") == _sha(target / "model.bin")


def test_an_adapter_for_weights_the_model_lacks_is_refused(tmp_path):
    np.savez(tmp_path / "adapter.npz", **{"decoder/layer_9/ffn/linear_1/weight|a": np.zeros((1, 1))})
    with pytest.raises(whisper_weights.WhisperWeightsError, match="does not have"):
        whisper_weights.prepare_adapted(tmp_path / "adapter.npz", tmp_path / "adapted")


def test_the_torch_decoder_gives_ctranslate2s_logits():
    """Trained in torch, served by CTranslate2: both must compute the same decoder (float32)."""
    directory = whisper_weights.prepare("tiny.en")
    model = ctranslate2.models.Whisper(str(directory), compute_type="float32")
    features = np.random.default_rng(1).normal(-0.5, 0.3, (1, 80, 3000)).astype(np.float32)
    view = ctranslate2.StorageView.from_array(features)
    encoded = np.array(model.encode(view, to_cpu=True))
    prompt = [50257, 50362]  # tiny.en: start of transcript, no timestamps
    [result] = model.generate(view, [prompt], beam_size=1, return_logits_vocab=True, max_length=8)
    decoder = WhisperDecoder(ct2_model_file.read(directory / "model.bin"))
    tokens = torch.tensor([prompt + list(result.sequences_ids[0])])
    with torch.no_grad():
        logits = decoder(tokens, torch.from_numpy(encoded))[0].numpy()
    for k, step in enumerate(result.logits[0]):
        served = np.asarray(step).astype(np.float32)
        allowed = served > -1e30  # CTranslate2 suppresses some tokens
        np.testing.assert_allclose(logits[len(prompt) - 1 + k][allowed], served[allowed], atol=1e-3)


def test_the_adapted_model_is_built_once_checked_and_repaired(tmp_path, monkeypatch):
    """`tiny.en-rivulet` = pinned tiny.en + the committed adapter, built into the cache with the
    pinned sha256 (the same bytes on every machine); a corrupt build is rebuilt, a changed adapter
    is refused with the command that restores it."""
    monkeypatch.setenv("RIVULET_CACHE_DIR", str(tmp_path))
    directory = whisper_weights.prepare("tiny.en-rivulet")
    assert directory == tmp_path / "whisper" / "tiny.en-rivulet"
    assert whisper_weights.check("tiny.en-rivulet") == directory  # every pinned sha256 holds
    with open(directory / "model.bin", "r+b") as f:  # one flipped byte
        f.seek(5000)
        byte = f.read(1)
        f.seek(5000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(whisper_weights.WhisperWeightsError, match=r"does not match its pinned sha256"):
        whisper_weights.check("tiny.en-rivulet")
    assert whisper_weights.prepare("tiny.en-rivulet") == directory  # rebuilt
    whisper_weights.check("tiny.en-rivulet")
    (directory / "model.bin").unlink()
    changed = tmp_path / "adapter.npz"
    changed.write_bytes(b"not the committed adapter")
    monkeypatch.setitem(whisper_weights.SPEC["tiny.en-rivulet"], "adapter", str(changed))
    with pytest.raises(whisper_weights.WhisperWeightsError, match=r"adapter .* is missing or changed.*git"):
        whisper_weights.prepare("tiny.en-rivulet")
