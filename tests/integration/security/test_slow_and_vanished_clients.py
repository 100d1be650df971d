"""Clients that stop reading or vanish: the server's memory stays bounded (gRPC flow control holds
synthesis back instead of buffering it), and everything the stream held is freed when it goes."""

from __future__ import annotations

import time
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from riva.proto import riva_tts_pb2 as rtts
from riva.proto import riva_tts_pb2_grpc

from tests.integration.security.conftest import TTS
from tests.support import ServiceProcess, rss_mib

pytestmark = pytest.mark.integration

SENTENCE = "The quick brown fox jumps over the lazy dog near the riverbank at seven thirty. "


def streams_in_flight(process: ServiceProcess) -> float:
    """The TTS's rivulet_grpc_in_flight for SynthesizeOnline (the labels clash with metric()'s args)."""
    text = (
        urllib.request.urlopen(f"http://127.0.0.1:{process.metrics_port}/metrics", timeout=5).read().decode()
    )
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "rivulet_grpc_in_flight" and sample.labels == {
                "service": TTS,
                "method": "SynthesizeOnline",
            }:
                return sample.value
    return 0.0


def wait_until_no_streams(process: ServiceProcess, timeout_s: float = 10.0) -> float:
    """Seconds until no SynthesizeOnline stream is in flight (fails after `timeout_s`)."""
    started = time.monotonic()
    while streams_in_flight(process) != 0:
        assert time.monotonic() - started < timeout_s, f"{streams_in_flight(process)} streams still in flight"
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_client_that_stops_reading_holds_bounded_memory_and_frees_it_on_cancel(secure_tts):
    process = secure_tts.process
    stub = riva_tts_pb2_grpc.RivaSpeechSynthesisStub(secure_tts.channel())
    before = rss_mib(process.process.pid)
    # 10 messages of ~1,500 characters: about 15 minutes of 48 kHz audio (~90 MB) if all were buffered
    requests = [
        rtts.SynthesizeSpeechRequest(
            text=SENTENCE * 19, sample_rate_hz=48_000, encoding=1, language_code="en-US"
        )
        for _ in range(10)
    ]
    call = stub.SynthesizeOnline(iter(requests), timeout=120)
    first = next(call)  # the stream is live; from now on the client reads nothing
    assert first.audio
    time.sleep(8)
    held = rss_mib(process.process.pid) - before
    assert held < 40, f"the TTS buffered {held:.0f} MiB for a client that stopped reading"
    call.cancel()
    freed_s = wait_until_no_streams(process)
    print(f"slow consumer: the TTS held {held:.1f} MiB after 8 s unread; freed {freed_s:.2f} s after cancel")


def test_a_vanished_client_frees_its_stream(secure_tts):
    process = secure_tts.process
    channel = secure_tts._open_channel()  # its own connection, closed under the stream like a dead client
    stub = riva_tts_pb2_grpc.RivaSpeechSynthesisStub(channel)
    requests = [
        rtts.SynthesizeSpeechRequest(text=SENTENCE * 19, sample_rate_hz=16_000, language_code="en-US")
    ]
    call = stub.SynthesizeOnline(iter(requests * 5), timeout=120)
    assert next(call).audio
    channel.close()
    with pytest.raises(grpc.RpcError):
        for _ in call:
            pass
    freed_s = wait_until_no_streams(process)
    print(f"vanished client: its stream freed {freed_s:.2f} s after its connection closed")
