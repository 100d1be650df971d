"""The SLURP mapping (data/slurp_mapping.toml) and the deterministic train / dev / test split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.nlu.assistant_domain import TEMPLATES
from pipelines.nlu.datasets import UNLABELLED
from pipelines.nlu.slurp import devel_file, intent_key, load_mapping, load_parts, part_of, to_example

needs_data = pytest.mark.skipif(not devel_file().is_file(), reason=f"SLURP not found at {devel_file()}")
SNIPS_INTENTS = {
    "AddToPlaylist",
    "BookRestaurant",
    "GetWeather",
    "PlayMusic",
    "RateBook",
    "SearchCreativeWork",
    "SearchScreeningEvent",
}


def record(sentence: str, scenario: str, intent: str, entities: list[tuple[str, list[int]]] = ()) -> dict:
    return {
        "slurp_id": 1,
        "sentence": sentence,
        "scenario": scenario,
        "intent": intent,
        "tokens": [{"surface": w} for w in sentence.split()],
        "entities": [{"type": t, "span": span} for t, span in entities],
    }


def test_every_mapped_intent_is_an_assistant_intent_and_slots_are_its_labels() -> None:
    mapping = load_mapping()
    assert mapping.intents <= set(TEMPLATES) | SNIPS_INTENTS
    assert mapping.out_of_scope_intent not in set(TEMPLATES) | SNIPS_INTENTS
    for rule in mapping.rules:
        assert bool(rule.intent) != bool(rule.exclude)
        if rule.intent in SNIPS_INTENTS:
            assert rule.slots == {}, f"{rule.intent}: SNIPS slot conventions differ from SLURP's"


def test_entities_become_bio_tags_and_other_words_are_unlabelled() -> None:
    example = to_example(
        record(
            "please wake me up at five am tomorrow", "alarm", "alarm_set", [("time", [5, 6]), ("date", [7])]
        ),
        load_mapping(),
    )
    assert example.intent == "SetAlarm"
    assert example.tags == (*[UNLABELLED] * 5, "B-time", "I-time", "B-date")


def test_unmapped_scenarios_are_out_of_scope_and_entity_types_without_a_slot_are_dropped() -> None:
    mapping = load_mapping()
    example = to_example(
        record("send an email to mum", "email", "email_sendemail", [("relation", [4])]), mapping
    )
    assert example.intent == mapping.out_of_scope_intent and set(example.tags) == {UNLABELLED}


def test_rule_conditions_choose_between_intents_and_exclusion() -> None:
    mapping = load_mapping()
    date = to_example(record("what is the date today", "datetime", "datetime_query"), mapping)
    time = to_example(record("tell me what time it is", "datetime", "datetime_query"), mapping)
    elsewhere = to_example(
        record("what is the time in new york", "datetime", "datetime_query", [("place_name", [5, 6])]),
        mapping,
    )
    assert (date.intent, time.intent, elsewhere) == ("GetDate", "GetTime", None)
    added = to_example(record("add milk to my grocery list", "lists", "lists_createoradd"), mapping)
    created = to_example(record("create a new list for work", "lists", "lists_createoradd"), mapping)
    assert (added.intent, created.intent) == ("ListAdd", mapping.out_of_scope_intent)


def test_apostrophes_split_like_the_runtime_and_continue_a_slot() -> None:
    example = to_example(
        record("dim the kids' room's lights", "iot", "hue_lightdim", [("house_place", [2, 3])]),
        load_mapping(),
    )
    assert example.intent == "SetBrightness"  # scenario "iot" + intent "hue_lightdim"
    assert example.words == ("dim", "the", "kids", "room", "s", "lights")
    assert example.tags == (UNLABELLED, UNLABELLED, "B-room", "I-room", "I-room", UNLABELLED)


def test_intent_key_repairs_records_whose_intent_lacks_the_scenario() -> None:
    assert intent_key({"scenario": "play", "intent": "music"}) == "play_music"
    assert intent_key({"scenario": "general", "intent": "general_greet"}) == "general_greet"
    assert intent_key({"scenario": "alarm", "intent": "alarm_set"}) == "alarm_set"


def test_split_is_a_function_of_the_normalized_sentence() -> None:
    assert part_of("Wake me up at SEVEN") == part_of("wake me  up at seven")
    parts = [part_of(f"sentence number {n}") for n in range(2000)]
    shares = {name: parts.count(name) / len(parts) for name in ("train", "dev", "test")}
    assert 0.55 < shares["train"] < 0.65 and 0.12 < shares["dev"] < 0.18 and 0.22 < shares["test"] < 0.28


@needs_data
def test_devel_parts_are_disjoint_deterministic_and_hold_both_kinds(tmp_path: Path) -> None:
    parts = load_parts()
    assert parts == load_parts()
    seen = [{" ".join(e.words) for e in examples} for examples in parts.values()]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    oos = load_mapping().out_of_scope_intent
    for examples in parts.values():
        in_scope = [e for e in examples if e.intent != oos]
        assert len(in_scope) >= 50 and len(examples) - len(in_scope) >= 150
    # the same sentence typed twice with different ids lands in the same part
    line = devel_file().read_text(encoding="utf-8").splitlines()[0]
    twin = json.loads(line) | {"slurp_id": -1, "sentence": json.loads(line)["sentence"].upper()}
    copy = tmp_path / "devel.jsonl"
    copy.write_text(line + "\n" + json.dumps(twin) + "\n")
    assert sum(len(v) == 2 for v in load_parts(copy).values()) == 1
