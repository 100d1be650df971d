"""Engine calls for the embedded synthesizer: flite in-process, festival long-lived, espeak-ng per call.

- flite: its C library through ctypes (``FliteLibrary``): the process start, voice registration
  and WAV round trip of the command line cost about 10 ms per piece, a third of a short first
  piece. flite keeps per-voice settings in the voice object, so calls are serialised by a lock
  (run one model instance per core rather than several flite threads in one process).
- festival spends about 0.3 s loading itself and a voice before it says anything, which would be
  paid on every piece; ``FestivalProcess`` keeps one ``festival`` running with the voice loaded and
  feeds it one utterance at a time over stdin (each worker thread owns its own process). The engine
  writes each utterance to a file of its own and prints a marker when done.
- espeak-ng starts in a few milliseconds: one short-lived process per piece, the text on stdin as
  UTF-8 (``-b 1``): Triton's python stub runs in the C locale, where non-ASCII text (``café``)
  cannot be passed as a command-line argument.
"""

from __future__ import annotations

import ctypes
import io
import math
import os
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np
import soundfile

from rivulet import voices

_MARKER = "@@RIVULET_DONE@@"


class _Wave(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_char_p),
        ("sample_rate", ctypes.c_int),
        ("num_samples", ctypes.c_int),
        ("num_channels", ctypes.c_int),
        ("samples", ctypes.POINTER(ctypes.c_short)),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("features", ctypes.c_void_p), ("ffunctions", ctypes.c_void_p)]


class FliteLibrary:
    """flite's C API: ``flite_text_to_wave`` on registered CMU voices, settings as the CLI's --setf."""

    def __init__(self) -> None:
        try:
            self.lib = ctypes.CDLL("libflite.so.1", mode=ctypes.RTLD_GLOBAL)
            for dependency in ("libflite_usenglish.so.1", "libflite_cmulex.so.1"):
                ctypes.CDLL(dependency, mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            raise voices.SynthesisError(f"flite's library is not installed ({exc})") from exc
        self.lib.flite_init()
        self.lib.flite_text_to_wave.restype = ctypes.POINTER(_Wave)
        self.lib.flite_text_to_wave.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        self.lib.feat_set_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_float]
        self.lib.get_param_float.restype = ctypes.c_float
        self.lib.get_param_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_float]
        self.lib.delete_wave.argtypes = [ctypes.POINTER(_Wave)]
        self._voices: dict[str, tuple[ctypes.POINTER(_Voice), float]] = {}
        self._lock = threading.Lock()

    def _voice(self, name: str):
        if name not in self._voices:
            try:
                library = ctypes.CDLL(f"libflite_cmu_us_{name}.so.1", mode=ctypes.RTLD_GLOBAL)
            except OSError as exc:
                raise voices.SynthesisError(f"flite voice {name!r} is not installed ({exc})") from exc
            register = getattr(library, f"register_cmu_us_{name}")
            register.restype = ctypes.POINTER(_Voice)
            register.argtypes = [ctypes.c_char_p]
            voice = register(None)
            mean_f0 = self.lib.get_param_float(voice.contents.features, b"int_f0_target_mean", 100.0)
            self._voices[name] = (voice, mean_f0)
        return self._voices[name]

    def synthesize(
        self, name: str, text: str, rate: float = 1.0, pitch: float = 1.0
    ) -> tuple[np.ndarray, int]:
        with self._lock:
            voice, mean_f0 = self._voice(name)
            features = voice.contents.features
            self.lib.feat_set_float(features, b"duration_stretch", 1.0 / rate)
            self.lib.feat_set_float(features, b"int_f0_target_mean", mean_f0 * pitch)
            wave = self.lib.flite_text_to_wave(text.encode("utf-8"), ctypes.cast(voice, ctypes.c_void_p))
            if not wave:
                raise voices.SynthesisError(f"flite ({name}) produced no audio")
            try:
                w = wave.contents
                samples = np.ctypeslib.as_array(w.samples, shape=(w.num_samples,)).astype(np.float32) / 32768
                return samples, int(w.sample_rate)
            finally:
                self.lib.delete_wave(wave)


