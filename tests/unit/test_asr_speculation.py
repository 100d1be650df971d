"""When a stream's second pass starts speculatively (rivulet.asr.session.speculate_after_ms)."""

from __future__ import annotations

from rivulet.asr.endpointing import EndpointingParams
from rivulet.asr.session import speculate_after_ms
from rivulet.asr.settings import AsrSettings

IDLE_MS = AsrSettings().asr_second_pass_speculate_after_ms


def test_an_idle_whisper_gets_the_pass_at_the_first_silence():
    assert speculate_after_ms(EndpointingParams(), busy_ms=0, idle_ms=IDLE_MS) == IDLE_MS == 60
    assert speculate_after_ms(EndpointingParams(), busy_ms=0, idle_ms=30) == 30


def test_a_busy_whisper_starts_never_before_the_idle_threshold():
    # busy: still PASS_HEAD_START_MS before the dialog's early final, never before the idle threshold
    dialog = EndpointingParams(stop_history_ms=160, stop_history_eou_ms=100)
    assert speculate_after_ms(dialog, busy_ms=240, idle_ms=30) == 40
    assert speculate_after_ms(EndpointingParams(stop_history_ms=800), busy_ms=240, idle_ms=30) == 240


def test_a_busy_whisper_waits_for_a_longer_silence_within_the_default_endpoint():
    assert speculate_after_ms(EndpointingParams(stop_history_ms=800), busy_ms=240, idle_ms=IDLE_MS) == 240


def test_a_short_endpoint_still_finds_its_pass_begun():
    # PASS_HEAD_START_MS (60) before the endpoint at the latest, and never before the first silence
    assert speculate_after_ms(EndpointingParams(stop_history_ms=200), busy_ms=240, idle_ms=IDLE_MS) == 140
    assert speculate_after_ms(EndpointingParams(stop_history_ms=100), busy_ms=240, idle_ms=IDLE_MS) == 60


def test_the_early_final_counts_before_the_endpoint():
    # the dialog's: early final at 100 ms of silence, endpoint at 160
    dialog = EndpointingParams(stop_history_ms=160, stop_history_eou_ms=100)
    assert speculate_after_ms(dialog, busy_ms=240, idle_ms=IDLE_MS) == 60
    assert speculate_after_ms(EndpointingParams(stop_history_ms=800, stop_history_eou_ms=300), 240, 30) == 240
    assert speculate_after_ms(EndpointingParams(stop_history_ms=800, stop_history_eou_ms=200), 240, 30) == 140
