"""ASR speech data (pipelines.asr.data, augment, texts): held-out speakers/voices stay out of training,
utterances render as 16 kHz audio with their normalized text, augmentations do what they say."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile

from pipelines.asr import augment, data
from pipelines.asr.text import VOCABULARY
from pipelines.asr.texts import evaluation_texts, snips_sentences, training_texts
from rivulet.voices import Voice


@pytest.fixture(scope="module")
def quick_plan(tmp_path_factory) -> dict[str, list[data.Job]]:
    return data.plan(data.PROFILES["quick"], tmp_path_factory.mktemp("asr-data"))


def test_held_out_voices_and_speakers_never_train(quick_plan):
    full = data.plan(data.PROFILES["full"], Path("/nonexistent"))  # planning only: nothing is rendered
    train_sources = {job.source for job in full["train"]}
    voices = {s.split(":", 1)[1] for s in train_sources if s.startswith("voice:")}
    assert voices and not any(data.is_held_out_voice(Voice.parse(v)) for v in voices)
    speakers = {Path(s).stem.split("_")[1] for s in train_sources if s.startswith("fsdd:")}
    assert speakers and not speakers & set(data.HELD_OUT_SPEAKERS)
    assert len(speakers) == 4
    real_eval = {Path(job.source).stem.split("_")[1] for job in full["eval_digits_real"]}
    assert real_eval == set(data.HELD_OUT_SPEAKERS)
    for key in ("eval_commands_synthetic", "eval_snips_synthetic", "eval_digits_synthetic"):
        assert all(data.is_held_out_voice(Voice.parse(job.source[6:])) for job in full[key])
    engines = {v.engine for v in data.held_out_voices()}
    assert {"flite", "festival", "espeak-ng"} <= engines


def test_evaluation_sentences_are_not_training_sentences():
    import random

    train = {text for _, text in training_texts(random.Random(1), {"snips": 10_000, "assistant": 0})}
    held = evaluation_texts(random.Random(2), 100)
    assert len(set(held["snips"]) - train) >= 95  # SNIPS test vs train: a few sentences repeat verbatim
    assert snips_sentences("train") and all(
        set(t) <= set(VOCABULARY) for t in held["commands"] + held["snips"]
    )


def test_render_synthetic_and_real(quick_plan, tmp_path):
    synthetic = dataclasses.replace(quick_plan["train"][0], path=str(tmp_path / "a.wav"))
    real = next(j for j in quick_plan["train"] if j.source.startswith("fsdd:"))
    real = dataclasses.replace(real, path=str(tmp_path / "b.wav"), augment=True)
    for job in (synthetic, real):
        row = data.render(job)
        audio, rate = soundfile.read(row["audio_filepath"], dtype="float32")
        assert rate == 16000 and audio.ndim == 1 and 0.2 < row["duration"] < 20
        assert 0.001 < np.abs(audio).max() <= 1.0
        assert row["text"] == job.text and set(job.text) <= set(VOCABULARY)
    assert data.render(synthetic) == data.render(synthetic)  # existing files are kept (resumable)


def test_data_key_changes_with_the_profile():
    quick = data.PROFILES["quick"]
    assert data.data_key(quick) == data.data_key(quick)
    assert data.data_key(quick) != data.data_key(dataclasses.replace(quick, seed=quick.seed + 1))


def _power(x: np.ndarray) -> float:
    return float(np.mean(x.astype(np.float64) ** 2))


def test_noise_at_snr():
    rng = np.random.default_rng(0)
    speech = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    for snr in (0.0, 10.0, 20.0):
        noisy = augment.add_noise(speech, snr, rng)
        measured = 10 * np.log10(_power(speech) / _power(noisy - speech))
        assert abs(measured - snr) < 0.5


def test_band_limit_speed_and_reverb():
    rng = np.random.default_rng(1)
    white = rng.standard_normal(16000).astype(np.float32) * 0.1
    narrow = augment.band_limit_8k(white)
    spectrum = np.abs(np.fft.rfft(narrow)) ** 2
    freqs = np.fft.rfftfreq(narrow.size, 1 / 16000)
    assert spectrum[freqs > 4200].sum() < 0.01 * spectrum[freqs < 3800].sum()
    assert abs(augment.change_speed(white, 1.25).size - 16000 / 1.25) < 5
    rir = augment.synthetic_rir(rng)
    assert rir[0] == np.abs(rir).max() and abs(np.sum(rir**2) - 1) < 1e-4
    assert augment.reverberate(white, rng).size == white.size


def test_augment_keeps_level_in_range():
    rng = np.random.default_rng(2)
    speech = (0.5 * np.sin(2 * np.pi * 300 * np.arange(8000) / 16000)).astype(np.float32)
    for _ in range(20):
        out = augment.augment(speech, rng, augment.AugmentPolicy())
        assert out.dtype == np.float32 and np.all(np.isfinite(out)) and np.abs(out).max() <= 0.951


def test_fine_tuning_hears_only_dev_speakers_of_the_real_sets(tmp_path):
    """pipelines.asr.finetune: real recordings of dev speakers (with augmented copies) and wake words;
    no test-split speaker, accented speaker or held-out FSDD speaker is ever trained on."""
    from pipelines.asr import finetune, real_speech

    jobs = finetune.real_jobs(tmp_path)
    sources = {job.source[5:] for job in jobs}
    for name in real_speech.SETS:
        assert not sources & {str(c.path) for c in real_speech.clips(name, "test")}, name
    dev = {str(c.path) for name in finetune.REAL_COPIES for c in real_speech.clips(name, "dev")}
    assert dev and dev <= sources
    wake = [job for job in jobs if job.category == "real_wake_words"]
    assert len(wake) == finetune.WAKE_WORD_CLIPS and not any(job.augment for job in wake)
    for name, copies in finetune.REAL_COPIES.items():
        of_set = [job for job in jobs if job.category == f"real_{name}"]
        assert len(of_set) == (copies + 1) * len(real_speech.clips(name, "dev"))
        assert sum(not job.augment for job in of_set) == len(real_speech.clips(name, "dev"))
    assert all(set(job.text) <= set(VOCABULARY) and job.text for job in jobs)
    row = data.render(dataclasses.replace(jobs[0], path=str(tmp_path / "a.wav")))
    assert soundfile.info(row["audio_filepath"]).samplerate == 16000
