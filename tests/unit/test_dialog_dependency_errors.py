"""The dialog's calls to its dependencies: how a failed one reads in the error event, and what the
ASR call asks for."""

from __future__ import annotations

import grpc
import pytest
from grpc.aio import AioRpcError, Metadata
from pydantic import ValidationError

from rivulet.dialog.clients import AsrClient, DependencyError
from rivulet.dialog.settings import DialogSettings


def failed(code: grpc.StatusCode, details: str) -> AioRpcError:
    return AioRpcError(code, Metadata(), Metadata(), details)


def test_a_status_grpc_lost_while_the_dialog_was_sending_reads_as_the_service_gone():
    """grpc.aio reports INTERNAL "Internal error from Core" in place of the server's status when a
    request could not be written because the call had ended (Triton killed under a conversation):
    the error event says the service ended the call, UNAVAILABLE, not that it failed internally."""
    error = DependencyError.from_rpc(
        "asr", failed(grpc.StatusCode.INTERNAL, "Internal error from Core"), "h:1"
    )
    assert error.code == "UNAVAILABLE"
    assert "ASR service at h:1 ended the call" in error.message and "lost" in error.message


def test_a_status_the_service_sent_is_reported_as_sent():
    for code, details in (
        (grpc.StatusCode.INTERNAL, "the Whisper model failed: out of memory"),
        (grpc.StatusCode.UNAVAILABLE, "Triton at 127.0.0.1:8001 is unavailable"),
        (grpc.StatusCode.INVALID_ARGUMENT, "audio_encoding is unset"),
    ):
        error = DependencyError.from_rpc("tts", failed(code, details), "h:2")
        assert error.code == code.name and error.message == f"the TTS service at h:2 failed: {details}"


async def test_the_asr_call_asks_for_whispers_live_captions_only_when_set():
    for captions_ms, asked in ((0, None), (500, "500")):
        client = AsrClient("127.0.0.1:1", "", window_s=10.0, captions_ms=captions_ms)
        stream = client.open(1, 16000, "en-US", 160, 0)
        custom = stream.config.config.custom_configuration
        assert custom.get("whisper_interims_ms") == asked and custom["second_pass_window_s"] == "10"
        stream.cancel()
        await client.close()
    assert DialogSettings(dialog_asr_whisper_interims_ms=500).dialog_asr_whisper_interims_ms == 500
    with pytest.raises(ValidationError, match="0 or 200-10000 ms"):
        DialogSettings(dialog_asr_whisper_interims_ms=50)
