"""The voice stack for dialog tests and benchmarks, and a Converse client that behaves like a microphone.

`SpeechStack` starts the real parts as processes on free ports: tritonserver (NLU, ASR and TTS
models), the NLU, ASR and TTS services, and one or more dialog replicas. `VoiceClient` opens a
Converse stream, sends synthesized user speech paced like a microphone (a chunk leaves when its
last sample has been "recorded"), and timestamps every message the server sends back, so "end of
user speech → first reply audio" is measured at the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import grpc
import numpy as np

from rivulet.core import audio
from rivulet.core.processes import ROOT, ServiceProcess, free_port, wait_for_health
from rivulet.core.tritonserver import TritonServer
from rivulet.dialog.v1 import dialog_pb2 as pb
from rivulet.dialog.v1 import dialog_pb2_grpc
from rivulet.voices import Voice, synthesize

RATE = 16_000
PLACES = {
    "paris": (48.85341, 2.3488, "Paris", "France"),
    "boston": (42.35843, -71.05977, "Boston", "United States"),
}


class OpenMeteoHandler(BaseHTTPRequestHandler):
    """`/v1/search` (geocoding) and `/v1/forecast` (daily) in Open-Meteo's JSON shapes. The forecast
    is a deterministic function of the date so tests can check which day was asked for."""

    requests: list[tuple[str, dict]] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        type(self).requests.append((url.path, query))
        if url.path == "/v1/search":
            place = PLACES.get(query.get("name", "").lower())
            body = {"generationtime_ms": 0.5}
            if place:
                lat, lon, name, country = place
                body["results"] = [
                    {
                        "id": 1,
                        "name": name,
                        "latitude": lat,
                        "longitude": lon,
                        "country": country,
                        "timezone": "Europe/Paris" if name == "Paris" else "America/New_York",
                    }
                ]
        elif url.path == "/v1/forecast":
            day = dt.date.fromisoformat(query["start_date"])
            offset = day.toordinal() % 10
            body = {
                "latitude": float(query["latitude"]),
                "longitude": float(query["longitude"]),
                "daily_units": {
                    "time": "iso8601",
                    "temperature_2m_max": "°C",
                    "temperature_2m_min": "°C",
                    "weather_code": "wmo code",
                    "precipitation_probability_max": "%",
                },
                "daily": {
                    "time": [day.isoformat()],
                    "weather_code": [61 if offset % 2 else 1],
                    "temperature_2m_max": [10.0 + offset],
                    "temperature_2m_min": [2.0 + offset],
                    "precipitation_probability_max": [80 if offset % 2 else 0],
                },
            }
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def open_meteo_server():
    """A real local HTTP server speaking the Open-Meteo API format; yields its forecast URL."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), OpenMeteoHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/forecast"
    finally:
        server.shutdown()
        server.server_close()


def expected_forecast(day: dt.date) -> tuple[int, int, str]:
    offset = day.toordinal() % 10
    return 2 + offset, 10 + offset, "light rain" if offset % 2 else "mostly clear skies"


# Voices the ASR model never heard in training (pipelines/asr/data.py: is_held_out_voice).
HELD_OUT_VOICES = (  # the most human-like first: Whisper (the finals) mishears espeak-ng's formant voices
    "festival:ked_diphone",
    "flite:rms",
    "espeak-ng:en-us+f3",
    "espeak-ng:en-us+m3",
    "espeak-ng:en+david",
    "espeak-ng:en-gb+steph",
)
MODELS = {
    "nlu": "intent_assistant",
    "asr": "asr_streaming",
    "tts": "tts_embedded",
    "second_pass": "asr_whisper",
}


def has_weights(model_dir: Path) -> bool:
    """A model directory whose version folder holds more than code (built weights)."""
    version = model_dir / "1"
    return version.is_dir() and any(
        p.suffix not in (".py", ".pyc") and p.is_file() for p in version.iterdir()
    )


