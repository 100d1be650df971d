"""The exported tiny FastPitch + HiFi-GAN: serving-time tokenizer parity with NeMo, chunked vocoding,
the Triton model directory the export writes."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.tts.cache import TINY_NAME, tiny_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory, model_cache_dir) -> Path:
    return tiny_model(tmp_path_factory.mktemp("tts-repo"), model_cache_dir)


@pytest.fixture(scope="module")
def runtime(exported):
    spec = importlib.util.spec_from_file_location("tts_tiny_runtime", exported / "1" / "runtime.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.FastPitchHifiGan(exported / "1")


def test_export_writes_a_decoupled_triton_model(exported):
    config = (exported / "config.pbtxt").read_text()
    assert f'name: "{TINY_NAME}"' in config and "decoupled: true" in config
    for key in ("rivulet_task", "language_code", "voice_name", "subvoices", "voices"):
        assert f'key: "{key}"' in config
    files = {p.name for p in (exported / "1").iterdir()}
    assert {"model.py", "runtime.py", "fastpitch.onnx", "hifigan.onnx", "tts_meta.json"} <= files
    meta = json.loads((exported / "1" / "tts_meta.json").read_text())
    assert meta["sample_rate"] == 22050 and meta["hop_length"] == 256 and meta["tokenizer"]["type"] == "chars"


@pytest.mark.parametrize(
    "text",
    ["Hello, world!", "Don't stop  believing.", "Café au lait? (yes)", "  spaces   around  ", "x-ray 3 D"],
)
def test_serving_tokenizer_matches_nemo(runtime, text):
    from nemo.collections.common.tokenizers.text_to_speech.tts_tokenizers import EnglishCharsTokenizer

    nemo = EnglishCharsTokenizer(punct=True, apostrophe=True, pad_with_space=True)
    assert runtime.tokenizer.tokens == list(nemo.tokens)
    assert runtime.tokenizer.encode(text) == nemo.encode(text)


def test_chunked_vocoding_equals_whole_vocoding(runtime):
    spect = runtime.spectrogram("please set an alarm for seven thirty tomorrow morning")
    assert spect.shape[0] == 80 and spect.shape[1] > 3 * runtime.chunk_frames
    whole = runtime.vocode(spect)
    chunks = list(runtime.vocode_chunks(spect))
    assert chunks[0].size == runtime.first_chunk_frames * runtime.hop
    assert len(chunks) >= 4
    joined = np.concatenate(chunks)
    assert joined.size == whole.size == spect.shape[1] * runtime.hop
    assert np.abs(joined - whole).max() < 1e-4


def test_pace_and_pitch_change_the_spectrogram(runtime):
    normal = runtime.spectrogram("one two three")
    assert runtime.spectrogram("one two three", rate=2.0).shape[1] < normal.shape[1]
    assert not np.allclose(runtime.spectrogram("one two three", pitch=1.5), normal)
