"""A `--profile quick` build (once per test session, cached across sessions via $RIVULET_CACHE_DIR):
the CLI, the build cache and stamp, the exported model answering through intent_slot.py, and the
Triton model.py batching one request set with per-request errors."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from pipelines.nlu.corpus import load_corpus
from pipelines.nlu.evaluate import evaluate_runtime
from pipelines.nlu.paths import REPO_ROOT
from pipelines.nlu.runtime import intent_slot


def run_cli(*args: str) -> str:
    env = dict(os.environ, PYTHONPATH=f"{REPO_ROOT / 'services'}{os.pathsep}{REPO_ROOT}", HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.nlu", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def cache_dir(nlu_cache_dir: Path) -> Path:
    return nlu_cache_dir  # shared with the integration tests' model repository (tests/conftest.py)


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    repo = tmp_path_factory.mktemp("models")
    out = run_cli(
        "build",
        "--dataset",
        "assistant",
        "--profile",
        "quick",
        "--repository",
        str(repo),
        "--cache-dir",
        str(cache_dir),
    )
    assert "==> intent_assistant ready" in out
    return repo


@pytest.fixture(scope="module")
def runtime(repository: Path):
    return intent_slot().IntentSlotRuntime(str(repository / "intent_assistant" / "1"))


def test_build_writes_the_triton_model_layout(repository: Path) -> None:
    model = repository / "intent_assistant"
    assert (model / "config.pbtxt").is_file()
    for name in ("model.py", "intent_slot.py", "model.onnx", "tokenizer.json", "labels.json", "build.json"):
        assert (model / "1" / name).is_file(), name
    info = json.loads((model / "1" / "build.json").read_text())
    assert info["profile"] == "quick" and len(info["key"]) == 20
    assert set(info["metrics"]["test"]) == {"snips", "assistant", "slurp"}
    assert info["onnx_parity_max_abs_diff"] < 1e-3
    # the per-epoch PyTorch dev scores (used to pick the epoch) decode like the runtime scoring the ONNX
    # (before the out-of-scope threshold, which is calibrated after training)
    best = info["history"]["epochs"][info["history"]["best_epoch"] - 1]["dev"]
    runtime = intent_slot().IntentSlotRuntime(str(model / "1"), graph=intent_slot().FP32_GRAPH)
    runtime.out_of_scope_threshold = 0.0
    corpus = load_corpus("assistant")
    for name in info["metrics"]["dev"]:
        metrics = evaluate_runtime(runtime, corpus.dev[name])
        for key in ("intent_accuracy", "slot_f1", "sentence_accuracy"):
            assert abs(best[name][key] - metrics[key]) < 0.005, (name, key, best[name][key], metrics[key])
    labels = json.loads((model / "1" / "labels.json").read_text())
    assert labels["apostrophes"] == "split" and labels["slot_tags"][0] == "O"
    calibration = info["out_of_scope_calibration"]
    assert labels["out_of_scope"] == {"intent": "OutOfScope", "threshold": calibration["threshold"]}
    # the threshold keeps every dev source's false rejection within its limit (or is 0: the class alone)
    if calibration["threshold"] > 0:
        for source, dev in calibration["dev"].items():
            assert dev["in_scope_false_rejection"] <= calibration["limits"][source], source
    assert set(info["metrics"]["test"]["slurp"]["out_of_scope"]) >= {
        "in_scope_accuracy",
        "out_of_scope_rejection",
    }


def test_the_cpu_serves_an_int8_graph_that_scores_like_the_float_one(repository: Path) -> None:
    version = repository / "intent_assistant" / "1"
    info = json.loads((version / "build.json").read_text())
    assert info["int8_graph"]["written"] and info["int8_graph"]["intent_agreement"] >= 0.97
    assert (version / "model.int8.onnx").stat().st_size < (version / "model.onnx").stat().st_size / 3
    runtimes = {
        graph: intent_slot().IntentSlotRuntime(str(version), graph=graph)
        for graph in (intent_slot().FP32_GRAPH, intent_slot().INT8_GRAPH)
    }
    assert intent_slot().IntentSlotRuntime(str(version)).graph == intent_slot().INT8_GRAPH
    corpus = load_corpus("assistant")
    for name in ("snips", "assistant"):
        fp32, int8 = (evaluate_runtime(r, corpus.dev[name]) for r in runtimes.values())
        for key in ("intent_accuracy", "slot_f1"):
            assert abs(fp32[key] - int8[key]) <= 0.01, (name, key, fp32[key], int8[key])
    assert info["latency"]["graph"] == intent_slot().INT8_GRAPH
    assert info["latency_fp32"]["graph"] == intent_slot().FP32_GRAPH


def test_a_gpu_provider_gets_the_float_graph(tmp_path: Path) -> None:
    for name in ("model.onnx", "model.int8.onnx"):
        (tmp_path / name).write_bytes(b"")
    choose = intent_slot().choose_graph
    assert choose(str(tmp_path), ["CPUExecutionProvider"]) == "model.int8.onnx"
    gpu = [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
    assert choose(str(tmp_path), gpu) == "model.onnx"
    assert choose(str(tmp_path), ["CPUExecutionProvider"], "model.onnx") == "model.onnx"
    # the config's cpu_graph: model.onnx keeps the CPU on the float graph
    assert choose(str(tmp_path), ["CPUExecutionProvider"], cpu_graph="model.onnx") == "model.onnx"
    (tmp_path / "model.int8.onnx").unlink()  # a build without it (or from before it)
    assert choose(str(tmp_path), ["CPUExecutionProvider"]) == "model.onnx"


def test_out_of_scope_leads_when_the_best_in_scope_intent_is_under_the_threshold(runtime) -> None:
    probs, _ = runtime.predict_words([("set", "a", "timer", "for", "five", "minutes")])
    best = float(probs[0].max())
    assert runtime.intents[int(probs[0].argmax())] == "SetTimer"
    threshold = runtime.out_of_scope_threshold
    try:
        runtime.out_of_scope_threshold = best + 1e-6
        ranked = runtime.rank_intents(probs[0])
        assert ranked[0] == ("OutOfScope", pytest.approx(1.0 - best)) and ranked[1] == ("SetTimer", best)
        assert "OutOfScope" not in [name for name, _ in ranked[1:]]
        runtime.out_of_scope_threshold = best
        assert runtime.rank_intents(probs[0])[0] == ("SetTimer", best)
    finally:
        runtime.out_of_scope_threshold = threshold


@pytest.mark.parametrize(
    ("text", "intent", "slots"),
    [
        ("play the latest album by adele", "PlayMusic", {"adele": {"artist"}}),
        ("Set a timer for five minutes.", "SetTimer", {"five minutes": {"duration"}}),
        ("turn on the kitchen lights", "LightsOn", {"kitchen": {"room", "device"}}),
        ("What time is it?", "GetTime", {}),
        ("hello", "Greet", {}),
        ("cancel", "Cancel", {}),
    ],
)
def test_quick_model_understands_assistant_phrases(runtime, text: str, intent: str, slots: dict) -> None:
    analysis = runtime.analyze([text])[0]
    assert analysis.intents[0] == intent, (analysis.intents[:3], analysis.intent_scores[:3])
    found = {text[s.start : s.end].lower(): s.label for s in analysis.spans}
    for covered, labels in slots.items():
        assert any(covered in span and label in labels for span, label in found.items()), found
    assert sorted(analysis.intent_scores, reverse=True) == analysis.intent_scores
    assert abs(sum(analysis.intent_scores) - 1.0) < 1e-4


def test_rebuilding_the_same_key_does_nothing(repository: Path, cache_dir: Path) -> None:
    out = run_cli(
        "build",
        "--dataset",
        "assistant",
        "--profile",
        "quick",
        "--repository",
        str(repository),
        "--cache-dir",
        str(cache_dir),
    )
    assert "nothing to do" in out and "training" not in out


def test_a_cached_build_is_restored_instead_of_retrained(
    repository: Path, cache_dir: Path, tmp_path: Path
) -> None:
    out = run_cli(
        "build",
        "--dataset",
        "assistant",
        "--profile",
        "quick",
        "--repository",
        str(tmp_path),
        "--cache-dir",
        str(cache_dir),
    )
    assert "restoring build" in out and "==> training" not in out
    for name in ("model.onnx", "labels.json", "build.json", "model.py"):
        restored = tmp_path / "intent_assistant" / "1" / name
        assert restored.read_bytes() == (repository / "intent_assistant" / "1" / name).read_bytes()


def test_evaluate_cli_scores_the_built_model(repository: Path) -> None:
    out = run_cli("evaluate", "--repository", str(repository), "--dataset", "assistant", "--split", "test")
    assert "test snips (700): intent acc" in out and "test assistant" in out
    scores = json.loads(out[out.index("{") :])
    assert scores["assistant"]["intent_accuracy"] > 0.9


# --- the Triton python-backend wrapper, driven with a minimal stand-in for triton_python_backend_utils ---


class _Tensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self._name, self._array = name, array

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class _Response:
    def __init__(self, output_tensors=None, error=None) -> None:
        self.outputs = {t.name(): t.as_numpy() for t in output_tensors or []}
        self.error = error


class _Request:
    def __init__(self, value: bytes) -> None:
        self.inputs = {"TEXT": _Tensor("TEXT", np.array([[value]], dtype=np.object_))}


@pytest.fixture(scope="module")
def triton_model(repository: Path):
    utils = types.ModuleType("triton_python_backend_utils")
    utils.Tensor = _Tensor
    utils.InferenceResponse = _Response
    utils.TritonError = lambda message: message
    utils.get_input_tensor_by_name = lambda request, name: request.inputs.get(name)
    sys.modules["triton_python_backend_utils"] = utils
    try:
        path = repository / "intent_assistant" / "1" / "model.py"
        spec = importlib.util.spec_from_file_location("intent_assistant_triton_model", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        del sys.modules["triton_python_backend_utils"]
    config = (repository / "intent_assistant" / "config.pbtxt").read_text()
    assert 'key: "intra_op_num_threads"' in config
    model = module.TritonPythonModel()
    model.initialize(
        {
            "model_config": json.dumps({"parameters": {"intra_op_num_threads": {"string_value": "1"}}}),
            "model_repository": str(repository / "intent_assistant"),
            "model_version": "1",
        }
    )
    return model


def test_triton_model_answers_each_request_and_isolates_bad_ones(triton_model) -> None:
    texts = ["Play the latest album by Adele!", b"", "\xff\xfe".encode("latin-1"), "hello", "?!"]
    requests = [_Request(t if isinstance(t, bytes) else t.encode()) for t in texts]
    responses = triton_model.execute(requests)
    assert len(responses) == len(requests)
    assert [r.error is not None for r in responses] == [False, True, True, False, True]
    assert "UTF-8" in responses[2].error and "empty" in responses[1].error

    first = responses[0].outputs
    labels = [b.decode() for b in first["INTENT_LABELS"][0]]
    assert labels[0] == "PlayMusic" and first["INTENT_LABELS"].shape == first["INTENT_SCORES"].shape
    assert first["INTENT_SCORES"].dtype == np.float32 and first["INTENT_SCORES"].shape[0] == 1
    spans = first["SLOT_SPANS"]
    assert spans.dtype == np.int32 and spans.ndim == 3 and spans.shape[0] == 1 and spans.shape[2] == 2
    assert first["SLOT_LABELS"].shape == first["SLOT_SCORES"].shape == (1, spans.shape[1])
    text = texts[0]
    found = {
        text[a:b]: label.decode() for (a, b), label in zip(spans[0], first["SLOT_LABELS"][0], strict=True)
    }
    assert found.get("Adele") == "artist", found

    hello = responses[3].outputs
    assert hello["INTENT_LABELS"][0][0] == b"Greet"
    assert hello["SLOT_SPANS"].shape == (1, 0, 2) and hello["SLOT_LABELS"].shape == (1, 0)
