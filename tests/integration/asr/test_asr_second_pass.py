"""The Whisper second pass (`asr_whisper` on the session's tritonserver) through riva.client.

Real people the project never trained or tuned on (`pipelines.asr.real_speech` test speakers),
streaming and offline; Riva's spoken and written forms; hints and closed sets turning a misheard
isolated word right; no invented text on silence or noise; speech at the very edges of the audio.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import riva.client
import soundfile
from riva.client.proto import riva_asr_pb2 as rasr

from pipelines.asr import real_speech
from pipelines.asr.canonical import canonical_words
from pipelines.asr.text import edit_distance
from rivulet.core import audio
from tests.integration.asr.conftest import RATE, chunks, pcm16, speech, start_service
from tests.support import metric

pytestmark = pytest.mark.integration


def config(**fields) -> rasr.RecognitionConfig:
    fields.setdefault("verbatim_transcripts", True)
    fields.setdefault("max_alternatives", 1)
    return riva.client.RecognitionConfig(
        encoding=audio.LINEAR_PCM, sample_rate_hertz=RATE, language_code="en-US", **fields
    )


def load(clip: real_speech.Clip) -> np.ndarray:
    samples, rate = soundfile.read(clip.path, dtype="float32", always_2d=True)
    return audio.resample(samples[:, 0], rate, RATE)


def offline(client, samples: np.ndarray, cfg: rasr.RecognitionConfig) -> str:
    response = client.offline_recognize(pcm16(samples), cfg)
    return " ".join(r.alternatives[0].transcript for r in response.results if r.alternatives)


def streaming(client, samples: np.ndarray, cfg: rasr.RecognitionConfig) -> tuple[str, str]:
    """Final transcripts of a stream, and which pass wrote them (the trailing metadata)."""
    request = riva.client.StreamingRecognitionConfig(config=cfg, interim_results=True)
    call = client.stub.StreamingRecognize(
        riva.client.asr.streaming_request_generator(chunks(pcm16(samples)), request)
    )
    finals = [r.alternatives[0].transcript for response in call for r in response.results if r.is_final]
    return " ".join(finals), dict(call.trailing_metadata()).get("rivulet-final-passes", "")


def test_held_out_real_speakers_streaming_and_offline(client):
    """AN4 utterances (letters, digits, commands) of held-out speakers: Whisper's finals, in the
    spoken form, hold what was said (canonical WER under 15 % on these 12: the default tiny.en gets
    about 10 % of AN4 words wrong, bench/reports/asr_real_speech.md; the streaming model alone gets
    70 % wrong); every final came from the second pass."""
    clips = real_speech.sample(real_speech.clips("an4", "test"), 12)
    errors = {"offline": 0, "streaming": 0}
    words = 0
    for clip in clips:
        samples = load(clip)
        reference = canonical_words(clip.text)
        words += len(reference)
        errors["offline"] += edit_distance(reference, canonical_words(offline(client, samples, config())))
        text, passes = streaming(client, samples, config())
        errors["streaming"] += edit_distance(reference, canonical_words(text))
        assert set(passes.split(",")) == {"whisper"}, passes
    assert errors["offline"] <= 0.15 * words and errors["streaming"] <= 0.15 * words, (errors, words)


# held-out speakers' lone commands (index in the test split: word) that the pretrained tiny.en
# mishears without hints: "Last." for left, "Now" for no, "Oh." for off and up
LONE_COMMANDS = {836: "left", 1115: "no", 1394: "off", 2509: "up"}


def test_held_out_lone_commands_are_heard_without_hints(client):
    """The default model (tiny.en with the project's decoder adapter, trained on dev speakers only)
    hears a real person's lone "left" / "no" / "off" / "up" with no hint, streamed and offline."""
    clips = real_speech.clips("commands", "test")
    for index, word in LONE_COMMANDS.items():
        assert clips[index].text == word
        samples = load(clips[index])
        assert canonical_words(offline(client, samples, config())) == [word], word
        text, passes = streaming(client, samples, config())
        assert canonical_words(text) == [word] and passes == "whisper", (word, text, passes)


# held-out AN4 clips whose transcript changed with the last bits of the log-mel features
BORDERLINE = ("b a r r y", "n a t h a n", "r a n d y", "rubout n a g k k three thirty six")


def test_the_served_pass_writes_what_the_engine_writes_in_this_process(client):
    """The served second pass and the same engine in this process (the bench's bare model, numpy on
    as many BLAS threads as this machine has cores) write the same words on held-out AN4 clips where
    they once differed ("b a r r y b a r y" served for "B-A-R-R-Y"): the features' last bits
    depended on the BLAS threads (tritonserver starts its stubs with OMP_NUM_THREADS=1); the engine
    computes them on one BLAS thread wherever it runs."""
    from bench.asr_real_speech import SERVED_BEAM, engine_module, served_model, served_window
    from rivulet.asr.whisper_weights import prepare

    clips = [c for c in real_speech.sample(real_speech.clips("an4", "test"), 80) if c.text in BORDERLINE]
    assert len(clips) == len(BORDERLINE)
    module = engine_module()
    engine = module.WhisperEngine(prepare(served_model()), cpu_threads=2, **served_window())
    for clip in clips:
        samples = load(clip)
        [bare] = engine.decode([(samples, module.DecodeOptions(beam_size=SERVED_BEAM))])
        served = offline(client, samples, config())
        assert canonical_words(served) == canonical_words(bare["hypotheses"][0]["text"]), (clip.text, served)


def test_spoken_and_written_forms(client):
    digits = speech("three seven one")
    assert offline(client, digits, config(verbatim_transcripts=True)) == "three seven one"
    assert offline(client, digits, config(verbatim_transcripts=False)) == "371"
    sentence = speech("turn on the lights")
    assert offline(client, sentence, config()) == "turn on the lights"
    punctuated = offline(
        client, sentence, config(verbatim_transcripts=False, enable_automatic_punctuation=True)
    )
    assert punctuated.startswith("Turn on the lights")  # a sentence: Whisper's marks, a capital start


def test_the_streaming_models_finals_are_punctuated_by_the_punctuation_model(client):
    """Without the second pass the streaming model writes lower-case words; with
    enable_automatic_punctuation its finals go through punct_capit_en, as Riva's are."""
    sentence = speech("turn on the lights")
    first_pass = {"second_pass": "false"}
    plain = offline(client, sentence, config(verbatim_transcripts=False, custom_configuration=first_pass))
    punctuated = offline(
        client,
        sentence,
        config(
            verbatim_transcripts=False, enable_automatic_punctuation=True, custom_configuration=first_pass
        ),
    )
    assert plain == plain.lower() and plain.split()
    assert punctuated != plain and punctuated[0].isupper()
    assert punctuated.lower().replace(",", "").replace(".", "").replace("?", "").split() == plain.split()


def test_word_times_and_alternatives_come_from_the_second_pass(client):
    samples = speech("turn on the lights")
    response = client.offline_recognize(
        pcm16(samples), config(enable_word_time_offsets=True, max_alternatives=3)
    )
    best = response.results[0].alternatives[0]
    assert best.transcript == "turn on the lights"
    assert [w.word for w in best.words] == best.transcript.split()
    times = [t for w in best.words for t in (w.start_time, w.end_time)]
    assert times == sorted(times) and times[-1] <= 1000 * len(samples) / RATE
    assert 0 < best.confidence <= 1
    texts = [a.transcript for a in response.results[0].alternatives]
    assert len(texts) == len(set(texts)) <= 3


def _commands(word: str) -> list[real_speech.Clip]:
    return [c for c in real_speech.clips("commands", "test") if c.text == word]


def test_hints_turn_a_misheard_isolated_word_right(client):
    """Isolated digits are Whisper's hard case ("eight" → "Yes."; the adapted model hears most of
    them alone now): the first held-out digit it gets wrong alone is heard right with the digits as
    speech_contexts, and with them as a closed set, sent as the dialog sends them (its 10 s window;
    a hinted lone word otherwise gets the whole window, better on the held-out commands as a whole,
    97.5 vs 95.0 %, but this "eight" stays "Yes." there)."""
    hints = rasr.SpeechContext(phrases=real_speech.DIGIT_WORDS, boost=30.0)
    for clip in (c for word in ("eight", "four", "two") for c in _commands(word)):
        samples = load(clip)
        if offline(client, samples, config()) != clip.text:
            break
    else:
        pytest.fail(
            "every held-out 'eight', 'four' and 'two' was heard right without hints: pick a harder word"
        )
    window = {"second_pass_window_s": "10"}
    assert offline(client, samples, config(speech_contexts=[hints], custom_configuration=window)) == clip.text
    closed_set = {**window, "speech_contexts_mode": "closed"}
    closed = config(speech_contexts=[hints], custom_configuration=closed_set)
    assert offline(client, samples, closed) == clip.text
    heard = streaming(client, samples, config(speech_contexts=[hints], custom_configuration=window))[0]
    assert heard == clip.text


def test_every_pass_is_counted_by_how_whisper_decoded_it(client, asr):
    """`rivulet_asr_whisper_decodings_total{decoding}`, from the model's answer: a held-out AN4
    sentence is decoded in the encoder window cut to the clip; a held-out lone command with the
    command list as hints (an expected short answer) in Whisper's whole 30 s window."""

    def count(decoding: str) -> float:
        name = "rivulet_asr_whisper_decodings_total"
        return sum(metric(asr, name, decoding=decoding, fallback=f) for f in ("false", "true"))

    cut, whole = count("cut_window"), count("whole_window")
    sentence = real_speech.clips("an4", "test")[3]
    assert offline(client, load(sentence), config())
    assert (count("cut_window"), count("whole_window")) == (cut + 1, whole)
    word = real_speech.clips("commands", "test")[836]
    hints = rasr.SpeechContext(phrases=real_speech.COMMAND_WORDS, boost=30.0)
    assert offline(client, load(word), config(speech_contexts=[hints])) == word.text
    assert (count("cut_window"), count("whole_window")) == (cut + 1, whole + 1)


def test_closed_set_allows_only_its_phrases(client):
    samples = speech("turn on the lights")
    closed = config(
        speech_contexts=[rasr.SpeechContext(phrases=["yes", "no", "cancel"], boost=10.0)],
        custom_configuration={"speech_contexts_mode": "closed"},
    )
    assert offline(client, samples, closed) in {"yes", "no", "cancel"}


def test_silence_and_noise_give_no_text(client, asr):
    empty_before = metric(asr, "rivulet_asr_finals_total", **{"pass": "empty"})
    silence = np.zeros(2 * RATE, dtype=np.float32)
    noise = np.random.default_rng(7).normal(0, 0.05, 2 * RATE).astype(np.float32)
    for samples in (silence, noise):
        assert offline(client, samples, config()) == ""
        assert streaming(client, samples, config())[0] == ""
    assert metric(asr, "rivulet_asr_finals_total", **{"pass": "empty"}) >= empty_before


def test_speech_at_the_very_edges_is_heard(client):
    """FSDD clips are trimmed to the word: no silence before or after it."""
    clips = real_speech.sample(real_speech.clips("fsdd", "test"), 10)
    hints = rasr.SpeechContext(phrases=real_speech.DIGIT_WORDS, boost=30.0)
    right = sum(offline(client, load(c), config(speech_contexts=[hints])) == c.text for c in clips)
    assert right >= 9, right


def test_a_short_answer_after_a_pause_is_heard_however_long_the_pause(client):
    """A dialog's ASR call opens at the end of the last turn, so a short answer ("no") comes after
    however much silence the turn-taking left in the call. Whisper hears it from the VAD's onset
    (less the context), not from the streaming model's 1 s pre-roll: inside a second of silence its
    no-speech check dropped the answer or not by the audio's alignment (the dialog's flaky turn)."""
    from bench.dialog_support import HELD_OUT_VOICES, user_speech

    pcm, _ = user_speech("no", HELD_OUT_VOICES[0])
    word = audio.decode(pcm, audio.LINEAR_PCM, RATE)
    hints = rasr.SpeechContext(phrases=["yes", "no", "yes please", "no thanks", "sure", "okay"], boost=30.0)
    cfg = config(
        speech_contexts=[hints],
        enable_word_time_offsets=True,
        custom_configuration={"second_pass_window_s": "10"},
    )
    heard = {}
    for pause_ms in (300, 560, 760, 960, 1160):
        samples = np.concatenate([np.zeros(pause_ms * RATE // 1000, dtype=np.float32), word])
        heard[pause_ms] = streaming(client, samples, cfg)
    assert all(h == ("no", "whisper") for h in heard.values()), heard


@pytest.mark.parametrize("message_bytes", [320, 8192])
def test_the_speculative_pass_survives_messages_of_any_size(client, asr, message_bytes):
    """The second pass starts at the first silence and the endpoint uses it, whatever size the
    client's messages are: 10 ms (LiveKit's frames) or 4096 samples, not whole 20 ms VAD frames,
    where the end of the speech once moved with the VAD's unexamined remainder and every message
    dropped and restarted the pass."""
    used = metric(asr, "rivulet_asr_speculative_passes_total", outcome="used")
    dropped = metric(asr, "rivulet_asr_speculative_passes_total", outcome="dropped")
    samples = np.concatenate([speech("set a timer for ten minutes"), np.zeros(RATE, np.float32)])
    request = riva.client.StreamingRecognitionConfig(config=config(), interim_results=False)
    call = client.stub.StreamingRecognize(
        riva.client.asr.streaming_request_generator(chunks(pcm16(samples), message_bytes), request)
    )
    finals = [r.alternatives[0].transcript for response in call for r in response.results if r.is_final]
    assert "timer" in " ".join(finals), finals
    assert metric(asr, "rivulet_asr_speculative_passes_total", outcome="used") == used + 1
    assert metric(asr, "rivulet_asr_speculative_passes_total", outcome="dropped") == dropped


def test_the_early_final_is_whispers_transcript_before_the_final(client):
    """Riva's stop_history_eou: one interim result with stability 1.0 once the VAD has heard that
    much silence and the speculative pass is back, with the words the final then carries (a client
    answers on it ahead of the endpoint); every other interim stays under 1.0, however unchanged
    (NVIDIA's Pipecat and the dialog take 1.0 for the early final)."""
    samples = np.concatenate([speech("set a timer for ten minutes"), np.zeros(RATE, np.float32)])
    cfg = config(endpointing_config=rasr.EndpointingConfig(stop_history=800, stop_history_eou=100))
    request = riva.client.StreamingRecognitionConfig(config=cfg, interim_results=True)

    def microphone():  # 100 ms messages at real-time pace: the pass is back before the endpoint
        for chunk in chunks(pcm16(samples)):
            time.sleep(len(chunk) / 2 / RATE)
            yield chunk

    call = client.stub.StreamingRecognize(riva.client.asr.streaming_request_generator(microphone(), request))
    results = [r for response in call for r in response.results]
    early = [i for i, r in enumerate(results) if not r.is_final and r.stability == 1.0]
    finals = [i for i, r in enumerate(results) if r.is_final]
    assert len(early) == 1 and len(finals) == 1 and early[0] < finals[0], [
        (r.is_final, r.stability, r.alternatives[0].transcript) for r in results
    ]
    text = results[finals[0]].alternatives[0].transcript
    assert "timer" in text and results[early[0]].alternatives[0].transcript == text
    assert all(r.stability <= 0.9 for i, r in enumerate(results) if not r.is_final and i != early[0])


def test_whisper_interims_are_live_captions_of_what_was_said_so_far(client):
    """custom_configuration whisper_interims_ms: while a held-out speaker's utterance goes on, the
    interim results are Whisper's transcript of it so far (stability 0.5), and once one is shown the
    streaming model's are not; the final is Whisper's as always."""
    clip = max(real_speech.sample(real_speech.clips("an4", "test"), 12), key=lambda c: len(c.text))
    reference = canonical_words(clip.text)
    samples = np.concatenate([load(clip), np.zeros(RATE, np.float32)])
    cfg = config(custom_configuration={"whisper_interims_ms": "500"})
    request = riva.client.StreamingRecognitionConfig(config=cfg, interim_results=True)

    def microphone():  # 100 ms messages at real-time pace
        for chunk in chunks(pcm16(samples)):
            time.sleep(len(chunk) / 2 / RATE)
            yield chunk

    call = client.stub.StreamingRecognize(riva.client.asr.streaming_request_generator(microphone(), request))
    results = [r for response in call for r in response.results]
    shown = [(r.is_final, r.stability, r.alternatives[0].transcript) for r in results]
    captions = [i for i, r in enumerate(results) if not r.is_final and r.stability == 0.5]
    final = next(i for i, r in enumerate(results) if r.is_final)
    assert captions and captions[0] < final, shown
    # after the first caption, every interim of the utterance is a caption
    assert all(r.stability == 0.5 for r in results[captions[0] : final] if not r.is_final), shown
    heard = canonical_words(results[captions[-1]].alternatives[0].transcript)
    assert heard and edit_distance(reference[: len(heard)], heard) <= len(heard) // 3, (reference, shown)


BUSY_SENTENCES = (
    "please set a timer for ten minutes and then call my sister",
    "what will the weather be like in boston tomorrow morning",
    "add eggs, butter and two pounds of flour to my shopping list",
    "turn the kitchen lights down to thirty percent before dinner",
    "remind me to water the plants on the balcony every sunday",
    "how long does it take to drive from denver to salt lake city",
    "play something relaxing by a jazz pianist from the fifties",
    "cancel the alarm for six thirty and set one for seven instead",
    "what is on my calendar for the rest of the week",
    "read me the latest headlines about the football game last night",
    "open the garage door and switch on the porch light",
    "how many ounces are there in a cup of water",
)


def test_a_pass_over_the_limit_leaves_the_final_to_the_streaming_model_at_once(
    asr_triton_url, asr_repository, tmp_path
):
    """With Whisper busy (an offline file's passes, which are never refused but count) a stream's
    final is not queued behind them: its pass is refused and the streaming model's hypothesis is the
    final; once Whisper is free again, the next final is Whisper's. The ceiling is 2 (the least the
    limit goes to), not 1: a speculation the stream dropped at a pause between its words still runs
    until Whisper answers it, and on a slow machine a ceiling of 1 refused the stream's own final
    behind it."""
    from concurrent.futures import ThreadPoolExecutor

    service = start_service(
        asr_triton_url, tmp_path / "asr.log", asr_repository,
        asr_second_pass_max_in_flight=2, asr_max_stream_seconds=120, asr_max_stream_bytes=8 * 1024 * 1024,
    )  # fmt: skip
    try:
        client = riva.client.ASRService(riva.client.Auth(uri=service.address))
        # two passes (up to 30 s each) of different sentences: one sentence tiled over the file made
        # Whisper's transcript repetitive, which its temperature fallback decoded again and again (on
        # a loaded machine for over a minute, longer than the stream below waits)
        long_file = np.concatenate([speech(text) for text in BUSY_SENTENCES])
        assert len(long_file) > 35 * RATE, len(long_file) / RATE
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(offline, client, long_file, config())
            deadline = time.monotonic() + 60
            while metric(service, "rivulet_asr_second_passes_in_flight") < 2:
                assert time.monotonic() < deadline and not busy.done(), "the offline passes never started"
                time.sleep(0.02)
            refused = metric(service, "rivulet_asr_second_passes_refused_total")
            text, passes = streaming(client, speech("turn on the lights"), config())
            assert passes == "streaming", (text, passes)  # not "whisper": not queued behind the file
            assert "light" in text  # the streaming model's words
            assert metric(service, "rivulet_asr_second_passes_refused_total") == refused + 1
            assert "timer" in busy.result(timeout=300)
        assert metric(service, "rivulet_asr_second_passes_in_flight") == 0
        text, passes = streaming(client, speech("turn on the lights"), config())
        assert passes == "whisper" and "lights" in text, (text, passes)
    finally:
        service.stop()
