"""The offline synthetic voices of this machine: espeak-ng, flite and festival (Debian packages).

One place knows how to make each engine speak. Two users:

- the embedded TTS (a Triton python model) speaks with the chosen voices;
- the ASR data pipeline makes training and test audio with many voices and variants.

``synthesize(voice, text, rate=1.0, pitch=1.0)`` runs the engine's command line and returns mono
float32 audio with its native sample rate. ``rate`` scales speaking speed (2.0 = twice as fast)
and ``pitch`` the voice's pitch, each engine in its own native way. Nothing here imports the rest
of Rivulet, so a Triton model can import it.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

# espeak-ng English dialects (``espeak-ng --voices=en``; the mbrola ones need extra packages).
ESPEAK_DIALECTS = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-rp",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
# espeak-ng voice variants (``voices/!v``): a few of each kind; any name there works.
ESPEAK_FEMALE_VARIANTS = (
    "f1", "f2", "f3", "f4", "f5", "anika", "belinda", "linda", "steph", "aunty", "shelby",
)  # fmt: skip
ESPEAK_MALE_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "adam", "david", "edward", "john", "max", "paul",
    "robert", "klatt", "klatt2", "klatt3", "klatt4", "quincy", "travis", "victor", "norbert", "iven",
)  # fmt: skip

FLITE_VOICES = {"slt": "female", "rms": "male", "awb": "male", "kal16": "male", "kal": "male"}
FESTIVAL_VOICES = {"cmu_us_slt_arctic_hts": "female", "kal_diphone": "male", "ked_diphone": "male"}

ENGINE_BINARIES = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}


class SynthesisError(RuntimeError):
    """An engine failed or is not installed."""


@dataclass(frozen=True)
class Voice:
    """One synthetic voice: ``engine`` plus the engine's own voice name (``en-us+f3``, ``slt``)."""

    engine: str
    name: str
    gender: str

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}"

    @classmethod
    def parse(cls, voice_id: str) -> Voice:
        engine, _, name = voice_id.partition(":")
        for voice in all_voices():
            if voice.engine == engine and voice.name == name:
                return voice
        if engine == "espeak-ng" and name:
            return cls(engine, name, "female" if "+f" in name else "male")
        raise SynthesisError(f"unknown voice {voice_id!r}")


def engine_available(engine: str) -> bool:
    return shutil.which(ENGINE_BINARIES[engine]) is not None


def all_voices() -> list[Voice]:
    """Every English voice of the installed engines (espeak-ng: each dialect × variant)."""
    voices: list[Voice] = []
    if engine_available("espeak-ng"):
        for dialect in ESPEAK_DIALECTS:
            voices.append(Voice("espeak-ng", dialect, "male"))
            voices += [Voice("espeak-ng", f"{dialect}+{v}", "female") for v in ESPEAK_FEMALE_VARIANTS]
            voices += [Voice("espeak-ng", f"{dialect}+{v}", "male") for v in ESPEAK_MALE_VARIANTS]
    if engine_available("flite"):
        voices += [Voice("flite", name, gender) for name, gender in FLITE_VOICES.items()]
    if engine_available("festival"):
        voices += [Voice("festival", name, gender) for name, gender in FESTIVAL_VOICES.items()]
    return voices


def _read_wav(data: bytes, what: str) -> tuple[np.ndarray, int]:
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise SynthesisError(f"{what} produced no readable audio: {exc}") from exc
    return samples[:, 0], int(rate)


def _run(cmd: list[str], what: str, stdin: bytes | None = None, timeout: float = 60.0) -> bytes:
    try:
        done = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise SynthesisError(f"{cmd[0]} is not installed (run scripts/ensure_speech_tools.sh)") from exc
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace")[-300:]
        raise SynthesisError(f"{what} failed ({done.returncode}): {detail}")
    return done.stdout


def synthesize(voice: Voice, text: str, rate: float = 1.0, pitch: float = 1.0) -> tuple[np.ndarray, int]:
    """Speak ``text`` with ``voice`` → (mono float32 samples, sample rate)."""
    text = " ".join(text.split())
    if not text:
        return np.zeros(0, dtype=np.float32), 16000
    if voice.engine == "espeak-ng":
        cmd = ["espeak-ng", "-v", voice.name, "-s", str(round(175 * rate)), "-p", str(round(50 * pitch))]
        return _read_wav(_run([*cmd, "--stdout", text], voice.id), voice.id)
    if voice.engine == "flite":
        # flite writes WAV to the -o path; /dev/stdout works and avoids a temporary file.
        cmd = ["flite", "-voice", voice.name, "--setf", f"duration_stretch={1.0 / rate:.3f}"]
        if pitch != 1.0:
            mean_f0 = (100 if voice.gender == "male" else 160) * pitch
            cmd += ["--setf", f"int_f0_target_mean={round(mean_f0)}"]
        return _read_wav(_run([*cmd, "-t", text, "-o", "/dev/stdout"], voice.id), voice.id)
    if voice.engine == "festival":
        # text2wave seeks in its output file, so it needs a real file rather than a pipe.
        setup = f"(voice_{voice.name}) (Parameter.set 'Duration_Stretch {1.0 / rate:.3f})"
        with tempfile.TemporaryDirectory(prefix="rivulet-festival-") as tmp:
            out = Path(tmp) / "speech.wav"
            _run(["text2wave", "-eval", setup, "-o", str(out)], voice.id, stdin=text.encode())
            return _read_wav(out.read_bytes(), voice.id)
    raise SynthesisError(f"unknown engine {voice.engine!r}")
