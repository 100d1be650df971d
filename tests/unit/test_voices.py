"""rivulet.voices: every engine installed by `make setup` speaks, and speaking rate is honoured."""

from __future__ import annotations

import numpy as np
import pytest

from rivulet import voices


@pytest.mark.parametrize("voice_id", ["espeak-ng:en-us+f3", "flite:slt", "flite:rms", "festival:kal_diphone"])
def test_each_engine_speaks(voice_id):
    samples, rate = voices.synthesize(voices.Voice.parse(voice_id), "turn on the kitchen lights")
    assert rate >= 16000
    assert samples.dtype == np.float32
    assert 0.8 < len(samples) / rate < 4.0
    assert np.sqrt(np.mean(samples**2)) > 0.01  # speech, not silence


def test_catalogue_has_female_and_male_voices_of_every_engine():
    catalogue = voices.all_voices()
    for engine in ("espeak-ng", "flite", "festival"):
        genders = {v.gender for v in catalogue if v.engine == engine}
        assert genders == {"female", "male"}, engine
    assert len({v.id for v in catalogue}) == len(catalogue)


def test_rate_makes_speech_faster():
    voice = voices.Voice.parse("espeak-ng:en-us")
    slow, _ = voices.synthesize(voice, "one two three four five six", rate=0.8)
    fast, _ = voices.synthesize(voice, "one two three four five six", rate=1.6)
    assert len(fast) < 0.75 * len(slow)


def test_unknown_voice_and_empty_text():
    with pytest.raises(voices.SynthesisError, match="unknown voice"):
        voices.Voice.parse("flite:nobody")
    samples, _ = voices.synthesize(voices.Voice.parse("flite:slt"), "   ")
    assert samples.size == 0