def find_model(name: str, *repositories: Path) -> Path | None:
    for repository in repositories:
        candidate = repository / name
        code_only = name in (MODELS["tts"], MODELS["second_pass"])  # engines or pinned wheels: no build
        if (candidate / "config.pbtxt").is_file() and (code_only or has_weights(candidate)):
            return candidate
    return None


def compose_repository(dest: Path, sources: dict[str, Path]) -> Path:
    """A model repository of copies of the given model directories (Triton reads it; we never write
    to the project's `models/`)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        target = dest / name
        if not target.exists():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@functools.cache
def user_speech(text: str, voice: str = HELD_OUT_VOICES[0], lead_s: float = 0.25, tail_s: float = 0.8):
    """`text` spoken by `voice` as 16 kHz PCM16 bytes, and where the speech ends (s): leading and
    trailing silence added (the tail must be longer than the end-of-turn silence)."""
    samples, rate = synthesize(Voice.parse(voice), text)
    samples = audio.resample(samples, rate, RATE).astype(np.float32)
    samples = 0.7 * samples / max(1e-6, float(np.abs(samples).max()))
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    samples = samples[: loud[-1] + 1] if len(loud) else samples
    lead = np.zeros(int(lead_s * RATE), np.float32)
    tail = np.zeros(int(tail_s * RATE), np.float32)
    pcm = audio.encode(np.concatenate([lead, samples, tail]), audio.LINEAR_PCM, RATE)
    return pcm, lead_s + len(samples) / RATE


@dataclass
class Received:
    t: float
    message: pb.ConverseResponse

    @property
    def kind(self) -> str:
        return self.message.WhichOneof("response")


@dataclass
class Turn:
    """What came back for one user turn, with client-side times (perf_counter seconds)."""

    speech_end: float
    messages: list[Received] = field(default_factory=list)

    def of(self, kind: str) -> list[pb.ConverseResponse]:
        return [r.message for r in self.messages if r.kind == kind]

    @property
    def transcript(self) -> str:
        finals = [m.transcript.text for m in self.of("transcript") if m.transcript.is_final]
        return finals[-1] if finals else ""

    @property
    def reply(self) -> pb.Reply | None:
        replies = self.of("reply")
        return replies[-1].reply if replies else None

    @property
    def first_audio(self) -> float:
        return next((r.t for r in self.messages if r.kind == "audio"), 0.0)

    @property
    def latency_ms(self) -> float:
        """End of the user's speech → first reply audio at the client."""
        return (self.first_audio - self.speech_end) * 1000 if self.first_audio else float("nan")

    @property
    def server_latency(self) -> pb.TurnLatency | None:
        found = self.of("latency")
        return found[-1].latency if found else None

    def audio(self) -> bytes:
        return b"".join(m.audio.audio for m in self.of("audio"))


def turn_ended(r: Received) -> bool:
    """A turn ends with its latency message, or with an error that stops it (a TTS error does not:
    the turn goes on to its latency message)."""
    return r.kind == "latency" or (r.kind == "error" and r.message.error.stage != "tts")


