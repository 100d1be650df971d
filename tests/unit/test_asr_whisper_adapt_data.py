"""What the Whisper decoder adapter is trained on: dev speakers only, runs by one speaker, and the
written form its targets take."""

from __future__ import annotations

from collections import Counter

from pipelines.asr import real_speech
from pipelines.asr.whisper_adapt import CORE_COMMANDS, part_of, real_items, written_form


def test_the_adapter_reads_no_test_speaker_and_tunes_on_speakers_it_never_fits():
    items = real_items(with_runs=True)
    fit = {c.speaker for i in items if i.part == "fit" for c in i.clips}
    tune = {c.speaker for i in items if i.part == "tune" for c in i.clips}
    assert fit and tune and not fit & tune
    for item in items:
        for clip in item.clips:
            if clip.set == "fsdd":
                assert clip.speaker not in real_speech.FSDD_HELD_OUT
                assert item.part == "fit"
            else:
                assert real_speech.split_of(clip.speaker) == "dev"
                assert item.part == part_of(clip.speaker)
            assert clip.set != "accented"


def test_runs_join_two_to_four_clips_of_one_speaker_with_pauses():
    runs = [i for i in real_items(with_runs=True) if i.set == "runs"]
    assert not [i for i in real_items(with_runs=False) if i.set == "runs"]
    assert len(runs) > 200
    assert Counter(i.part for i in runs)["tune"] >= 30
    for run in runs:
        assert 2 <= len(run.clips) <= 4 and len({c.speaker for c in run.clips}) == 1
        assert len(run.gaps) == len(run.clips) - 1 and all(0.1 <= g <= 0.5 for g in run.gaps)
        assert len(set(run.clips)) == len(run.clips)
        words = run.text.split()
        assert all(w in real_speech.DIGIT_WORDS for w in words) or all(w in CORE_COMMANDS for w in words)


def test_a_run_is_written_as_whisper_writes_its_words_alone():
    written = {"four": Counter({"4": 5, "Four": 1}), "eight": Counter({"8": 3}), "go": Counter({"Go": 4}),
               "left": Counter({"Left": 9, "Last": 1})}  # fmt: skip
    assert written_form("four eight", written) == " 4 8."
    assert written_form("go left", written) == " Go left."
    assert written_form("left", written) == " Left."
    assert written_form("stop", {}) == " Stop."  # never heard right alone: the word as it is
