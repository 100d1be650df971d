"""The Whisper engine of the second pass (`models/asr_whisper/1/whisper_engine.py`) in this process,
with the pinned tiny.en weights, on a held-out real speaker: how it scores a forced transcript (what
hints and closed sets are chosen by) and Whisper's continuation after a forced phrase."""

from __future__ import annotations

import ctranslate2
import numpy as np
import pytest
import soundfile

from bench.asr_real_speech import engine_module
from pipelines.asr import real_speech
from rivulet.asr.whisper_weights import prepare
from rivulet.core import audio


@pytest.fixture(scope="module")
def module():
    return engine_module()


@pytest.fixture(scope="module")
def engine(module):
    return module.WhisperEngine(prepare("tiny.en"), cpu_threads=2)


@pytest.fixture(scope="module")
def spoken(engine):
    """A held-out AN4 speaker's clip Whisper writes in many tokens: its encoding, and Whisper's own
    greedy untimed transcript with the exact log-probability of every token and of the end."""
    for clip in real_speech.sample(real_speech.clips("an4", "test"), 40):
        samples, rate = soundfile.read(clip.path, dtype="float32", always_2d=True)
        feats, _ = engine.features([audio.resample(samples[:, 0], rate, 16000)])
        encoded = np.array(engine.encoder.encode(ctranslate2.StorageView.from_array(feats), to_cpu=True))
        [result] = engine.model.generate(
            ctranslate2.StorageView.from_array(encoded), [engine.prompt], beam_size=1, max_length=448,
            return_logits_vocab=True, suppress_blank=False, suppress_tokens=[],
        )  # fmt: skip
        tokens = list(result.sequences_ids[0])
        steps = [np.asarray(s, dtype=np.float64) for s in result.logits[0]]
        if len(tokens) >= 6 and len(steps) == len(tokens) + 1:
            lsm = [s - s.max() - np.log(np.exp(s - s.max()).sum()) for s in steps]
            logprob = sum(float(st[t]) for st, t in zip(lsm, [*tokens, engine.tokenizer.eot], strict=True))
            return encoded, tokens, logprob
    pytest.fail("no held-out AN4 clip of 6 tokens or more in the sample")


def test_a_long_forced_transcript_is_scored_exactly(engine, spoken):
    """Forcing Whisper's own transcript gives its own log-probability, however many tokens it has
    (CTranslate2 returns max_length // 2 tokens: a budget counted in tokens cut long forms off)."""
    encoded, tokens, logprob = spoken
    [forced] = engine._forced(encoded, [tokens])
    assert forced.whole == pytest.approx(logprob, abs=1e-2)


def test_whisper_continues_after_a_forced_start(engine, spoken):
    """A phrase forced as the start ("four" of "four people") is followed by what Whisper hears next,
    scored over the whole: the greedy transcript again, from its first two tokens."""
    encoded, tokens, logprob = spoken
    [forced] = engine._forced(encoded, [tokens[:2]], budget=len(tokens) + 8)
    assert tokens[:2] + forced.continued == tokens
    assert forced.continued_logprob == pytest.approx(logprob, abs=1e-2)
    # as a whole transcript the start alone is less likely than with what follows it
    assert forced.whole < forced.continued_logprob


def test_phrase_forms_allow_an_answer_to_go_on():
    text = engine_module("whisper_text")
    assert text.phrase_forms("four") == [" 4", " 4.", " Four", " Four.", " four"]
    assert " The bedroom" in text.lead_in_forms("bedroom")


def test_a_request_may_ask_for_a_smaller_window(module, engine):
    """A 2 s clip is encoded in Whisper's whole 30 s window by default, in 10 s when its request asks
    (`window_s`); a batch takes the largest window any of its clips needs."""
    clip = np.zeros(2 * 16000, dtype=np.float32)
    assert module.DecodeOptions.from_dict({"window_s": 10}).window_s == 10.0
    assert engine.features([clip])[0].shape[-1] == 3000
    assert engine.features([clip], [10.0])[0].shape[-1] == 1000
    assert engine.features([clip, clip], [10.0, 0.0])[0].shape[-1] == 3000


