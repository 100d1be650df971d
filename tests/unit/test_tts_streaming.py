"""Piece splitting, silence trimming, the first-audio-first scheduler, text buffering, audio output."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
import soundfile

from rivulet.core import audio as core_audio
from rivulet.tts.audio_out import AudioOutput, check_output_format, opus_rate
from rivulet.tts.chunking import (
    CLAUSE_PAUSE_MS,
    PHRASE_PAUSE_MS,
    SENTENCE_PAUSE_MS,
    split_sentences,
    split_text,
    trim_silence,
)
from rivulet.tts.servicer import TextBuffer
from rivulet.tts.streaming import FirstAudioFirstPool, Item, Job, script_items


def test_sentences_and_phoneme_input_are_kept_whole():
    assert split_sentences("Hello there. How are you? Fine!") == ["Hello there.", "How are you?", "Fine!"]
    assert split_sentences("Say [[t@m'A:. toU]] now. Next.") == ["Say [[t@m'A:. toU]] now.", "Next."]


def test_first_piece_is_cut_before_a_phrase_starter():
    pieces = split_text("please set an alarm for seven thirty tomorrow morning in the kitchen", first_words=4)
    assert [p.text for p in pieces] == [
        "please set an alarm",
        "for seven thirty tomorrow morning in the kitchen",
    ]
    assert pieces[0].pause_after_ms == PHRASE_PAUSE_MS and pieces[1].pause_after_ms == SENTENCE_PAUSE_MS
    assert [p.text for p in split_text("short one here", first_words=4)] == ["short one here"]


def test_long_sentences_are_cut_at_clauses_then_conjunctions():
    text = ("When the rain stops tomorrow afternoon after lunch, we will walk to the old harbour by the sea "
            "and we will eat fish and chips on the pier until the sun goes down behind the hills.")  # fmt: skip  # noqa: E501
    pieces = split_text(text, max_words=10)
    assert pieces[0].text == "When the rain stops tomorrow afternoon after lunch,"
    assert pieces[0].pause_after_ms == CLAUSE_PAUSE_MS
    assert all(len(p.text.split()) <= 10 for p in pieces)
    assert " ".join(p.text for p in pieces) == text
    assert pieces[-1].pause_after_ms == SENTENCE_PAUSE_MS


def test_script_items_place_pauses_between_pieces():
    items = script_items(
        [{"text": "One two. Three four.", "rate": 1.5, "pitch": 1.0}, {"break_ms": 200}, {"text": "Five."}],
        first_words=4,
    )
    assert [(i.text, i.break_ms, i.pause_before_ms) for i in items] == [
        ("One two.", 0, 0),
        ("Three four.", 0, SENTENCE_PAUSE_MS),
        ("", 200, 0),
        ("Five.", 0, 0),
    ]
    assert items[0].rate == 1.5


def test_trim_silence_keeps_a_margin():
    rate = 16000
    audio = np.concatenate([np.zeros(8000), 0.5 * np.ones(1600), np.zeros(8000)]).astype(np.float32)
    trimmed = trim_silence(audio, rate, margin_ms=10)
    assert trimmed.size == 1600 + 2 * 160


class _Recorder:
    """Collects what a job sends; the synthesize function records the order of work."""

    def __init__(self) -> None:
        self.order: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.done = threading.Event()


def _job(name: str, texts: list[str], recorder: _Recorder, results: dict, cancelled=lambda: False) -> Job:
    results[name] = []

    def send(audio: np.ndarray, final: bool) -> None:
        results[name].append((audio.size, final))

    return Job(
        items=[Item(text=t) for t in texts],
        voice=name,
        sample_rate=1000,
        send=send,
        fail=lambda message: results[name].append(("error", message)),
        cancelled=cancelled,
        on_cancel=lambda done, total: results[name].append(("cancelled", done, total)),
    )


def test_pool_serves_first_pieces_first_and_keeps_order():
    recorder = _Recorder()
    gate = threading.Event()

    def synthesize(item: Item, job: Job) -> np.ndarray:
        gate.wait(5)
        with recorder.lock:
            recorder.order.append((job.voice, item.text))
        return np.ones(10, dtype=np.float32)

    pool = FirstAudioFirstPool(1, synthesize)
    results: dict = {}
    try:
        pool.submit(_job("a", ["a1", "a2", "a3"], recorder, results))
        time.sleep(0.05)  # the worker holds a1 at the gate
        pool.submit(_job("b", ["b1", "b2"], recorder, results))
        pool.submit(_job("c", ["c1"], recorder, results))
        gate.set()
        deadline = time.monotonic() + 5
        while sum(len(v) for v in results.values()) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        pool.close()
    # b and c get their first audio before a continues; each job's pieces stay in order
    assert recorder.order == [("a", "a1"), ("b", "b1"), ("c", "c1"), ("a", "a2"), ("b", "b2"), ("a", "a3")]
    assert results["a"][-1] == (10, True) and [f for _, f in results["a"]] == [False, False, True]


def test_pool_drops_cancelled_job_and_fails_only_the_bad_one():
    flag = {"cancel": False}

    def synthesize(item: Item, job: Job) -> np.ndarray:
        if item.text == "boom":
            raise RuntimeError("engine crashed")
        flag["cancel"] = True  # cancel after the first piece of job "x"
        return np.ones(5, dtype=np.float32)

    pool = FirstAudioFirstPool(1, synthesize)
    results: dict = {}
    recorder = _Recorder()
    try:
        pool.submit(_job("x", ["one", "two", "three"], recorder, results, cancelled=lambda: flag["cancel"]))
        pool.submit(_job("y", ["boom"], recorder, results))
        deadline = time.monotonic() + 5
        while (len(results.get("x", [])) < 2 or not results.get("y")) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        pool.close()
    assert results["x"] == [(5, False), ("cancelled", 1, 3)]
    assert results["y"] == [("error", "synthesis failed: engine crashed")]


def test_text_buffer_releases_whole_sentences():
    buffer = TextBuffer()
    assert buffer.add("Hello there") == []
    assert buffer.add(". How are ") == ["Hello there. "]
    assert buffer.add("you? I am") == ["How are you? "]
    assert buffer.add("<speak>ssml</speak>") == ["I am", "<speak>ssml</speak>"]
    assert buffer.add("the end") == []
    assert buffer.flush() == ["the end"]


def test_audio_output_resamples_streaming_pcm():
    out = AudioOutput(core_audio.LINEAR_PCM, 16000, 8000)
    tone = np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000).astype(np.float32) * 0.5
    data = b"".join(out.add(tone[i : i + 1600]) for i in range(0, 16000, 1600)) + out.finish()
    assert len(data) == 2 * 8000


def test_audio_output_oggopus_is_one_valid_stream():
    out = AudioOutput(core_audio.OGGOPUS, 16000, 24000)
    tone = np.sin(np.arange(32000) * 2 * np.pi * 300 / 16000).astype(np.float32) * 0.5
    data = b"".join(out.add(tone[i : i + 3200]) for i in range(0, 32000, 3200)) + out.finish()
    samples, rate = soundfile.read(io.BytesIO(data))
    assert rate == 24000 and abs(samples.size - 48000) < 2000


@pytest.mark.parametrize(("asked", "coded"), [(44100, 48000), (22050, 24000), (11025, 12000), (8000, 8000)])
def test_audio_output_oggopus_at_any_rate_is_coded_at_the_next_opus_rate(asked, coded):
    """talk.py --encoding OGGOPUS asks for 44100 Hz by default: Opus cannot code it; 48 kHz can."""
    assert opus_rate(asked) == coded
    out = AudioOutput(core_audio.OGGOPUS, 22050, asked)
    tone = np.sin(np.arange(22050) * 2 * np.pi * 300 / 22050).astype(np.float32) * 0.5
    data = b"".join(out.add(tone[i : i + 2205]) for i in range(0, 22050, 2205)) + out.finish()
    samples, rate = soundfile.read(io.BytesIO(data))
    assert rate == coded and abs(samples.size - coded) < coded // 20  # one second of audio
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * rate / samples.size - 300) < 5


@pytest.mark.parametrize(
    ("encoding", "rate", "needle"),
    [
        (core_audio.FLAC, 16000, "use LINEAR_PCM or OGGOPUS"),
        (core_audio.LINEAR_PCM, 7999, "from 8000 to 48000"),
        (core_audio.LINEAR_PCM, 96000, "from 8000 to 48000"),
        (core_audio.OGGOPUS, 4000, "from 8000 to 48000"),
    ],
)
def test_output_format_errors(encoding, rate, needle):
    with pytest.raises(core_audio.AudioFormatError, match=needle):
        check_output_format(encoding, rate)


def test_pool_streams_chunk_iterators_and_stops_between_chunks():
    """A synthesizer may yield chunks (streaming vocoding): each is sent at once, the job ends with an
    empty final response, and a cancellation between chunks stops the iterator."""
    produced: list[int] = []
    flag = {"cancel": False}

    def synthesize(item: Item, job: Job):
        for k in range(5):
            produced.append(k)
            if job.voice == "cancel-me" and k == 1:
                flag["cancel"] = True
            yield np.full(4, k, dtype=np.float32)

    pool = FirstAudioFirstPool(1, synthesize)
    results: dict = {}
    recorder = _Recorder()
    try:
        pool.submit(_job("whole", ["one"], recorder, results))
        deadline = time.monotonic() + 5
        while not results["whole"] or results["whole"][-1] != (0, True):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        produced.clear()
        pool.submit(_job("cancel-me", ["one", "two"], recorder, results, cancelled=lambda: flag["cancel"]))
        while len(results["cancel-me"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        pool.close()
    assert results["whole"] == [(4, False)] * 5 + [(0, True)]
    # chunk 1 was made after the cancel: it is not sent, and the generator is not run to the end
    assert results["cancel-me"] == [(4, False), ("cancelled", 0, 2)]
    assert produced == [0, 1]
