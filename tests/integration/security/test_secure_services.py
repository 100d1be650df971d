"""The real ASR and TTS services over TLS with API keys, called with the official riva.client."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import riva.client

from tests.integration.security.conftest import ASR, TTS

pytestmark = pytest.mark.integration


def test_synthesize_then_recognize_over_tls_with_a_key(secure_tts, secure_asr):
    tts = riva.client.SpeechSynthesisService(secure_tts.auth())
    reply = tts.synthesize("Seven.", sample_rate_hz=16_000)
    samples = np.frombuffer(reply.audio, dtype="<i2")
    assert samples.size > 1600 and np.abs(samples).max() > 1000
    asr = riva.client.ASRService(secure_asr.auth())
    config = riva.client.RecognitionConfig(
        encoding=riva.client.AudioEncoding.LINEAR_PCM, sample_rate_hertz=16_000, language_code="en-US"
    )
    result = asr.offline_recognize(reply.audio, config)
    assert result.results, "no transcript came back over TLS"


def test_keys_are_checked_on_real_services(secure_tts, secure_asr, api_keys):
    _, keys = api_keys
    tts_only = secure_asr.auth(keys["tts-only"])
    with pytest.raises(grpc.RpcError) as denied:
        riva.client.ASRService(tts_only).stub.GetRivaSpeechRecognitionConfig(
            riva.client.proto.riva_asr_pb2.RivaSpeechRecognitionConfigRequest(), metadata=tts_only.metadata
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert ASR in denied.value.details() and TTS in denied.value.details()
    keyless = riva.client.Auth(ssl_root_cert=str(secure_tts.certs.ca), use_ssl=True, uri=secure_tts.uri)
    with pytest.raises(grpc.RpcError) as missing:
        riva.client.SpeechSynthesisService(keyless).synthesize("hello")
    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    allowed = riva.client.SpeechSynthesisService(secure_tts.auth(keys["tts-only"]))
    assert allowed.synthesize("hello", sample_rate_hz=16_000).audio
