"""Loading SNIPS/ATIS and assembling each model's corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.nlu.corpus import Corpus, load_corpus, subsample
from pipelines.nlu.datasets import Example, is_valid_bio, read_split, write_split
from pipelines.nlu.paths import data_dir
from pipelines.nlu.recipes import recipe_for

NLU = data_dir() / "nlu"
needs_data = pytest.mark.skipif(not (NLU / "snips").is_dir(), reason=f"shared data not found at {NLU}")


@needs_data
@pytest.mark.parametrize(("name", "sizes"), [("snips", (13084, 700, 700)), ("atis", (4478, 500, 893))])
def test_splits_load_with_aligned_words_and_tags(name: str, sizes: tuple[int, int, int]) -> None:
    for split, size in zip(("train", "dev", "test"), sizes, strict=True):
        examples = read_split(NLU / name / split)
        assert len(examples) == size
        assert all(len(e.words) == len(e.tags) > 0 and e.intent for e in examples)
        assert all(w == w.strip() and w for e in examples for w in e.words)


def test_read_split_rejects_misaligned_lines(tmp_path: Path) -> None:
    (tmp_path / "seq.in").write_text("play some music \n")
    (tmp_path / "seq.out").write_text("O O\n")
    (tmp_path / "label").write_text("PlayMusic\n")
    with pytest.raises(ValueError, match="3 words but 2 tags"):
        read_split(tmp_path)


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    examples = [Example(("wake", "me", "at", "7", "am"), ("O", "O", "O", "B-time", "I-time"), "SetAlarm")]
    write_split(tmp_path, examples)
    assert read_split(tmp_path) == examples


def test_is_valid_bio() -> None:
    assert is_valid_bio(["O", "B-a", "I-a", "B-b", "O"])
    assert not is_valid_bio(["O", "I-a"])
    assert not is_valid_bio(["B-a", "I-b"])
    assert not is_valid_bio(["X-a"])


@needs_data
def test_assistant_corpus_joins_snips_the_generated_domain_and_slurp() -> None:
    corpus = load_corpus("assistant")
    assert set(corpus.train) == set(corpus.dev) == set(corpus.test) == {"snips", "assistant", "slurp"}
    assert len(corpus.train["snips"]) == 13084 and len(corpus.test["snips"]) == 700
    for intent in ("PlayMusic", "GetWeather", "SetTimer", "LightsOn", "Greet", "Cancel"):
        assert intent in corpus.intents
    assert corpus.slot_tags[0] == "O"
    assert {"B-artist", "B-duration", "B-room", "I-room"} <= set(corpus.slot_tags)
    assert "OutOfScope" in corpus.intents and "X" not in corpus.slot_tags


@needs_data
def test_real_dev_in_training_moves_slurps_dev_part_into_train_and_keeps_its_test_part() -> None:
    held_out = load_corpus("assistant")
    joined = load_corpus("assistant", real_dev_in_training=True)
    assert "slurp" not in joined.dev and set(joined.dev) == {"snips", "assistant"}
    assert joined.train["slurp"] == [*held_out.train["slurp"], *held_out.dev["slurp"]]
    assert joined.test == held_out.test and joined.train["snips"] == held_out.train["snips"]


@needs_data
def test_atis_corpus_labels_come_from_train_only() -> None:
    corpus = load_corpus("atis")
    train_intents = {e.intent for e in corpus.train["atis"]}
    assert set(corpus.intents) == train_intents
    unseen = {e.intent for e in corpus.test["atis"]} - train_intents
    assert unseen, "ATIS test is known to hold intents unseen in train"


def test_real_in_scope_phrasings_repeat_and_nothing_else_does() -> None:
    def ex(intent: str) -> Example:
        return Example(("w",), ("O",), intent)

    corpus = Corpus(
        "assistant",
        train={"snips": [ex("PlayMusic")], "slurp": [ex("GetWeather"), ex("OutOfScope"), ex("SetAlarm")]},
        dev={}, test={}, intents=[], slot_tags=["O"],
    )  # fmt: skip
    once = ["PlayMusic", "GetWeather", "OutOfScope", "SetAlarm"]
    assert [e.intent for e in corpus.train_examples()] == once
    intents = [e.intent for e in corpus.train_examples(3)]
    assert intents.count("GetWeather") == intents.count("SetAlarm") == 3
    assert intents.count("OutOfScope") == intents.count("PlayMusic") == 1
    assert recipe_for("assistant", "full").real_in_scope_repeats == 1  # 3 tried: no gain (recipes.py)


def test_subsample_caps_each_intent_deterministically() -> None:
    examples = [Example(("w",), ("O",), intent) for intent in ["A"] * 10 + ["B"] * 3]
    picked = subsample(examples, 4, seed=1)
    assert [e.intent for e in picked].count("A") == 4 and [e.intent for e in picked].count("B") == 3
    assert subsample(examples, 4, seed=1) == picked


def test_data_dir_is_overridable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RIVULET_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("RIVULET_DATA_DIR")
    assert data_dir() == Path(__file__).resolve().parents[3] / "shared" / "data"
