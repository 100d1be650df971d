"""The tracked Triton files are exactly what the pipeline writes, and the runtime stays Triton-safe."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from pipelines.nlu.build import write_model_files
from pipelines.nlu.corpus import DOMAINS, MODEL_NAMES
from pipelines.nlu.paths import REPO_ROOT, RUNTIME_DIR, RUNTIME_FILES
from pipelines.nlu.triton_config import config_pbtxt

MODELS = REPO_ROOT / "models"


@pytest.mark.parametrize("dataset", sorted(MODEL_NAMES))
def test_tracked_config_is_what_the_pipeline_writes(dataset: str) -> None:
    name = MODEL_NAMES[dataset]
    assert (MODELS / name / "config.pbtxt").read_text() == config_pbtxt(name, DOMAINS[dataset])


def test_config_holds_the_io_contract() -> None:
    text = config_pbtxt("intent_assistant", "assistant")
    for line in (
        'name: "intent_assistant"',
        'backend: "python"',
        "max_batch_size: 64",
        "dynamic_batching { }",
        "instance_group [ { kind: KIND_CPU, count: 1 } ]",
        '{ name: "TEXT", data_type: TYPE_STRING, dims: [ 1 ] }',
        '{ name: "INTENT_LABELS", data_type: TYPE_STRING, dims: [ -1 ] }',
        '{ name: "INTENT_SCORES", data_type: TYPE_FP32, dims: [ -1 ] }',
        '{ name: "SLOT_LABELS", data_type: TYPE_STRING, dims: [ -1 ] }',
        '{ name: "SLOT_SCORES", data_type: TYPE_FP32, dims: [ -1 ] }',
        '{ name: "SLOT_SPANS", data_type: TYPE_INT32, dims: [ -1, 2 ] }',
        'parameters { key: "domain" value: { string_value: "assistant" } }',
        'parameters { key: "language_code" value: { string_value: "en-US" } }',
        'parameters { key: "rivulet_task" value: { string_value: "intent_slot" } }',
        'parameters { key: "intra_op_num_threads" value: { string_value: "1" } }',
    ):
        assert line in text
    assert "max_queue_delay" not in text


@pytest.mark.parametrize("dataset", sorted(MODEL_NAMES))
def test_every_model_serves_the_one_canonical_runtime(dataset: str) -> None:
    for name in RUNTIME_FILES:
        path = MODELS / MODEL_NAMES[dataset] / "1" / name
        assert path.is_file() and os.path.samefile(path, RUNTIME_DIR / name)


def test_write_model_files_copies_the_runtime_into_another_repository(tmp_path: Path) -> None:
    write_model_files(tmp_path / "intent_atis", "atis")
    assert (tmp_path / "intent_atis" / "config.pbtxt").read_text() == config_pbtxt("intent_atis", "atis")
    for name in RUNTIME_FILES:
        assert (tmp_path / "intent_atis" / "1" / name).read_bytes() == (RUNTIME_DIR / name).read_bytes()


@pytest.mark.parametrize("name", RUNTIME_FILES)
def test_runtime_imports_nothing_the_triton_container_lacks(name: str) -> None:
    allowed = {"__future__", "importlib", "json", "os", "sys", "collections", "dataclasses", "numpy",
               "onnxruntime", "tokenizers", "triton_python_backend_utils",
               "tempfile", "warnings"}  # fmt: skip
    tree = ast.parse((RUNTIME_DIR / name).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= allowed, imported - allowed
