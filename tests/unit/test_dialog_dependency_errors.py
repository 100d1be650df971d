"""How a failed call to a dependency reads in the dialog's error event."""

from __future__ import annotations

import grpc
from grpc.aio import AioRpcError, Metadata

from rivulet.dialog.clients import DependencyError


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