class FestivalProcess:
    """One ``festival -i`` with ``voice`` loaded; ``synthesize`` is called from one thread at a time."""

    def __init__(self, voice: str, timeout_s: float = 30.0) -> None:
        self.voice = voice
        self.timeout_s = timeout_s
        self._dir = tempfile.TemporaryDirectory(prefix="rivulet-festival-")
        self._process: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        process = subprocess.Popen(
            ["festival", "-i"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._process = process
        self._command(f"(voice_{self.voice})")
        return process

    def _command(self, expression: str) -> str:
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        process.stdin.write(f'{expression}\n(format t "{_MARKER}\\n")\n'.encode())
        process.stdin.flush()
        out = b""
        fd = process.stdout.fileno()
        while _MARKER.encode() not in out:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise voices.SynthesisError(
                    f"festival ({self.voice}) exited: {out[-300:].decode(errors='replace')}"
                )
            out += chunk
        text = out.decode(errors="replace")
        if "SIOD ERROR" in text or "error" in text.lower().split(_MARKER)[0][-200:]:
            raise voices.SynthesisError(f"festival ({self.voice}): {text[-300:]}")
        return text

    def synthesize(self, text: str, rate: float = 1.0, pitch: float = 1.0) -> tuple[np.ndarray, int]:
        if self._process is None or self._process.poll() is not None:
            self._start()
        text = " ".join(text.replace("\\", " ").replace('"', " ").split())
        out = Path(self._dir.name) / "utt.wav"
        if self.voice.endswith("_hts"):
            # HTS voices take speed and pitch as hts_engine options (-r rate, -fm half-tones)
            semitones = 12 * math.log2(max(pitch, 1e-3))
            setup = (
                f"(set! hts_engine_params (append {self.voice}::hts_engine_params "
                f'(list (list "-r" {rate:.3f}) (list "-fm" {semitones:.3f}))))'
            )
        else:
            setup = f"(Parameter.set 'Duration_Stretch {1.0 / rate:.3f})"
        try:
            self._command(f'{setup} (utt.save.wave (utt.synth (Utterance Text "{text}")) "{out}" \'riff)')
        except voices.SynthesisError:
            self.close()  # a fresh process next time
            raise
        samples, sample_rate = soundfile.read(out, dtype="float32", always_2d=True)
        return samples[:, 0], int(sample_rate)

    def close(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._process = None


def _espeak(name: str, text: str, rate: float, pitch: float) -> tuple[np.ndarray, int]:
    command = ["espeak-ng", "-v", name, "-s", str(round(175 * rate)), "-p", str(round(50 * pitch))]
    command += ["-b", "1", "--stdout"]
    try:
        done = subprocess.run(
            command, input=text.encode("utf-8"), capture_output=True, timeout=60, check=False
        )
    except FileNotFoundError as exc:
        raise voices.SynthesisError(
            "espeak-ng is not installed (run scripts/ensure_speech_tools.sh)"
        ) from exc
    if done.returncode != 0:
        raise voices.SynthesisError(
            f"espeak-ng ({name}) failed: {done.stderr.decode(errors='replace')[-300:]}"
        )
    samples, rate_hz = soundfile.read(io.BytesIO(done.stdout), dtype="float32", always_2d=True)
    return samples[:, 0], int(rate_hz)


class EngineSet:
    """Speaks with any rivulet.voices voice; festival voices through per-thread long-lived processes."""

    def __init__(self) -> None:
        self._flite: FliteLibrary | None = None
        self._local = threading.local()
        self._all: list[FestivalProcess] = []
        self._lock = threading.Lock()

    def _festival(self, voice: str) -> FestivalProcess:
        processes = getattr(self._local, "festival", None)
        if processes is None:
            processes = self._local.festival = {}
        if voice not in processes:
            processes[voice] = FestivalProcess(voice)
            with self._lock:
                self._all.append(processes[voice])
        return processes[voice]

    def synthesize(self, voice: voices.Voice, text: str, rate: float = 1.0, pitch: float = 1.0):
        if voice.engine == "festival":
            return self._festival(voice.name).synthesize(text, rate, pitch)
        if voice.engine == "flite":
            if self._flite is None:
                with self._lock:
                    self._flite = self._flite or FliteLibrary()
            return self._flite.synthesize(voice.name, " ".join(text.split()), rate, pitch)
        if voice.engine == "espeak-ng":
            return _espeak(voice.name, text, rate, pitch)
        return voices.synthesize(voice, text, rate, pitch)

    def close(self) -> None:
        with self._lock:
            for process in self._all:
                process.close()
            self._all.clear()
