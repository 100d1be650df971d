"""Session fixtures: a real Redis, one model repository with every service's test models, a real tritonserver.

Each service's test models are added by its own module (``tests/models_<service>.py``, a function
``add_models(repository, cache_dir) -> list[str]`` returning the model names to wait for), so the
session starts one tritonserver that serves NLU, ASR and TTS together, as ``make run`` does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rivulet.core.processes import start_redis_server
from tests.support import ROOT, free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A real redis-server of our own on a free port (isolated from any Redis on 6379)."""
    try:
        process, url = start_redis_server(tmp_path_factory.mktemp("redis"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def nlu_cache_dir(tmp_path_factory) -> Path:
    """Where NLU builds are cached: $RIVULET_CACHE_DIR/nlu (reused across runs), else one per session,
    so every test that needs the quick model shares a single training run."""
    base = os.environ.get("RIVULET_CACHE_DIR")
    return Path(base) / "nlu" if base else tmp_path_factory.mktemp("nlu-cache")


@pytest.fixture(scope="session")
def nlu_repository(tmp_path_factory, nlu_cache_dir) -> Path:
    """A Triton model repository with the quick-profile assistant NLU model (built, or from the cache)."""
    repository = tmp_path_factory.mktemp("model_repository")
    command = [sys.executable, "-m", "pipelines.nlu", "build", "--dataset", "assistant", "--profile", "quick"]
    command += ["--repository", str(repository), "--cache-dir", str(nlu_cache_dir)]
    subprocess.run(command, cwd=ROOT, check=True)
    return repository


@pytest.fixture(scope="session")
def model_cache_dir(tmp_path_factory) -> Path:
    """Where ASR/TTS test builds are cached: $RIVULET_CACHE_DIR (reused across runs), else per session."""
    base = os.environ.get("RIVULET_CACHE_DIR")
    return Path(base) if base else tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def test_models(nlu_repository, model_cache_dir) -> list[str]:
    """Adds every service's test models to the session repository; returns the names to wait for."""
    from tests import models_asr, models_punct, models_tts

    names = ["intent_assistant"]
    for module in (models_asr, models_tts, models_punct):
        names += module.add_models(nlu_repository, model_cache_dir)
    return names


@pytest.fixture(scope="session")
def triton(nlu_repository, test_models, tmp_path_factory):
    """A real tritonserver serving the session repository (NLU, ASR and TTS test models)."""
    from rivulet.core.tritonserver import TritonServer

    log = tmp_path_factory.mktemp("triton") / "tritonserver.log"
    server = TritonServer(
        nlu_repository, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port(), log_file=log
    )
    with server:
        server.wait_ready(test_models)
        yield server