class VoiceClient:
    """One Converse stream: speak audio like a microphone, type text, and read what comes back."""

    def __init__(
        self,
        address: str,
        session_id: str,
        *,
        voice: bool = True,
        barge_in: bool = True,
        interim: bool = True,
        chunk_ms: int = 40,
        backchannels: tuple[str, ...] = (),
        channel_options: tuple[tuple[str, str | int], ...] = (),
        stop_silence_ms: int = 160,
    ) -> None:
        self.address, self.session_id, self.chunk_ms = address, session_id, chunk_ms
        self.channel_options = channel_options  # e.g. a load-balancing policy over several replicas
        self.config = pb.ConverseConfig(
            session_id=session_id,
            audio=pb.AudioFormat(encoding=audio.LINEAR_PCM, sample_rate_hz=RATE),
            voice=pb.VoiceConfig(enabled=voice, sample_rate_hz=RATE),
            barge_in=pb.BargeInConfig(enabled=barge_in, backchannels=list(backchannels)),
            endpointing=pb.EndpointingSettings(stop_silence_ms=stop_silence_ms),
            interim_results=interim,
        )
        self.received: list[Received] = []
        self._arrived = asyncio.Event()
        self._outbox: asyncio.Queue = asyncio.Queue()

    async def __aenter__(self) -> VoiceClient:
        self.channel = grpc.aio.insecure_channel(self.address, options=list(self.channel_options))
        self.call = dialog_pb2_grpc.DialogStub(self.channel).Converse(self._requests())
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> grpc.StatusCode:
        self._outbox.put_nowait(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self._reader), 30)
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader
        code = await self.call.code() if self.call.done() else grpc.StatusCode.CANCELLED
        self.call.cancel()
        await self.channel.close()
        return code

    async def _requests(self):
        yield pb.ConverseRequest(config=self.config)
        while (item := await self._outbox.get()) is not None:
            yield item

    async def _read(self) -> None:
        async for message in self.call:
            self.received.append(Received(time.perf_counter(), message))
            self._arrived.set()

    def send(self, request: pb.ConverseRequest) -> None:
        self._outbox.put_nowait(request)

    async def speak(self, pcm: bytes, speech_end_s: float, realtime: float = 1.0) -> float:
        """Send `pcm` paced at `realtime` × real time; returns the wall time at which the speech ended
        (the moment the user fell silent, as a microphone would have recorded it)."""
        step = int(RATE * 2 * self.chunk_ms / 1000)
        start = time.perf_counter()
        for i in range(0, len(pcm), step):
            due = start + (i + step) / (RATE * 2) / realtime  # the chunk is complete at this time
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            self.send(pb.ConverseRequest(audio=pcm[i : i + step]))
        return start + speech_end_s / realtime

    def type(self, text: str) -> float:
        self.send(pb.ConverseRequest(text=text))
        return time.perf_counter()

    async def wait_for(
        self, predicate: Callable[[Received], bool], since: int = 0, timeout_s: float = 30.0
    ) -> int:
        """Index of the first message from `since` on that satisfies `predicate`."""
        deadline = time.perf_counter() + timeout_s
        i = since
        while True:
            while i < len(self.received):
                if predicate(self.received[i]):
                    return i
                i += 1
            if self._reader.done():
                self._reader.result()
                raise AssertionError(f"stream ended; got {[r.message for r in self.received[since:]]}")
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(
                    f"no such message in {timeout_s}s; got {[r.kind for r in self.received[since:]]}"
                )
            self._arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def turn(
        self, pcm: bytes, speech_end_s: float, timeout_s: float = 60.0, realtime: float = 1.0
    ) -> Turn:
        """Speak one turn and collect everything up to its latency message (the end of a turn)."""
        since = len(self.received)
        end = await self.speak(pcm, speech_end_s, realtime)
        done = await self.wait_for(turn_ended, since, timeout_s)
        return Turn(end, self.received[since : done + 1])

    async def text_turn(self, text: str, timeout_s: float = 60.0) -> Turn:
        since = len(self.received)
        sent = self.type(text)
        done = await self.wait_for(turn_ended, since, timeout_s)
        return Turn(sent, self.received[since : done + 1])


