"""Dialog fixtures: the real NLU service on the session tritonserver, the dialog service as a process,
a small real HTTP server speaking the Open-Meteo API format, and a gRPC stub."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from bench.dialog_support import open_meteo_server
from rivulet.dialog.v1 import dialog_pb2 as pb
from rivulet.dialog.v1 import dialog_pb2_grpc
from tests.support import ServiceProcess, free_port

DIALOG = "rivulet.dialog.v1.Dialog"


@pytest.fixture(scope="session")
def weather_server() -> Iterator[str]:
    with open_meteo_server() as url:
        yield url


@pytest.fixture(scope="session")
def nlu_service(triton, tmp_path_factory) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("dialog-nlu") / "nlu.log"
    env = {"triton_url": triton.grpc_url, "readiness_interval_s": 0.2}
    service = ServiceProcess("rivulet.nlu", log, env).start_serving(
        "nvidia.riva.nlp.RivaLanguageUnderstanding", timeout_s=120
    )
    try:
        yield service
    finally:
        service.stop()


def dialog_env(redis_url: str, nlu: str, **extra) -> dict:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens here
    env = {
        "redis_url": redis_url,
        "dialog_nlu_url": nlu,
        "dialog_asr_url": dead,
        "dialog_tts_url": dead,
        "dialog_time_zone": "Europe/Berlin",
        "readiness_interval_s": 0.2,
        "log_format": "text",
    }
    env.update(extra)
    return env


def start_dialog(log: Path, env: dict) -> ServiceProcess:
    return ServiceProcess("rivulet.dialog", log, env).start_serving(DIALOG)


@pytest.fixture(scope="session")
def dialog_service(redis_url, nlu_service, weather_server, tmp_path_factory) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("dialog") / "dialog.log"
    service = start_dialog(log, dialog_env(redis_url, nlu_service.address, dialog_weather_url=weather_server))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def dialog(dialog_service) -> Iterator[dialog_pb2_grpc.DialogStub]:
    with grpc.insecure_channel(dialog_service.address) as channel:
        yield dialog_pb2_grpc.DialogStub(channel)


class Conversation:
    """A scripted typed conversation on one session."""

    def __init__(self, stub: dialog_pb2_grpc.DialogStub, session_id: str) -> None:
        self.stub, self.session_id = stub, session_id

    def say(self, text: str, **kwargs) -> pb.TextTurnResponse:
        return self.stub.TextTurn(
            pb.TextTurnRequest(session_id=self.session_id, text=text, **kwargs), timeout=30
        )

    def session(self) -> pb.Session:
        return self.stub.GetSession(pb.GetSessionRequest(session_id=self.session_id), timeout=10)


@pytest.fixture(scope="session")
def speech_stack(request, redis_url, nlu_repository, test_models, weather_server, tmp_path_factory):
    """Triton with the NLU, ASR and TTS models (the session one when it serves them all), the three
    Riva services and one dialog replica, as processes. Without a trained ASR model the stack has no
    ASR service and the tests that speak are skipped, saying so."""
    from bench.dialog_support import MODELS, SpeechStack, compose_repository, default_sources

    workdir = tmp_path_factory.mktemp("speech-stack")
    settings = {"dialog_weather_url": weather_server, "dialog_time_zone": "Europe/Berlin"}
    # the tests check what is heard and said, not how fast on a shared machine: a slowed Whisper
    # pass must not leave the final to the streaming model
    service_env = {"asr": {"asr_second_pass_timeout_ms": 60000}}
    overridden = os.environ.get("RIVULET_DIALOG_TEST_REPOSITORY") or os.environ.get(
        "RIVULET_ASR_TEST_REPOSITORY"
    )
    if MODELS["asr"] in test_models and MODELS["tts"] in test_models and not overridden:
        triton = request.getfixturevalue("triton")
        stack = SpeechStack(
            workdir,
            nlu_repository,
            list(MODELS.values()),
            redis_url,
            dialog_env=settings,
            triton_url=triton.grpc_url,
            service_env=service_env,
        )
    else:
        sources = default_sources(extra=(nlu_repository,))
        repository = compose_repository(workdir / "repository", sources)
        stack = SpeechStack(
            workdir, repository, list(sources), redis_url, dialog_env=settings, service_env=service_env
        )
    with stack:
        yield stack


@pytest.fixture(scope="session")
def tts_stack(speech_stack):
    if "tts" not in speech_stack.services:
        pytest.skip("no TTS model (tts_embedded) found for the voice stack")
    return speech_stack


def trained_asr() -> bool:
    """The ASR model the stack serves was trained (tests/models_asr.py otherwise builds an untrained
    quick model, which transcribes nothing usable)."""
    from tests.models_asr import committed_model

    overrides = ("RIVULET_DIALOG_TEST_REPOSITORY", "RIVULET_ASR_TEST_REPOSITORY")
    return (
        committed_model() is not None
        or os.environ.get("RIVULET_ASR_TEST_PROFILE") == "full"
        or any(os.environ.get(name) for name in overrides)
    )


@pytest.fixture(scope="session")
def voice_stack(speech_stack):
    if "asr" not in speech_stack.services or not trained_asr():
        pytest.skip(
            "no trained ASR model: asr_streaming has no weights in models/ "
            "(set RIVULET_DIALOG_TEST_REPOSITORY "
            "or RIVULET_ASR_TEST_REPOSITORY to a repository that has one)"
        )
    return speech_stack