def test_a_short_clip_gets_the_whole_window_unless_its_request_asks(module):
    """With a 10 s floor, a clip of 3 s is encoded in 10 s but a lone word (under 2 s, where the
    pretrained model mishears in a cut window) in Whisper's whole 30 s unless `short_clip_s` is 0; a
    request's own window applies to both."""
    engine = module.WhisperEngine(prepare("tiny.en"), cpu_threads=2, min_window_s=10.0)
    word, phrase = np.zeros(16000, dtype=np.float32), np.zeros(3 * 16000, dtype=np.float32)
    assert engine.features([phrase])[0].shape[-1] == 1000
    assert engine.features([word])[0].shape[-1] == 3000
    assert engine.features([word], [10.0])[0].shape[-1] == 1000
    # the served adapted model (`short_clip_s` 0 in config.pbtxt): the floor for every free clip, the
    # whole window for a hinted lone word (an expected short answer) unless its request asks for less
    floor = module.WhisperEngine(prepare("tiny.en"), cpu_threads=2, min_window_s=10.0, short_clip_s=0.0)
    assert floor.features([word])[0].shape[-1] == 1000
    assert floor.features([word], [30.0])[0].shape[-1] == 3000
    widths = _windows_used(floor)
    lone = _held_out("commands", "left")
    hints = [("left", 10.0), ("right", 10.0)]
    floor.decode([(lone, module.DecodeOptions(beam_size=2))])
    floor.decode([(lone, module.DecodeOptions(beam_size=2, phrases=hints))])
    floor.decode([(lone, module.DecodeOptions(beam_size=2, phrases=hints, window_s=10.0))])
    assert widths == [1000, 3000, 1000]


def test_a_word_cut_off_by_the_clips_end_is_still_speech(module, engine):
    """Held-out one-word clips whose word the VAD finds with silence after it, cut in the middle of
    the word (it runs to the last sample, as when an utterance's audio ends mid-word): the VAD guard
    hears every one of them as speech, so Whisper transcribes it instead of dropping it as silence."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    exact = VadOptions(threshold=engine.vad_options.threshold, speech_pad_ms=0, min_silence_duration_ms=100)
    cut_clips = []
    for clip in real_speech.sample(real_speech.clips("commands", "test"), 60):
        samples, rate = soundfile.read(clip.path, dtype="float32", always_2d=True)
        samples = audio.resample(samples[:, 0], rate, 16000)
        speech = get_speech_timestamps(samples, exact)
        if len(speech) == 1 and speech[0]["end"] < len(samples) - 1600:  # a word, then silence
            cut_clips.append(samples[: (speech[0]["start"] + speech[0]["end"]) // 2])
    assert len(cut_clips) >= 10
    assert all(engine.has_speech(c) for c in cut_clips)
    assert not engine.has_speech(np.zeros(16000, dtype=np.float32))


def test_hints_work_with_the_multilingual_base_model(module):
    """`base` (multilingual: a longer prompt, for which CTranslate2 counts max_length differently)
    decodes a hinted request as tiny.en does: a held-out speaker's command, heard among its list."""
    engine = module.WhisperEngine(prepare("base"), cpu_threads=2)
    clip = real_speech.sample(real_speech.clips("commands", "test"), 40)[0]
    samples, rate = soundfile.read(clip.path, dtype="float32", always_2d=True)
    options = module.DecodeOptions(phrases=[(w, 30.0) for w in real_speech.COMMAND_WORDS])
    [result] = engine.decode([(audio.resample(samples[:, 0], rate, 16000), options)])
    assert result["hypotheses"][0]["text"].strip(" .").lower() == clip.text


def _windows_used(engine) -> list[int]:
    """Record the encoder window (feature frames) of every batch the engine encodes."""
    widths, encode = [], engine.features

    def recorded(clips, windows=None):
        feats, frames = encode(clips, windows)
        widths.append(feats.shape[-1])
        return feats, frames

    engine.features = recorded
    return widths


def _held_out(name: str, text: str | None = None) -> np.ndarray:
    clips = real_speech.clips(name, "test")
    clip = next(c for c in clips if c.text == text) if text else real_speech.sample(clips, 40)[5]
    samples, rate = soundfile.read(clip.path, dtype="float32", always_2d=True)
    return audio.resample(samples[:, 0], rate, 16000)