class SpeechStack:
    """tritonserver + NLU/ASR/TTS services + `replicas` dialog services, all real processes."""

    def __init__(
        self,
        workdir: Path,
        repository: Path,
        models: list[str],
        redis_url: str,
        replicas: int = 1,
        dialog_env: dict | None = None,
        triton_url: str = "",
        service_env: dict[str, dict] | None = None,
    ) -> None:
        """`service_env`: settings per service kind ("asr", "nlu", "tts") beside the defaults."""
        self.workdir, self.repository, self.models = workdir, repository, models
        self.service_env = service_env or {}
        self.redis_url, self.replicas, self.dialog_env = redis_url, replicas, dialog_env or {}
        self.triton_url = triton_url
        self.triton: TritonServer | None = None
        self.services: dict[str, ServiceProcess] = {}
        self.dialogs: list[ServiceProcess] = []

    def start(self) -> SpeechStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.triton_url:
            self.triton = TritonServer(
                self.repository,
                grpc_port=free_port(),
                http_port=free_port(),
                metrics_port=free_port(),
                log_file=self.workdir / "tritonserver.log",
                extra_args=["--model-control-mode=explicit", *(f"--load-model={m}" for m in self.models)],
            )
            self.triton.start()
            self.triton.wait_ready(self.models, 600)
            self.triton_url = self.triton.grpc_url
        names = {
            "nlu": "nvidia.riva.nlp.RivaLanguageUnderstanding",
            "asr": "nvidia.riva.asr.RivaSpeechRecognition",
            "tts": "nvidia.riva.tts.RivaSpeechSynthesis",
        }
        for kind, model in MODELS.items():
            if model not in self.models or kind not in names:  # asr_whisper is the ASR service's
                continue
            env = {"triton_url": self.triton_url, "readiness_interval_s": 0.2}
            if kind == "asr":  # language models are read from the repository Triton serves
                env["asr_model_repository"] = str(self.repository)
            env.update(self.service_env.get(kind, {}))
            service = ServiceProcess(f"rivulet.{kind}", self.workdir / f"{kind}.log", env)
            self.services[kind] = service.start()
        for kind, service in self.services.items():
            wait_for_health(service.address, service=names[kind], timeout_s=180)
        for i in range(self.replicas):
            self.start_dialog(i)
        return self

    def dialog_settings(self) -> dict:
        dead = f"127.0.0.1:{free_port()}"
        env = {"redis_url": self.redis_url, "readiness_interval_s": 0.2, "log_format": "text"}
        for kind in ("nlu", "asr", "tts"):
            env[f"dialog_{kind}_url"] = self.services[kind].address if kind in self.services else dead
        env.update(self.dialog_env)
        return env

    def start_dialog(self, index: int) -> ServiceProcess:
        service = ServiceProcess(
            "rivulet.dialog", self.workdir / f"dialog-{index}-{time.time():.0f}.log", self.dialog_settings()
        ).start()
        wait_for_health(service.address, service="rivulet.dialog.v1.Dialog", timeout_s=60)
        if index < len(self.dialogs):
            self.dialogs[index] = service
        else:
            self.dialogs.append(service)
        return service

    def speculations(self) -> dict[str, int]:
        """The dialog replicas' speculations so far, by outcome (their Prometheus counters)."""
        counts: dict[str, int] = {}
        for service in self.dialogs:
            for sample in service.metric_samples():
                if sample.name == "rivulet_dialog_speculations_total":
                    outcome = sample.labels["outcome"]
                    counts[outcome] = counts.get(outcome, 0) + int(sample.value)
        return counts

    def stop(self) -> None:
        for service in [*self.dialogs, *self.services.values()]:
            with contextlib.suppress(Exception):
                service.stop()
        if self.triton:
            self.triton.stop()

    def __enter__(self) -> SpeechStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def default_sources(extra: tuple[Path, ...] = ()) -> dict[str, Path]:
    """Where each model of the voice stack is found: RIVULET_DIALOG_TEST_REPOSITORY /
    RIVULET_ASR_TEST_REPOSITORY (if set), then `extra`, then the project's `models/`."""
    repositories = [
        Path(p)
        for p in (
            os.environ.get("RIVULET_DIALOG_TEST_REPOSITORY"),
            os.environ.get("RIVULET_ASR_TEST_REPOSITORY"),
        )
        if p
    ]
    repositories += [*extra, ROOT / "models"]
    found = {}
    for model in MODELS.values():
        path = find_model(model, *repositories)
        if path:
            found[model] = path
    return found
