"""Gateway fixtures: the gateway in front of the real dialog service (typed turns: NLU, Redis), and
in front of the whole voice stack (Triton, ASR, NLU, TTS, dialog) for the browser tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.gateway_support import GatewayProcess, chromium_path
from tests.integration.dialog.conftest import (  # the dialog tests' real services, reused
    dialog_service,
    nlu_service,
    speech_stack,
    voice_stack,
    weather_server,
)

__all__ = ["dialog_service", "nlu_service", "speech_stack", "voice_stack", "weather_server"]


@pytest.fixture(scope="session")
def typed_gateway(dialog_service, tmp_path_factory) -> Iterator[GatewayProcess]:
    """The gateway before the dialog service (its ASR and TTS addresses lead nowhere)."""
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    with GatewayProcess(dialog_service.address, log, gateway_max_frames_per_s=60) as gateway:
        yield gateway


@pytest.fixture(scope="session")
def voice_gateway(voice_stack, tmp_path_factory) -> Iterator[GatewayProcess]:
    if chromium_path() is None:
        pytest.fail("chromium is not installed: run `make setup` (scripts/ensure_browser.sh)")
    log = tmp_path_factory.mktemp("voice-gateway") / "gateway.log"
    tts = voice_stack.services["tts"].address  # the voice picker's list (make run: one address for all)
    with GatewayProcess(voice_stack.dialogs[0].address, log, gateway_tts_url=tts) as gateway:
        yield gateway
