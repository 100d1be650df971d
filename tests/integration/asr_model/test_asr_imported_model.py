"""An imported NeMo checkpoint (a FastConformer-CTC-BPE made here, `import-nemo`) served by a real
tritonserver of its own: the same contract as the trained default (80 ms frames, BPE vocabulary),
concurrent sequences each get exactly the frames of their own audio."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from pipelines.asr.export import load_runtime
from pipelines.asr.import_nemo import import_nemo
from pipelines.asr.texts import assistant_commands
from pipelines.asr.tiny_nemo import make_bpe_checkpoint
from rivulet.core.tritonserver import TritonServer
from tests.integration.asr_model.test_asr_triton_model import CHUNK, stream
from tests.support import free_port

MODEL = "asr_streaming"


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    work = tmp_path_factory.mktemp("imported")
    checkpoint = make_bpe_checkpoint(assistant_commands("train")[:2000], work / "nemo")
    return import_nemo(checkpoint, work / "repository", MODEL)


@pytest.fixture(scope="module")
def client(imported, tmp_path_factory):
    server = TritonServer(
        imported.parent,
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        log_file=tmp_path_factory.mktemp("triton-imported") / "tritonserver.log",
        extra_args=["--model-control-mode=explicit", f"--load-model={MODEL}"],
    )
    with server:
        server.wait_ready([MODEL], timeout_s=300)
        with grpcclient.InferenceServerClient(server.grpc_url) as c:
            yield c


def test_imported_model_serves_concurrent_streams(client, imported):
    params = {
        k: v["string_value"]
        for k, v in client.get_model_config(MODEL, as_json=True)["config"]["parameters"].items()
    }
    assert params["tokenizer"] == "bpe" and params["frame_shift_ms"] == "80"
    assert json.loads(params["vocabulary"])[int(params["blank_index"])] == "<blank>"
    rng = np.random.default_rng(5)
    clips = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (20000, 33333, 9000)]
    with ThreadPoolExecutor(len(clips)) as pool:
        results = list(pool.map(lambda i: stream(client, 700 + i, clips[i]), range(len(clips))))
    runtime = load_runtime().StreamingRecognizer(str(imported / "1"))
    for clip, got in zip(clips, results, strict=True):
        np.testing.assert_allclose(got, runtime.transcribe_logprobs(clip, CHUNK), atol=2e-3)
        assert got.shape[1] == len(json.loads(params["vocabulary"]))
