"""Hostile input against the real ASR and TTS (over TLS, with a key): a corpus of malformed audio,
and hypothesis-generated requests and stream orderings for every RPC. Each answer must be OK or a
precise client-side status with a message (never INTERNAL/UNKNOWN/UNAVAILABLE/DEADLINE_EXCEEDED),
the service must stay SERVING, and a well-formed stream running alongside must not be disturbed.

Profiles (RIVULET_FUZZ_PROFILE): `ci` (default, bounded) and `bench` (bench/fuzz.py, longer).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from riva.proto import riva_asr_pb2 as rasr
from riva.proto import riva_asr_pb2_grpc, riva_tts_pb2_grpc
from riva.proto import riva_tts_pb2 as rtts

from rivulet.core.processes import health_status
from tests.integration.security import outcomes
from tests.integration.security.conftest import ASR, TTS
from tests.integration.security.hostile_audio import LINEAR_PCM, OGGOPUS, RATE, corpus

pytestmark = pytest.mark.integration

PROFILE = os.environ.get("RIVULET_FUZZ_PROFILE", "ci")
EXAMPLES = int(os.environ.get("RIVULET_FUZZ_EXAMPLES") or {"ci": 30, "bench": 500}[PROFILE])
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=PROFILE == "ci",
)
TIMEOUT_S = 20.0
ENCODINGS = [0, 1, 2, 3, 4, 20, 5, 99]


def _call(rpc: str, case: str, fn: Callable[[], object]) -> None:
    """Run one call (draining a response stream) and record its status."""
    try:
        result = fn()
        if isinstance(result, Iterator):
            for _ in result:
                pass
    except grpc.RpcError as exc:
        outcomes.record(rpc, exc.code(), exc.details() or "", case)
        return
    outcomes.record(rpc, grpc.StatusCode.OK, "", case)


def _assert_no_server_failures() -> None:
    assert not outcomes.FAILURES, "\n".join(outcomes.FAILURES[:20])


class Witness:
    """A well-formed stream running while hostile input arrives; it must not end in an error."""

    def __init__(self, open_call: Callable[[Iterator], Iterator], first, then, interval_s: float = 0.05):
        self.open_call, self.first, self.then, self.interval_s = open_call, first, then, interval_s
        self.error: grpc.RpcError | None = None
        self.responses = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _requests(self) -> Iterator:
        yield self.first
        while not self._stop.wait(self.interval_s):
            yield self.then

    def _run(self) -> None:
        try:
            for _ in self.open_call(self._requests()):
                self.responses += 1
        except grpc.RpcError as exc:
            self.error = exc

    def __enter__(self) -> Witness:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
        assert self.error is None, f"a well-formed stream was disturbed: {self.error}"


def asr_witness(stub: riva_asr_pb2_grpc.RivaSpeechRecognitionStub) -> Witness:
    config = rasr.RecognitionConfig(encoding=LINEAR_PCM, sample_rate_hertz=RATE, language_code="en-US")
    first = rasr.StreamingRecognizeRequest(streaming_config=rasr.StreamingRecognitionConfig(config=config))
    chunk = rasr.StreamingRecognizeRequest(audio_content=b"\x01\x00" * 1600)  # 100 ms every 50 ms
    return Witness(lambda requests: stub.StreamingRecognize(requests, timeout=600), first, chunk)


def tts_witness(stub: riva_tts_pb2_grpc.RivaSpeechSynthesisStub) -> Witness:
    text = rtts.SynthesizeSpeechRequest(text="Still here.", sample_rate_hz=16_000, language_code="en-US")
    return Witness(lambda requests: stub.SynthesizeOnline(requests, timeout=600), text, text, 0.5)


# ------------------------------------------------------------------ the malformed-audio corpus


def test_malformed_audio_corpus_gets_precise_statuses(secure_asr):
    stub = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(secure_asr.channel())
    with asr_witness(stub):
        for case in corpus():
            config = rasr.RecognitionConfig(
                encoding=case.encoding,
                sample_rate_hertz=case.sample_rate_hertz,
                audio_channel_count=case.audio_channel_count,
                language_code="en-US",
            )
            request = rasr.RecognizeRequest(config=config, audio=case.audio)
            _call(
                "ASR Recognize (audio corpus)",
                case.name,
                lambda r=request: stub.Recognize(r, timeout=TIMEOUT_S),
            )
            streaming = rasr.StreamingRecognitionConfig(config=config)
            messages = [rasr.StreamingRecognizeRequest(streaming_config=streaming)]
            messages += [
                rasr.StreamingRecognizeRequest(audio_content=case.audio[i : i + 4000])
                for i in range(0, len(case.audio), 4000)
            ]
            _call(
                "ASR StreamingRecognize (audio corpus)",
                case.name,
                lambda m=messages: stub.StreamingRecognize(iter(m), timeout=TIMEOUT_S),
            )
    assert health_status(secure_asr.process.address, ASR, secure_asr.certs.ca) == "SERVING"
    _assert_no_server_failures()


# ------------------------------------------------------------------ generated ASR requests

wild_floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
texts = st.text(max_size=60)
rates = st.one_of(
    st.sampled_from([0, 8000, 16000, 22050, 44100, 48000, 96000]), st.integers(-(2**31), 2**31 - 1)
)


def mostly(valid, wild: st.SearchStrategy) -> st.SearchStrategy:
    """`valid` about three times in four, else `wild`."""
    valid = valid if isinstance(valid, st.SearchStrategy) else st.just(valid)
    return st.one_of(valid, valid, valid, wild)


floats = mostly(st.floats(0, 100, width=32), wild_floats)
ANY_INT32 = st.integers(-(2**31), 2**31 - 1)


class Mutations:
    """A valid request with at most two fields drawn wild: about a third of the requests are fully
    valid and reach decoding, endpointing, biasing and synthesis; the rest probe one check at a time
    (drawing every field wild would stop nearly all of them at the first check)."""

    def __init__(self, draw, fields: tuple[str, ...]) -> None:
        self.draw = draw
        self.wild = draw(st.sets(st.sampled_from(fields), max_size=2))

    def __call__(self, field: str, valid, wild: st.SearchStrategy):
        if field in self.wild:
            return self.draw(wild)
        return self.draw(valid) if isinstance(valid, st.SearchStrategy) else valid


ASR_FIELDS = ("encoding", "rate", "language", "alternatives", "channels", "model", "contexts", "endpointing",
              "custom", "diarization")  # fmt: skip


@st.composite
def recognition_configs(draw) -> rasr.RecognitionConfig:
    pick = Mutations(draw, ASR_FIELDS)
    config = rasr.RecognitionConfig(
        encoding=pick("encoding", LINEAR_PCM, st.sampled_from(ENCODINGS)),
        sample_rate_hertz=pick("rate", st.sampled_from([8000, 16000, 22050, 44100, 48000]), rates),
        language_code=pick(
            "language", "en-US", st.one_of(st.sampled_from(["", "en-GB", "de-DE", "EN-us"]), texts)
        ),
        max_alternatives=pick("alternatives", st.integers(0, 5), ANY_INT32),
        audio_channel_count=pick("channels", st.sampled_from([0, 1]), ANY_INT32),
        enable_word_time_offsets=draw(st.booleans()),
        enable_automatic_punctuation=draw(st.booleans()),
        profanity_filter=draw(st.booleans()),
        verbatim_transcripts=draw(st.booleans()),
        model=pick("model", st.sampled_from(["", "asr_streaming"]), st.one_of(st.just("nope"), texts)),
    )
    boosts = pick("contexts", st.floats(-50, 100, width=32), wild_floats)
    for _ in range(draw(st.integers(0, 2))):
        config.speech_contexts.add(phrases=draw(st.lists(texts, max_size=5)), boost=boosts)
    if "endpointing" in pick.wild or draw(st.booleans()):
        history = ANY_INT32 if "endpointing" in pick.wild else st.integers(1, 2000)
        threshold = wild_floats if "endpointing" in pick.wild else st.floats(0.01, 1)
        config.endpointing_config.start_history = draw(history)
        config.endpointing_config.stop_history = draw(history)
        config.endpointing_config.start_threshold = draw(threshold)
        config.endpointing_config.stop_threshold = draw(threshold)
    custom = st.dictionaries(st.sampled_from(["lm_search", "x", ""]), texts, max_size=2)
    for key, value in pick("custom", st.sampled_from([{}, {"lm_search": "open"}]), custom).items():
        config.custom_configuration[key] = value
    if pick("diarization", False, st.just(True)):
        config.diarization_config.enable_speaker_diarization = True
    return config


def pcm_audio() -> st.SearchStrategy[bytes]:
    extreme = st.lists(st.sampled_from([-32768, 32767, 0, 1, -1]), max_size=8000).map(
        lambda xs: b"".join(int(x).to_bytes(2, "little", signed=True) for x in xs)
    )
    even = st.binary(min_size=2, max_size=16000).map(lambda b: b[: len(b) // 2 * 2])  # whole 16-bit samples
    wild = st.one_of(st.binary(max_size=16000), st.sampled_from([c.audio for c in corpus()]))
    return mostly(st.one_of(even, extreme), wild)


@FUZZ
@given(config=recognition_configs(), audio=pcm_audio())
def test_generated_recognize_requests(secure_asr, config, audio):
    stub = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(secure_asr.channel())
    request = rasr.RecognizeRequest(config=config, audio=audio)
    _call("ASR Recognize", str(config)[:300], lambda: stub.Recognize(request, timeout=TIMEOUT_S))
    _assert_no_server_failures()


config_message = recognition_configs().map(
    lambda c: rasr.StreamingRecognizeRequest(streaming_config=rasr.StreamingRecognitionConfig(config=c))
)
any_message = st.one_of(
    config_message,
    pcm_audio().map(lambda a: rasr.StreamingRecognizeRequest(audio_content=a[:8000])),
    st.just(rasr.StreamingRecognizeRequest()),
)
# Mostly a config first (then any order of audio, repeated configs and empty messages), sometimes anything.
stream_messages = mostly(
    st.tuples(config_message, st.lists(any_message, max_size=6)).map(lambda t: [t[0], *t[1]]),
    st.lists(any_message, max_size=6),
)


@FUZZ
@given(messages=stream_messages)
def test_generated_streaming_recognize_orderings(secure_asr, messages):
    stub = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(secure_asr.channel())
    case = " | ".join(m.WhichOneof("streaming_request") or "empty" for m in messages)
    _call("ASR StreamingRecognize", case, lambda: stub.StreamingRecognize(iter(messages), timeout=TIMEOUT_S))
    _assert_no_server_failures()


# ------------------------------------------------------------------ generated TTS requests

CONTROL = "".join(chr(c) for c in [*range(0, 32), 127, 0x200B, 0x202E, 0xFEFF])
SSML_TAGS = ["speak", "prosody", "break", "sub", "phoneme", "emphasis", "say-as", "p", "s", "voice", "x"]


@st.composite
def ssml(draw) -> str:
    """SSML-like text: nested (sometimes unbalanced) tags with junk attributes and control characters."""
    depth = draw(st.integers(0, 80))
    tags = [draw(st.sampled_from(SSML_TAGS)) for _ in range(depth)]
    attributes = st.sampled_from(
        [
            "",
            ' rate="200%"',
            ' pitch="+900st"',
            ' time="99999s"',
            ' alias=""',
            ' ph="&#0;"',
            ' rate="x"',
            " a=<",
        ]
    )
    inner = draw(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(CONTROL), max_size=80))
    opened = "".join(f"<{t}{draw(attributes)}>" for t in tags)
    closed = "".join(f"</{t}>" for t in reversed(tags[: draw(st.integers(0, len(tags)))]))
    root = draw(st.sampled_from(["<speak>", "", "<speak", "<?xml version='1.0'?><speak>"]))
    return root + opened + inner + closed + draw(st.sampled_from(["</speak>", "", "</speak></speak>"]))


WORDS = ["the", "table", "for", "4", "at", "7:30", "p.m.", "on", "12/25/2026", "$3.50", "Dr.", "St.",
         "50%", "1st", "km", "hello", "world", "Ünïcödé", "naïve", "déjà", "—", "…", "?!", "I'm", "can't",
         "(", ")"]  # fmt: skip
tts_texts = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=40).map(" ".join),  # ordinary-looking sentences
    st.text(max_size=200),
    st.text(alphabet=st.sampled_from(CONTROL + "a ."), max_size=200),
    st.integers(1, 5000).map(lambda n: "a" * n),  # very long words
    st.integers(1, 700).map(lambda n: "12345678901234567890 " * n),  # numbers to spell out, to over the limit
    ssml(),
    st.just(""),
)


@st.composite
def synthesize_requests(draw) -> rtts.SynthesizeSpeechRequest:
    pick = Mutations(draw, ("language", "encoding", "rate", "voice", "dictionary"))
    voices = st.sampled_from(["", "English-US.Male-2", "English-US.Female-1", "English-US.Male-1"])
    return rtts.SynthesizeSpeechRequest(
        text=draw(tts_texts),
        language_code=pick("language", "en-US", st.one_of(st.sampled_from(["", "fr-FR"]), texts)),
        encoding=pick("encoding", st.sampled_from([LINEAR_PCM, OGGOPUS]), st.sampled_from(ENCODINGS)),
        sample_rate_hz=pick("rate", st.sampled_from([8000, 16000, 22050, 48000]), rates),
        voice_name=pick("voice", voices, texts),
        custom_dictionary=pick(
            "dictionary",
            "",
            st.one_of(texts, st.just("hello  HH AH0 L OW1,world  ˈwɜːld"), st.just("  ,,  ")),
        ),
    )


@FUZZ
@given(request=synthesize_requests())
def test_generated_synthesize_requests(secure_tts, request):
    stub = riva_tts_pb2_grpc.RivaSpeechSynthesisStub(secure_tts.channel())
    _call("TTS Synthesize", repr(request.text[:200]), lambda: stub.Synthesize(request, timeout=TIMEOUT_S))
    _assert_no_server_failures()


@FUZZ
@given(messages=st.lists(synthesize_requests(), max_size=4))
def test_generated_synthesize_online_orderings(secure_tts, messages):
    stub = riva_tts_pb2_grpc.RivaSpeechSynthesisStub(secure_tts.channel())
    case = " | ".join(repr(m.text[:40]) for m in messages)
    _call("TTS SynthesizeOnline", case, lambda: stub.SynthesizeOnline(iter(messages), timeout=TIMEOUT_S))
    _assert_no_server_failures()


def test_tts_stays_serving_and_undisturbed_under_hostile_text(secure_tts):
    """Deep nesting, control characters, long words and huge breaks, with a well-formed
    SynthesizeOnline stream alongside."""
    stub = riva_tts_pb2_grpc.RivaSpeechSynthesisStub(secure_tts.channel())
    with tts_witness(stub) as witness:
        for index in range(40):
            request = _fixed_hostile_text(index)
            _call(
                "TTS Synthesize (with witness)",
                repr(request.text[:80]),
                lambda r=request: stub.Synthesize(r, timeout=TIMEOUT_S),
            )
    assert witness.responses > 0
    assert health_status(secure_tts.process.address, TTS, secure_tts.certs.ca) == "SERVING"
    _assert_no_server_failures()


def _fixed_hostile_text(index: int) -> rtts.SynthesizeSpeechRequest:
    nested = (
        "<speak>" + "<prosody rate='150%'>" * (index * 5) + "deep" + "</prosody>" * (index * 5) + "</speak>"
    )
    texts = [
        nested,
        "\x00\x07\x1b[31m" * index,
        "w" * (100 * index + 1),
        f"<speak><break time='{index}00000s'/></speak>",
    ]
    return rtts.SynthesizeSpeechRequest(text=texts[index % 4], sample_rate_hz=16_000, language_code="en-US")


def test_nan_boost_is_rejected_or_ignored_not_crashing(secure_asr):
    """A NaN or infinite boost (float fields carry them on the wire) gets a precise answer."""
    stub = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(secure_asr.channel())
    for boost in (math.nan, math.inf, -math.inf):
        config = rasr.RecognitionConfig(encoding=LINEAR_PCM, sample_rate_hertz=RATE, language_code="en-US")
        config.speech_contexts.add(phrases=["seven"], boost=boost)
        request = rasr.RecognizeRequest(config=config, audio=b"\x01\x00" * 16000)
        _call("ASR Recognize (NaN boost)", str(boost), lambda r=request: stub.Recognize(r, timeout=TIMEOUT_S))
    _assert_no_server_failures()
