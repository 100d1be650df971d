"""ONNX export of the streaming model (pipelines.asr.export) and the serving runtime (asr_stream.py),
on a tiny untrained model of the pipeline's own config: the graphs equal NeMo's streaming step,
160 ms streaming equals any other chunking and one whole-file request, frame counts equal NeMo's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pipelines.asr import export, triton_config
from pipelines.asr.build import write_model
from pipelines.asr.text import VOCABULARY
from pipelines.asr.tiny_nemo import make_char_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    return make_char_model("quick")


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(int(1.93 * 16000)) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 2 * t))).astype(np.float32)
    return [tone, (0.05 * rng.standard_normal(7001)).astype(np.float32), np.zeros(100, np.float32)]


@pytest.fixture(scope="module")
def model_dir(model, clips, tmp_path_factory):
    path = tmp_path_factory.mktemp("asr-export") / "asr_streaming"
    write_model(model, path, "tiny", [*VOCABULARY, "<blank>"], len(VOCABULARY), "char", "test", clips[:2])
    return path


@pytest.fixture(scope="module")
def runtime(model_dir):
    return export.load_runtime().StreamingRecognizer(str(model_dir / "1"))


def test_files_and_settings(model_dir):
    version = model_dir / "1"
    for name in (
        "frontend.onnx",
        "encoder.onnx",
        "asr_stream.json",
        "model.py",
        "asr_stream.py",
        "build.json",
    ):
        assert (version / name).is_file(), name
    settings = json.loads((version / "asr_stream.json").read_text())
    assert settings["chunk_ms"] == 160 and settings["frame_shift_ms"] == 40 and settings["chunk_frames"] == 16
    assert settings["prefix_frames"] == (-settings["pre_cache_frames"]) % settings["subsampling"]
    parity = json.loads((version / "build.json").read_text())["parity"]
    assert parity["max_abs_diff_onnx_vs_nemo_stream"] < 1e-3 and parity["frame_counts_match"]


def test_frontend_equals_nemo_preprocessor(model, model_dir, clips):
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_dir / "1" / "frontend.onnx"))
    audio = clips[0]
    with torch.no_grad():
        ref, length = model.preprocessor(
            input_signal=torch.from_numpy(audio)[None], length=torch.tensor([audio.size])
        )
    emphasized = np.concatenate([[audio[0]], audio[1:] - 0.97 * audio[:-1]]).astype(np.float32)
    padded = np.concatenate([np.zeros(256, np.float32), emphasized, np.zeros(256, np.float32)])
    mel = session.run(None, {"audio": padded[None]})[0][0]
    n = int(length[0])
    np.testing.assert_allclose(mel[:, :n], ref[0, :, :n].numpy(), atol=1e-3)


def test_onnx_equals_nemo_streaming_and_whole_utterance(model, runtime, model_dir, clips):
    settings = json.loads((model_dir / "1" / "asr_stream.json").read_text())
    for audio in clips:
        streamed = runtime.transcribe_logprobs(audio, 2560)
        nemo_stream = export.nemo_stream_logprobs(model, audio, settings)
        whole = export.nemo_logprobs(model, audio)
        assert streamed.shape == nemo_stream.shape == whole.shape
        np.testing.assert_allclose(streamed, nemo_stream, atol=1e-3)
        if len(whole) > 1:  # padded first chunk: only the first frame may differ noticeably
            assert np.abs(streamed[1:] - whole[1:]).max() < 0.1


@pytest.mark.parametrize("chunk", [None, 1, 160, 999, 2560, 16000])
def test_any_chunking_gives_the_same_frames(runtime, clips, chunk):
    reference = runtime.transcribe_logprobs(clips[0], 2560)
    got = runtime.transcribe_logprobs(clips[0], chunk)
    np.testing.assert_allclose(got, reference, atol=1e-4)


def test_batched_streams_equal_single_streams(runtime, clips):
    audio_a, audio_b = clips[0], clips[1]
    alone_a, alone_b = runtime.transcribe_logprobs(audio_a, 2560), runtime.transcribe_logprobs(audio_b, 2560)
    parts = {1: [], 2: []}
    pieces = {
        1: [audio_a[i : i + 2560] for i in range(0, audio_a.size, 2560)],
        2: [audio_b[i : i + 2560] for i in range(0, audio_b.size, 2560)],
    }
    steps = max(len(p) for p in pieces.values()) + 1
    for step in range(steps):
        batch = []
        for key, chunks in pieces.items():
            if step <= len(chunks):
                piece = chunks[step] if step < len(chunks) else np.zeros(0, np.float32)
                batch.append((key, piece, step == 0, step == len(chunks)))
        for (key, *_), result in zip(batch, runtime.process(batch), strict=True):
            parts[key].append(result.logprobs)
    np.testing.assert_allclose(np.concatenate(parts[1]), alone_a, atol=1e-4)
    np.testing.assert_allclose(np.concatenate(parts[2]), alone_b, atol=1e-4)
    assert not runtime.streams  # END freed both


def test_errors_are_per_request_and_idle_streams_are_evicted(runtime, clips):
    results = runtime.process(
        [
            (7, clips[0][:2560], True, False),
            (8, clips[0][:2560], False, False),
            (9, np.array([np.nan], np.float32), True, False),
        ]
    )
    assert not isinstance(results[0], Exception)
    assert isinstance(results[1], ValueError) and "START" in str(results[1])
    assert isinstance(results[2], ValueError) and "NaN" in str(results[2])
    assert set(runtime.streams) == {7}
    assert runtime.evict_idle(now=runtime.streams[7].last_used + runtime.idle_timeout_s + 1) == [7]
    assert not runtime.streams


def test_greedy_ctc():
    runtime_module = export.load_runtime()
    vocab = ["a", "b", " ", "<blank>"]
    ids = [3, 0, 0, 3, 0, 1, 2, 2, 1, 3]
    logprobs = np.log(np.eye(4)[ids] * 0.97 + 0.01)
    assert runtime_module.greedy_ctc(logprobs, vocab, 3) == "aab b"
    bpe = ["▁se", "t", "▁a", "<blank>"]
    assert runtime_module.greedy_ctc(np.log(np.eye(4)[[0, 1, 3, 2]] + 1e-3), bpe, 3, "bpe") == "set a"


def test_config_pbtxt_parameters(model_dir):
    text = (model_dir / "config.pbtxt").read_text()
    for needle in (
        '"rivulet_task" value: { string_value: "asr_streaming" }',
        "CONTROL_SEQUENCE_CORRID",
        '"frame_shift_ms" value: { string_value: "40" }',
        '"tokenizer" value: { string_value: "char" }',
        'name: "AUDIO"',
        'name: "LOGPROBS"',
        'name: "FRAME_START"',
        "max_batch_size: 64",
    ):
        assert needle in text, needle
    settings = json.loads((model_dir / "1" / "asr_stream.json").read_text())
    assert triton_config.config_pbtxt("asr_streaming", settings, "test", "tiny") == text


def test_a_built_model_comes_back_from_its_onnx_for_fine_tuning(model, model_dir, tmp_path):
    """from_onnx: the exported graphs give back every trained parameter (the unnamed MatMul weights
    matched through a second export), so a model whose .nemo is gone can still be trained further."""
    from nemo.collections.asr.models import EncDecCTCModel

    from pipelines.asr.from_onnx import feature_stats, write_nemo

    out = write_nemo(model_dir / "1", tmp_path / "model.nemo", size="quick")
    recovered = EncDecCTCModel.restore_from(str(out), map_location="cpu")
    original = dict(model.named_parameters())
    assert set(original) == {name for name, _ in recovered.named_parameters()}
    for name, param in recovered.named_parameters():
        assert torch.equal(param, original[name]), name
    stats = feature_stats(model_dir / "1")
    assert len(stats["fixed_mean"]) == len(stats["fixed_std"]) == 80
    assert json.loads((tmp_path / "feature_stats.json").read_text()) == stats


def test_a_model_of_another_size_is_refused(model_dir):
    from pipelines.asr.from_onnx import recover

    with pytest.raises(ValueError, match="not exported from a 'full' model"):
        recover(model_dir / "1", size="full")