def test_a_transcript_that_loops_in_the_cut_window_is_decoded_again_in_the_whole_window(module):
    """With a 10 s window Whisper loops on a held-out speaker spelling a long name ("S-A-F-F-R-O-N-
    R-O-B-L-E-S-S-R-O-N-R-O-B..."): the engine sees the transcript fail Whisper's checks and decodes
    the clip again in the 30 s window, writing what the whole window writes. A clip that decodes
    well in the cut window is decoded once."""
    engine = module.WhisperEngine(prepare("tiny.en"), cpu_threads=2, min_window_s=10.0)
    whole = module.WhisperEngine(prepare("tiny.en"), cpu_threads=2, min_window_s=30.0)
    widths = _windows_used(engine)
    options = module.DecodeOptions(beam_size=5)
    spelled = _held_out("accented", "s a f f r o n r o b l e s")
    [result] = engine.decode([(spelled, options)])
    assert len(widths) == 2 and widths[0] < 3000 and widths[1] == 3000  # max(clip + 1 s, 10 s), then 30 s
    assert result["hypotheses"][0]["text"] == whole.decode([(spelled, options)])[0]["hypotheses"][0]["text"]
    assert result["decoding"] == "whole_window_again"  # what the service counts
    widths.clear()
    [result] = engine.decode([(_held_out("an4"), options)])
    assert widths == [1000] and result["hypotheses"] and result["decoding"] == "cut_window"
    [result] = engine.decode([(np.zeros(16000, dtype=np.float32), options)])
    assert (result["reason"], result["decoding"], result["fallback"]) == ("vad", "none", False)


def test_a_repeated_phrase_longer_than_the_audio_could_hold_is_one_copy(module, engine):
    """Whisper writing "see you next time" three times over a 0.2 s clip is looping (more tokens than
    0.2 s can hold): one copy is kept; the same three copies over 5 s of audio may be speech."""
    from types import SimpleNamespace

    tokens = engine.tokenizer.encode(" see you next time see you next time see you next time")
    result = SimpleNamespace(sequences_ids=[tokens], scores=[-0.5], logits=[], no_speech_prob=0.1)
    options = module.DecodeOptions(beam_size=5)
    engine._max_length = 64
    [short] = engine._candidates(None, 21, result, options)
    [long] = engine._candidates(None, 500, result, options)
    assert short.text.strip() == "see you next time"
    assert long.text.strip() == "see you next time see you next time see you next time"
    # as Whisper wrote it over a held-out speaker's 0.21 s "two": the copies differ in case and commas
    written = " See you next time, see you next time, see you next time."
    result.sequences_ids = [engine.tokenizer.encode(written)]
    [short] = engine._candidates(None, 21, result, options)
    assert short.text.strip() == "See you next time,"


def test_a_lone_word_gets_no_temperature_fallback(module, engine):
    """Whisper's temperature fallback (transcribe()'s rule) is tried on clips of 2 s and more; a lone
    word's would only sample other words ("All right." for "on"), five decodes in the whole window."""
    tried: list[int] = []
    fallback = engine._with_fallback

    def recorded(encoded, result, prompt):
        tried.append(1)
        return fallback(encoded, result, prompt)

    engine._with_fallback = recorded
    try:
        options = module.DecodeOptions(beam_size=5)
        word = _held_out("commands")
        assert len(word) < module.SHORT_CLIP_S * 16000
        [result] = engine.decode([(word, options)])
        assert not tried and result["hypotheses"]
        sentence = _held_out("an4", "n l n s one seventy five")
        assert len(sentence) >= module.SHORT_CLIP_S * 16000
        engine.decode([(sentence, options)])
        assert tried == [1]
    finally:
        engine._with_fallback = fallback


def test_parallel_decoder_calls_write_what_one_call_at_a_time_writes(module):
    """A batch from several streams is decoded in two halves side by side, a hinted clip's first step
    and forced scores beside each other: every item's transcript and score are those of the decoder
    run one call at a time, in the item's own place (held-out speakers, free and hinted items mixed)."""
    serial = module.WhisperEngine(prepare("tiny.en"), cpu_threads=2, min_window_s=10.0, decoder_parallel=1)
    parallel = module.WhisperEngine(prepare("tiny.en"), cpu_threads=2, min_window_s=10.0, decoder_parallel=2)
    assert serial.model is not serial.encoder and parallel.parallel == 2
    hints = [(w, 30.0) for w in real_speech.COMMAND_WORDS]
    clips = [
        c for name in ("commands", "an4") for c in real_speech.sample(real_speech.clips(name, "test"), 40)
    ]
    batch = []
    for k, clip in enumerate(clips[:3] + clips[40:43]):
        samples, rate = soundfile.read(clip.path, dtype="float32", always_2d=True)
        phrases = hints if k in (1, 2) else []
        batch.append(
            (audio.resample(samples[:, 0], rate, 16000), module.DecodeOptions(beam_size=2, phrases=phrases))
        )
    expected = serial.decode(list(batch))
    got = parallel.decode(list(batch))

    def written(results: list[dict]) -> list[str]:
        return [r["hypotheses"][0]["text"] if r["hypotheses"] else f"({r['reason']})" for r in results]

    assert written(got) == written(expected)
    # six different utterances, each in its own place: the hinted ones and at least two free ones
    # written (the one-second "backward" is heard as no speech on an Intel Xeon's int8 kernels, as
    # speech on an AMD EPYC's: Whisper's no-speech probability there is 0.602 against its 0.6)
    assert len(set(written(got))) == len(batch) and all(r["hypotheses"] for r in got[1:3])
    assert sum(bool(r["hypotheses"]) for r in got) >= 5
    for r, e in zip(got, expected, strict=True):
        if r["hypotheses"]:
            assert r["hypotheses"][0]["score"] == pytest.approx(e["hypotheses"][0]["score"], abs=1e-3)


