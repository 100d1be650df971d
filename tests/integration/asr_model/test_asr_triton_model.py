"""The asr_streaming Triton model through the session's real tritonserver (tests/models_asr.py adds it).

Several streams at once, each sent as 160 ms requests with START/END/CORRID: every stream gets
exactly the frames the serving runtime computes for its audio alone (no mixing across the batched
execute() calls), FRAME_START counts frames without gaps, END frees the state, a bad stream gets
its own error and the others carry on, and one whole-file request equals the streamed frames.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from pipelines.asr.export import load_runtime
from rivulet.core import audio as core_audio
from rivulet.voices import Voice, synthesize

MODEL = "asr_streaming"
CHUNK = 2560  # 160 ms at 16 kHz
TEXTS = [
    "set a timer for ten minutes",
    "seven three one",
    "turn on the kitchen lights",
    "what time is it",
    "add milk to my shopping list",
    "play some jazz",
]


@pytest.fixture(scope="module")
def client(triton) -> grpcclient.InferenceServerClient:
    with grpcclient.InferenceServerClient(triton.grpc_url) as c:
        yield c


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    voices = ["espeak-ng:en-us+f3", "flite:rms", "espeak-ng:en-gb-scotland+m3", "espeak-ng:en+david"]
    out = []
    for i, text in enumerate(TEXTS):
        samples, rate = synthesize(Voice.parse(voices[i % len(voices)]), text)
        out.append(core_audio.resample(samples, rate, 16000).astype(np.float32))
    return out


@pytest.fixture(scope="module")
def reference(nlu_repository):
    """The serving runtime on the same model files, in this process."""
    return load_runtime().StreamingRecognizer(str(Path(nlu_repository) / MODEL / "1"))


def infer(client, corrid: int, samples: np.ndarray, start: bool, end: bool):
    tensor = grpcclient.InferInput("AUDIO", [1, samples.size], "FP32")
    tensor.set_data_from_numpy(samples.reshape(1, -1).astype(np.float32))
    result = client.infer(
        MODEL,
        [tensor],
        sequence_id=corrid,
        sequence_start=start,
        sequence_end=end,
        outputs=[grpcclient.InferRequestedOutput("LOGPROBS"), grpcclient.InferRequestedOutput("FRAME_START")],
    )
    return result.as_numpy("LOGPROBS"), int(result.as_numpy("FRAME_START").reshape(-1)[0])


def stream(client, corrid: int, samples: np.ndarray) -> np.ndarray:
    pieces = [samples[i : i + CHUNK] for i in range(0, samples.size, CHUNK)] + [np.zeros(0, np.float32)]
    parts, expected_start = [], 0
    for n, piece in enumerate(pieces):
        logprobs, frame_start = infer(client, corrid, piece, n == 0, n == len(pieces) - 1)
        assert logprobs.shape[0] == 1 and logprobs.ndim == 3
        assert frame_start == expected_start, "FRAME_START must continue where the last response ended"
        expected_start += logprobs.shape[1]
        parts.append(logprobs[0])
    return np.concatenate(parts)


def test_config_parameters(client):
    config = client.get_model_config(MODEL, as_json=True)["config"]
    params = {k: v["string_value"] for k, v in config["parameters"].items()}
    assert params["rivulet_task"] == "asr_streaming"
    assert params["sample_rate_hz"] == "16000" and params["chunk_ms"] == "160"
    vocabulary = json.loads(params["vocabulary"])
    assert vocabulary[int(params["blank_index"])] == "<blank>" if params["tokenizer"] == "char" else True
    assert "sequence_batching" in config and config["max_batch_size"] == 64


def test_concurrent_streams_get_their_own_frames(client, clips, reference):
    with ThreadPoolExecutor(len(clips)) as pool:
        results = list(pool.map(lambda i: stream(client, 1000 + i, clips[i]), range(len(clips))))
    for clip, got in zip(clips, results, strict=True):
        alone = reference.transcribe_logprobs(clip, CHUNK)
        assert got.shape == alone.shape
        np.testing.assert_allclose(got, alone, atol=2e-3)
        assert np.allclose(np.exp(got).sum(-1), 1.0, atol=1e-3)  # log-softmax rows


def test_whole_file_request_equals_streaming(client, clips, reference):
    logprobs, frame_start = infer(client, 2001, clips[0], True, True)
    assert frame_start == 0
    np.testing.assert_allclose(logprobs[0], reference.transcribe_logprobs(clips[0], CHUNK), atol=2e-3)


def test_end_frees_state_and_unknown_streams_are_refused(client, clips):
    stream(client, 3001, clips[1])
    with pytest.raises(InferenceServerException, match="START"):
        infer(client, 3001, clips[1][:CHUNK], False, False)  # the state went with END


def test_bad_stream_does_not_disturb_others(client, clips, reference):
    def bad() -> str:
        try:
            infer(client, 4001, np.full(CHUNK, np.nan, np.float32), True, False)
        except InferenceServerException as error:
            return str(error)
        return ""

    with ThreadPoolExecutor(3) as pool:
        good = [pool.submit(stream, client, 4100 + i, clips[i]) for i in range(2)]
        error = pool.submit(bad).result()
        results = [f.result() for f in good]
    assert "NaN" in error
    for i, got in enumerate(results):
        np.testing.assert_allclose(got, reference.transcribe_logprobs(clips[i], CHUNK), atol=2e-3)
    with pytest.raises(InferenceServerException, match="START"):  # the bad stream's state was freed
        infer(client, 4001, clips[0][:CHUNK], False, False)


def test_empty_chunks_and_odd_sizes(client, clips, reference):
    clip = clips[3]
    sizes = [0, 1, 999, 4000, 0, 2560, 7]
    parts, offset, start = [], 0, True
    for size in sizes:
        logprobs, _ = infer(client, 5001, clip[offset : offset + size], start, False)
        parts.append(logprobs[0])
        offset, start = offset + size, False
    logprobs, _ = infer(client, 5001, clip[offset:], False, True)
    parts.append(logprobs[0])
    np.testing.assert_allclose(np.concatenate(parts), reference.transcribe_logprobs(clip, CHUNK), atol=2e-3)
