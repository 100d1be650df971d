"""The streaming ASR runtime's device-cache path (I/O binding, caches kept as OrtValues between chunks).

On a GPU the OrtValues live in CUDA memory; here the same path runs with CPU OrtValues, so its
stacking, splitting, batching and flushing are checked against the numpy path on the committed model:
the log-probabilities must be identical.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from bench.gpu_check.asr import run_interleaved
from pipelines.asr.export import load_runtime
from pipelines.asr.paths import RUNTIME_DIR

CHUNK = 2560  # 160 ms at 16 kHz


def _streams() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(16000 * 3) / 16000
    voiced = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    return [
        voiced[:40000],
        (0.1 * rng.standard_normal(30000)).astype(np.float32),
        voiced[5000:22000] + 0.01 * rng.standard_normal(17000).astype(np.float32),
    ]


@pytest.fixture(scope="module")
def runtime():
    return load_runtime()


def test_caches_kept_as_ortvalues_give_the_same_logprobs_as_the_numpy_path(runtime) -> None:
    audios = _streams()
    host = run_interleaved(runtime.StreamingRecognizer(str(RUNTIME_DIR)), audios)
    device = run_interleaved(runtime.StreamingRecognizer(str(RUNTIME_DIR), caches_on_device=True), audios)
    for expected, got in zip(host, device, strict=True):
        assert got.shape == expected.shape and expected.shape[0] > 0
        np.testing.assert_array_equal(got, expected)


def test_odd_sized_pieces_and_a_lone_stream_match_too(runtime) -> None:
    audio = _streams()[0]
    host = runtime.StreamingRecognizer(str(RUNTIME_DIR)).transcribe_logprobs(audio, chunk_samples=1234)
    device = runtime.StreamingRecognizer(str(RUNTIME_DIR), caches_on_device=True)
    np.testing.assert_array_equal(device.transcribe_logprobs(audio, chunk_samples=1234), host)


def test_between_chunks_each_stream_holds_its_caches_as_ortvalues(runtime) -> None:
    recognizer = runtime.StreamingRecognizer(str(RUNTIME_DIR), caches_on_device=True)
    c = recognizer.config
    audio = _streams()[0]
    recognizer.process([(1, audio[:CHUNK], True, False), (2, audio[: CHUNK * 2], True, False)])
    for key in (1, 2):
        state = recognizer.streams[key]
        assert isinstance(state.cache_channel, ort.OrtValue) and isinstance(state.cache_time, ort.OrtValue)
        assert state.cache_channel.shape() == [1, c.n_layers, c.channel_cache, c.d_model]
        assert state.cache_time.shape() == [1, c.n_layers, c.d_model, c.time_cache]
    assert recognizer.streams[1].cache_channel is not recognizer.streams[2].cache_channel


def test_the_cpu_default_keeps_numpy_caches(runtime) -> None:
    recognizer = runtime.StreamingRecognizer(str(RUNTIME_DIR))
    assert recognizer.device_caches is None and recognizer.encoder.get_providers() == ["CPUExecutionProvider"]
    recognizer.process([(1, _streams()[0][: CHUNK * 2], True, False)])
    assert isinstance(recognizer.streams[1].cache_channel, np.ndarray)


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="a GPU is here")
def test_a_gpu_placement_without_cuda_falls_back_to_the_cpu_with_the_same_results(runtime) -> None:
    audio = _streams()[1]
    with pytest.warns(RuntimeWarning, match="CUDAExecutionProvider"):
        recognizer = runtime.StreamingRecognizer(
            str(RUNTIME_DIR), placement=runtime.onnx_device.Placement(kind="GPU")
        )
    assert recognizer.device_caches is not None and recognizer.device_caches.device == ("cpu", 0)
    host = runtime.StreamingRecognizer(str(RUNTIME_DIR)).transcribe_logprobs(audio, chunk_samples=CHUNK)
    np.testing.assert_array_equal(recognizer.transcribe_logprobs(audio, chunk_samples=CHUNK), host)