def test_only_a_phrase_that_can_still_win_is_continued(module, engine):
    """Each hinted form is first forced alone (a few decoder steps); Whisper's continuation after it
    (tens of steps) is decoded only while the form's own tokens, with its boost, can still beat the
    best transcript. A held-out speaker's "enter nine eighty nine": the hint "enter" is continued
    (and the transcript stays Whisper's), "enter about" — a likely first token, an unlikely second —
    is scored alone and never continued."""
    clip = _held_out("an4", "enter nine eighty nine")
    budgets, forced = [], engine._forced

    def recorded(encoded, forms, budget=0):
        out = forced(encoded, forms, budget)
        budgets.extend(
            (engine.tokenizer.decode(f).strip(), budget, o.prefix) for f, o in zip(forms, out, strict=True)
        )
        return out

    engine._forced = recorded
    try:
        wrong = engine.decode([(clip, module.DecodeOptions(beam_size=2, phrases=[("enter about", 30.0)]))])
        assert [b for _, b, _ in budgets] and not any(b for _, b, _ in budgets)
        assert all(prefix < 0 for _, _, prefix in budgets)
        budgets.clear()
        right = engine.decode([(clip, module.DecodeOptions(beam_size=2, phrases=[("enter", 30.0)]))])
        assert any(b and form == "Enter" for form, b, _ in budgets)
    finally:
        del engine._forced
    for result in (wrong, right):
        assert result[0]["hypotheses"][0]["text"].lower().startswith("enter")


def test_a_form_is_forced_only_while_its_first_two_tokens_can_win(module):
    """A hinted form is forced only if the log-probability of its opening, plus its boost, can beat
    the best transcript; where the form starts with Whisper's likeliest first token the second token
    counts too (one more step of the call that gives the first). A held-out speaker's "enter seven
    thirty eight" with "enter about" hinted: " Enter" is likely, " about" after it is not, so neither
    " Enter about" nor " Enter about." is forced (each was, scoring -10 and -16 against Whisper's own
    "Enter 738."); " enter about", whose first token alone bounds it, still is."""
    engine = module.WhisperEngine(prepare("tiny.en"), cpu_threads=2, min_window_s=10.0)
    tried, forced = [], engine._forced

    def recorded(encoded, forms, budget=0):
        tried.extend(engine.tokenizer.decode(f) for f in forms)
        return forced(encoded, forms, budget)

    engine._forced = recorded
    clip = _held_out("an4", "enter seven thirty eight")
    [result] = engine.decode([(clip, module.DecodeOptions(beam_size=2, phrases=[("enter about", 10.0)]))])
    assert tried == [" enter about"]
    written = result["hypotheses"][0]["text"]  # Whisper's own ("Enter 738."), not the hint
    assert written.startswith("Enter") and "about" not in written.lower()


def test_a_phrase_is_tried_after_a_lead_in_only_where_whisper_starts_with_it(module):
    """A hinted phrase is also scored after the lead-ins people say before an answer ("the bedroom"),
    but only after a lead-in that one of the beam's transcripts starts with: a held-out speaker's
    "enter seven thirty eight" with "nine" hinted gets no " The nine" or " At nine" forced (four such
    forms were, each a decoder call, all losing), while "a s b u r y p l a c e", which Whisper starts
    with " A", still gets " A tomorrow" scored. The transcripts are Whisper's own either way."""
    from whisper_text import LEAD_INS

    leads = {w for lead in LEAD_INS for w in (lead.split()[0], lead.split()[0].capitalize())}
    engine = module.WhisperEngine(prepare("tiny.en"), cpu_threads=2, min_window_s=10.0)
    tried, forced = [], engine._forced

    def recorded(encoded, forms, budget=0):
        tried.extend(engine.tokenizer.decode(f).split()[0] for f in forms)
        return forced(encoded, forms, budget)

    engine._forced = recorded
    numbers = _held_out("an4", "enter seven thirty eight")
    [result] = engine.decode([(numbers, module.DecodeOptions(beam_size=2, phrases=[("nine", 30.0)]))])
    assert not leads & set(tried)
    assert result["hypotheses"][0]["text"].startswith("Enter")  # "Enter 738."
    tried.clear()
    place = _held_out("an4", "a s b u r y p l a c e")
    [result] = engine.decode([(place, module.DecodeOptions(beam_size=2, phrases=[("tomorrow", 10.0)]))])
    assert "A" in tried
    assert "tomorrow" not in result["hypotheses"][0]["text"].lower()  # "ASBURY PLACE"


