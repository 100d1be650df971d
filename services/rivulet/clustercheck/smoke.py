"""Smoke turns through the gRPC ingress address, with the official Riva client (and Rivulet's own
Dialog stub for rivulet.dialog.v1).

A turn is a name, a call and a judgement of the answer; the judgements are pure functions over the
response messages. One turn per deployed API (`turns_for`):

- NLU AnalyzeIntent: an intent comes back (the route, TLS, Triton and the NLU model answer);
- ASR GetRivaSpeechRecognitionConfig: the service lists at least one model it found in Triton;
- TTS Synthesize: a short text comes back as audible audio (tts_embedded's engines run in Triton);
- Dialog TextTurn: a typed turn is understood and answered with text and audio, which exercises
  Dialog -> NLU and Dialog -> TTS inside the cluster (their addresses and NetworkPolicies) and
  Redis; the smoke session is reset afterwards.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rivulet.clustercheck.report import Check, Status


@dataclass(frozen=True)
class Endpoint:
    """Where clients reach the release: the ingress address and its TLS settings."""

    address: str
    tls: bool = True
    ca_cert: str | None = None
    server_name: str | None = None

    def riva_auth(self) -> Any:
        import riva.client  # imported here: only the smoke turn needs the Riva client

        options = [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
        return riva.client.Auth(
            ssl_root_cert=self.ca_cert, use_ssl=self.tls, uri=self.address, options=options
        )


class SmokeTurn(Protocol):
    name: str

    def run(self, endpoint: Endpoint) -> Check: ...


def judge_intent(text: str, response: Any, elapsed_s: float, expect_intent: str | None = None) -> Check:
    """Judge an AnalyzeIntentResponse: it must name an intent (the expected one, when given)."""
    subject = f'NLU AnalyzeIntent "{text}"'
    intent = getattr(getattr(response, "intent", None), "class_name", "") or ""
    score = float(getattr(getattr(response, "intent", None), "score", 0.0) or 0.0)
    slots = [f"{s.label[0].class_name if s.label else '?'}={s.token}" for s in getattr(response, "slots", [])]
    slot_text = " " + " ".join(slots) if slots else ""
    seen = f"-> {intent or '(no intent)'} ({score:.2f}){slot_text} in {elapsed_s * 1000:.0f} ms"
    if not intent:
        return Check("smoke", subject, Status.FAIL, seen)
    if expect_intent and intent != expect_intent:
        return Check("smoke", subject, Status.FAIL, f"{seen}; expected {expect_intent}")
    return Check("smoke", subject, Status.OK, seen)


def rpc_failure(subject: str, exc: Exception) -> Check:
    code = getattr(exc, "code", None)
    details = getattr(exc, "details", None)
    if callable(code) and callable(details):
        return Check("smoke", subject, Status.FAIL, f"{code().name}: {details()}")
    return Check("smoke", subject, Status.FAIL, f"{type(exc).__name__}: {exc}")


@dataclass
class NluIntentTurn:
    """NLU AnalyzeIntent through the ingress: the Riva route, TLS, Triton and the model all answer."""

    text: str = "what time is it"
    expect_intent: str | None = None
    name: str = "nlu-intent"
    clock: Callable[[], float] = time.perf_counter

    def run(self, endpoint: Endpoint) -> Check:
        import riva.client

        subject = f'NLU AnalyzeIntent "{self.text}"'
        try:
            service = riva.client.NLPService(endpoint.riva_auth())
            start = self.clock()
            response = service.analyze_intent(self.text)
            return judge_intent(self.text, response, self.clock() - start, self.expect_intent)
        except Exception as exc:  # a failed turn is a report line, not a crash
            return rpc_failure(subject, exc)


# ---- ASR -----------------------------------------------------------------------------------------


def judge_asr_config(response: Any, elapsed_s: float, expect_model: str | None = None) -> Check:
    """Judge a RivaSpeechRecognitionConfigResponse: at least one model (the expected one, when given)."""
    subject = "ASR GetRivaSpeechRecognitionConfig"
    configs = list(getattr(response, "model_config", []))
    names = sorted({c.model_name for c in configs})
    if not names:
        return Check(
            "smoke", subject, Status.FAIL, "no ASR model listed: Triton serves none the service can use"
        )
    described = []
    for name in names:
        params = next(c.parameters for c in configs if c.model_name == name)
        extra = ", ".join(f"{k}={params[k]}" for k in ("language_code", "type") if k in params)
        described.append(f"{name} ({extra})" if extra else name)
    plural = "s" if len(names) > 1 else ""
    seen = f"-> {len(names)} model{plural}: {'; '.join(described)} in {elapsed_s * 1000:.0f} ms"
    if expect_model and expect_model not in names:
        return Check("smoke", subject, Status.FAIL, f"{seen}; expected {expect_model}")
    return Check("smoke", subject, Status.OK, seen)


@dataclass
class AsrConfigTurn:
    """ASR GetRivaSpeechRecognitionConfig: the ASR route answers and has found its Triton model."""

    expect_model: str | None = None
    name: str = "asr-config"
    clock: Callable[[], float] = time.perf_counter

    def run(self, endpoint: Endpoint) -> Check:
        import riva.client
        from riva.client.proto import riva_asr_pb2

        try:
            service = riva.client.ASRService(endpoint.riva_auth())
            start = self.clock()
            response = service.stub.GetRivaSpeechRecognitionConfig(
                riva_asr_pb2.RivaSpeechRecognitionConfigRequest(), metadata=service.auth.get_auth_metadata()
            )
            return judge_asr_config(response, self.clock() - start, self.expect_model)
        except Exception as exc:  # a failed turn is a report line, not a crash
            return rpc_failure("ASR GetRivaSpeechRecognitionConfig", exc)


# ---- TTS -----------------------------------------------------------------------------------------


def audio_summary(pcm16: bytes, sample_rate_hz: int) -> tuple[float, float]:
    """(seconds, RMS in dBFS) of little-endian 16-bit mono PCM; -inf dBFS for digital silence."""
    import numpy as np

    samples = np.frombuffer(pcm16[: len(pcm16) // 2 * 2], dtype="<i2").astype(np.float64) / 32768.0
    if samples.size == 0 or sample_rate_hz <= 0:
        return 0.0, float("-inf")
    rms = float(np.sqrt(np.mean(samples**2)))
    return samples.size / sample_rate_hz, (20 * np.log10(rms) if rms > 0 else float("-inf"))


# Quieter than this is not speech: engines speak at about -20 dBFS.
SILENCE_DBFS = -60.0


def judge_audio(subject: str, pcm16: bytes, sample_rate_hz: int, detail: str) -> Check | None:
    """A FAIL when the audio is missing, empty or silent; None when it is audible."""
    seconds, dbfs = audio_summary(pcm16, sample_rate_hz)
    if seconds == 0.0:
        return Check("smoke", subject, Status.FAIL, f"{detail}; no audio")
    if dbfs < SILENCE_DBFS:
        return Check("smoke", subject, Status.FAIL, f"{detail}; {seconds:.2f} s of silence ({dbfs:.0f} dBFS)")
    return None


def judge_synthesis(text: str, response: Any, sample_rate_hz: int, elapsed_s: float) -> Check:
    """Judge a SynthesizeSpeechResponse (LINEAR_PCM at `sample_rate_hz`): audible audio came back."""
    subject = f'TTS Synthesize "{text}"'
    audio = bytes(getattr(response, "audio", b""))
    seen = f"-> {len(audio)} bytes in {elapsed_s * 1000:.0f} ms"
    failed = judge_audio(subject, audio, sample_rate_hz, seen)
    if failed is not None:
        return failed
    seconds, dbfs = audio_summary(audio, sample_rate_hz)
    return Check(
        "smoke", subject, Status.OK, f"-> {seconds:.2f} s of audio at {sample_rate_hz} Hz ({dbfs:.0f} dBFS)"
        f" in {elapsed_s * 1000:.0f} ms",
    )  # fmt: skip


@dataclass
class TtsSynthesizeTurn:
    """TTS Synthesize: a short sentence is spoken by the default voice (or `voice`)."""

    text: str = "Rivulet is ready."
    voice: str | None = None
    sample_rate_hz: int = 16000
    name: str = "tts-synthesize"
    clock: Callable[[], float] = time.perf_counter

    def run(self, endpoint: Endpoint) -> Check:
        import riva.client

        try:
            service = riva.client.SpeechSynthesisService(endpoint.riva_auth())
            start = self.clock()
            response = service.synthesize(
                self.text, voice_name=self.voice, language_code="en-US", sample_rate_hz=self.sample_rate_hz
            )
            return judge_synthesis(self.text, response, self.sample_rate_hz, self.clock() - start)
        except Exception as exc:
            return rpc_failure(f'TTS Synthesize "{self.text}"', exc)


# ---- Dialog --------------------------------------------------------------------------------------


def judge_text_turn(
    text: str, response: Any, elapsed_s: float, want_audio: bool = True, expect_intent: str | None = None
) -> Check:
    """Judge a rivulet.dialog.v1 TextTurnResponse: understood, answered, and spoken when asked."""
    subject = f'Dialog TextTurn "{text}"'
    intent = response.understanding.intent if response.HasField("understanding") else ""
    reply = response.reply.text if response.HasField("reply") else ""
    seen = (
        f"-> {intent or '(no intent)'}: {reply[:60]!r}"
        if reply
        else f"-> {intent or '(no intent)'}: (no reply)"
    )
    if not intent or not reply:
        return Check("smoke", subject, Status.FAIL, seen)
    if expect_intent and intent != expect_intent:
        return Check("smoke", subject, Status.FAIL, f"{seen}; expected {expect_intent}")
    if want_audio:
        failed = judge_audio(subject, bytes(response.audio), response.sample_rate_hz, seen)
        if failed is not None:
            return failed
        seconds, _ = audio_summary(bytes(response.audio), response.sample_rate_hz)
        seen += f" + {seconds:.2f} s audio"
    return Check("smoke", subject, Status.OK, f"{seen} in {elapsed_s * 1000:.0f} ms")


@dataclass
class DialogTextTurn:
    """Dialog TextTurn in a fresh session (reset afterwards): Dialog, its NLU and TTS calls, Redis."""

    text: str = "what time is it"
    synthesize_audio: bool = True
    expect_intent: str | None = None
    name: str = "dialog-text-turn"
    session_id: str = field(default_factory=lambda: f"clustercheck-{uuid.uuid4().hex[:12]}")
    clock: Callable[[], float] = time.perf_counter

    def run(self, endpoint: Endpoint) -> Check:
        subject = f'Dialog TextTurn "{self.text}"'
        try:
            from rivulet.dialog.v1 import dialog_pb2, dialog_pb2_grpc

            auth = endpoint.riva_auth()
            stub = dialog_pb2_grpc.DialogStub(auth.channel)
            request = dialog_pb2.TextTurnRequest(
                session_id=self.session_id, text=self.text, synthesize_audio=self.synthesize_audio,
                language_code="en-US",
            )  # fmt: skip
            start = self.clock()
            try:
                response = stub.TextTurn(request, metadata=auth.get_auth_metadata(), timeout=30)
                elapsed = self.clock() - start
            finally:
                reset = dialog_pb2.ResetSessionRequest(session_id=self.session_id, clear_data=True)
                try:
                    stub.ResetSession(reset, metadata=auth.get_auth_metadata(), timeout=10)
                except Exception:  # the turn's own outcome is what the report shows
                    pass
            return judge_text_turn(self.text, response, elapsed, self.synthesize_audio, self.expect_intent)
        except Exception as exc:
            return rpc_failure(subject, exc)


# ---- which turns ---------------------------------------------------------------------------------


@dataclass
class TurnOptions:
    """What the smoke turns say and expect (the CLI's flags)."""

    nlu_text: str = "what time is it"
    expect_intent: str | None = None
    asr_model: str | None = None
    tts_text: str = "Rivulet is ready."
    tts_voice: str | None = None
    dialog_text: str = "what time is it"
    dialog_audio: bool = True


NLU_API = "nvidia.riva.nlp.RivaLanguageUnderstanding"
ASR_API = "nvidia.riva.asr.RivaSpeechRecognition"
TTS_API = "nvidia.riva.tts.RivaSpeechSynthesis"
DIALOG_API = "rivulet.dialog.v1.Dialog"


def turns_for(grpc_services: Iterable[str], options: TurnOptions | None = None) -> list[SmokeTurn]:
    """One smoke turn per deployed API, in the order NLU, ASR, TTS, Dialog (Dialog uses the others)."""
    o = options or TurnOptions()
    deployed = set(grpc_services)
    turns: list[SmokeTurn] = []
    if NLU_API in deployed:
        turns.append(NluIntentTurn(text=o.nlu_text, expect_intent=o.expect_intent))
    if ASR_API in deployed:
        turns.append(AsrConfigTurn(expect_model=o.asr_model))
    if TTS_API in deployed:
        turns.append(TtsSynthesizeTurn(text=o.tts_text, voice=o.tts_voice))
    if DIALOG_API in deployed:
        # Typed turns need NLU (and TTS for audio): ask for audio only when TTS is deployed here.
        turns.append(
            DialogTextTurn(text=o.dialog_text, synthesize_audio=o.dialog_audio and TTS_API in deployed)
        )
    return turns


def ingress_endpoint(ingress: Any, ca_cert: str | None = None) -> Endpoint | None:
    """The address clients use, from a V1Ingress: its load balancer's hostname or IP on 443 (TLS) or 80.

    When the load balancer is an IP and the rule names a host, TLS verifies that host name.
    """
    lb = ingress.status.load_balancer.ingress if ingress.status and ingress.status.load_balancer else None
    if not lb:
        return None
    target = lb[0].hostname or lb[0].ip
    if not target:
        return None
    tls = bool(ingress.spec.tls)
    host = next((r.host for r in ingress.spec.rules or [] if r.host), None)
    port = 443 if tls else 80
    if host and tls:
        # Dial the load balancer, verify and route by the host name (SNI and :authority).
        return Endpoint(f"{target}:{port}", tls=True, ca_cert=ca_cert, server_name=host)
    return Endpoint(f"{target}:{port}", tls=tls, ca_cert=ca_cert)


def run_turns(turns: list[SmokeTurn], endpoint: Endpoint | None, skip: bool = False) -> list[Check]:
    """Run every turn against the endpoint; without one the turns fail, unless skipping was asked for."""
    if skip:
        return [Check("smoke", t.name, Status.SKIP, "skipped (--skip-smoke)") for t in turns]
    if endpoint is None:
        why = "no client address: pass --address, or wait for the ingress to get a load-balancer address"
        return [Check("smoke", t.name, Status.FAIL, why) for t in turns]
    return [t.run(endpoint) for t in turns]
