"""rivulet.core.vad: the silence after real (synthesized) speech is measured from the audio, in
every streamed encoding and at any rate, whatever the chunk size; noise alone is not speech."""

from __future__ import annotations

import numpy as np
import pytest
from riva.proto import riva_audio_pb2 as ra

from rivulet import voices
from rivulet.core import audio
from rivulet.core.vad import SilenceTracker


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    samples, rate = voices.synthesize(voices.Voice.parse("flite:slt"), "set a timer for five minutes")
    return samples, rate


def feed(tracker: SilenceTracker, data: bytes, chunk_bytes: int) -> list[int]:
    return [tracker.feed(data[i : i + chunk_bytes]) for i in range(0, len(data), chunk_bytes)]


@pytest.mark.parametrize(
    ("encoding", "rate", "chunk_ms"),
    [(ra.LINEAR_PCM, 16000, 40), (ra.LINEAR_PCM, 44100, 100), (ra.MULAW, 8000, 20), (ra.ALAW, 8000, 160)],
)
def test_silence_after_speech_is_counted_from_its_end(speech, encoding, rate, chunk_ms):
    samples, native = speech
    talk = audio.resample(samples, native, rate)
    pause = np.zeros(rate * 600 // 1000, dtype=np.float32)  # 600 ms of silence after the words
    data = audio.encode(np.concatenate([talk, pause]), encoding, rate)
    bytes_per_ms = len(data) / ((len(talk) + len(pause)) * 1000 / rate)
    tracker = SilenceTracker(encoding, rate)
    assert tracker.available
    trail = feed(tracker, data, max(1, int(chunk_ms * bytes_per_ms)))
    assert max(trail[: len(trail) // 3]) < 300  # the words are speech (short gaps between them only)
    # the trailing silence is the pause (plus the last word's fading end), within a frame or two
    assert 560 <= trail[-1] <= 800, trail[-10:]


@pytest.mark.parametrize("voice", ["flite:slt", "flite:rms", "espeak-ng:en-us+m3", "festival:ked_diphone"])
def test_the_end_of_a_voice_is_placed_within_a_frame_or_two_despite_the_vad_hangover(voice):
    samples, native = voices.synthesize(voices.Voice.parse(voice), "book a table for two")
    talk = audio.resample(samples, native, 16000)
    loud = np.flatnonzero(np.abs(talk) > 0.03 * np.abs(talk).max())
    talk = talk[: loud[-1] + 1]  # the voice stops dead here
    pause = np.zeros(16000 * 400 // 1000, np.float32)
    tracker = SilenceTracker(ra.LINEAR_PCM, 16000)
    trail = feed(tracker, audio.encode(np.concatenate([talk, pause]), ra.LINEAR_PCM, 16000), 640)
    assert 360 <= trail[-1] <= 420, trail[-12:]


def test_steady_noise_is_not_speech():
    rng = np.random.default_rng(3)
    noise = (0.01 * rng.standard_normal(16000)).astype(np.float32)  # 1 s of faint hiss
    tracker = SilenceTracker(ra.LINEAR_PCM, 16000)
    trail = feed(tracker, audio.encode(noise, ra.LINEAR_PCM, 16000), 1280)
    assert trail[-1] >= 900


def test_whole_file_encodings_leave_endpointing_to_the_asr():
    tracker = SilenceTracker(ra.FLAC, 16000)
    assert not tracker.available
    assert tracker.feed(b"fLaC....") == 0


def test_speech_heard_is_counted_until_marked():
    """`speech_ms` lets the dialog end a turn the ASR has shown no word for (a faint, short "yes")."""
    samples, native = voices.synthesize(voices.Voice.parse("espeak-ng:en-us+m3"), "yes")
    talk = audio.resample(samples, native, 16000)
    pause = np.zeros(16000 * 300 // 1000, np.float32)
    data = audio.encode(np.concatenate([pause, talk, pause]), ra.LINEAR_PCM, 16000)
    tracker = SilenceTracker(ra.LINEAR_PCM, 16000)
    feed(tracker, data[: len(pause) * 2], 640)
    assert tracker.speech_ms == 0  # silence alone
    trail = feed(tracker, data[len(pause) * 2 :], 640)
    spoken_ms = len(talk) * 1000 / 16000
    assert 0.5 * spoken_ms <= tracker.speech_ms <= spoken_ms + 120 and trail[-1] >= 200
    tracker.mark()
    assert tracker.speech_ms == 0