def _words_then_full_stops(engine, clip: np.ndarray, tokens: int | None = None):
    """A held-out clip's encoding in the 10 s window and Whisper's own timestamped transcript of it
    cut as Whisper cuts it when it loops on punctuation: the opening timestamp, the first `tokens`
    text tokens (all), then "." until the token budget runs out, no closing timestamp."""
    from types import SimpleNamespace

    feats, frames = engine.features([clip])
    view = ctranslate2.StorageView.from_array(feats)
    encoded = np.array(engine.encoder.encode(view, to_cpu=True))
    [free] = engine.model.generate(
        ctranslate2.StorageView.from_array(encoded), [engine.free_prompt], beam_size=1, max_length=448
    )
    raw = list(free.sequences_ids[0])
    begin = engine.tokenizer.timestamp_begin
    opening, text = raw[0], [t for t in raw[1:] if t < engine.tokenizer.eot]
    assert opening >= begin and text
    text = text[:tokens]
    full_stop = engine.tokenizer.encode(".")[0]
    written = [opening, *text, *[full_stop] * 12]
    engine._max_length = len(written)
    result = SimpleNamespace(sequences_ids=[written], scores=[-0.1], logits=[], no_speech_prob=0.01)
    return encoded, frames[0], result, text


def test_full_stops_written_after_complete_words_end_the_transcript(module):
    """Whisper may write "." after its words until the token budget runs out (a synthetic voice's
    "What time is it?" and 18 full stops in the browser, its first request louder while the page's
    auto gain settled): cut off, such a transcript was decoded again in the whole 30 s window, 350-600
    ms more at one stream. When Whisper's own timestamp rule after the words holds against every word
    (a timestamp is likelier than any word to come next), the words are the transcript, closed by the
    likeliest timestamp inside the clip and scored; when words are missing (held-out AN4 speakers'
    "N-L" of "N-L-N-S 175", "5 6" of "5 6 1 5"), Whisper would go on with a word, and the clip is
    still decoded again in the whole window."""
    engine = module.WhisperEngine(prepare("tiny.en"), cpu_threads=2, min_window_s=10.0)
    clip = _held_out("an4", "n l n s one seventy five")
    encoded, frames, result, text = _words_then_full_stops(engine, clip)
    ended = engine._words_before_punctuation(encoded, result, frames, engine.free_prompt)
    assert ended is not None
    [tokens] = ended.sequences_ids
    full_stop = engine.tokenizer.encode(".")[0]
    assert tokens[1:-1] == [*text, full_stop] or tokens[1:-1] == text  # the words and one mark
    closing = (tokens[-1] - engine.tokenizer.timestamp_begin) * 0.02
    assert 0 < closing <= len(clip) / 16000 + 0.01  # closed inside the clip
    assert -1.0 < ended.scores[0] < 0  # a mean log-probability, as Whisper's checks read it
    # " N-L" and full stops: "-N-S 175" missing
    encoded, frames, result, text = _words_then_full_stops(engine, clip, tokens=3)
    assert engine._words_before_punctuation(encoded, result, frames, engine.free_prompt) is None
    digits = _held_out("an4", "five six one five")
    encoded, frames, result, _ = _words_then_full_stops(engine, digits)
    assert engine._words_before_punctuation(encoded, result, frames, engine.free_prompt) is not None
    # " 5 6" and full stops: "1 5" missing
    encoded, frames, result, _ = _words_then_full_stops(engine, digits, tokens=2)
    assert engine._words_before_punctuation(encoded, result, frames, engine.free_prompt) is None
    # full stops and no word, or a loop on words, are decoded again as before
    result.sequences_ids = [[result.sequences_ids[0][0], *[full_stop] * 12]]
    engine._max_length = 13
    assert engine._words_before_punctuation(encoded, result, frames, engine.free_prompt) is None
    result.sequences_ids = [[result.sequences_ids[0][0], *text * 6][: engine._max_length]]
    assert engine._words_before_punctuation(encoded, result, frames, engine.free_prompt) is None
