"""The dialog and gateway benches take a built intent model from --nlu-repository as is."""

from pathlib import Path

import pytest

from bench.dialog_task_success import nlu_source


def test_a_given_repository_is_used_as_is(tmp_path: Path) -> None:
    model = tmp_path / "intent_assistant"
    model.mkdir()
    (model / "config.pbtxt").write_text('name: "intent_assistant"\n')
    assert nlu_source(tmp_path / "work", "full", tmp_path) == model
    assert not (tmp_path / "work").exists()  # nothing was built


def test_a_repository_without_the_model_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no intent_assistant/config.pbtxt in"):
        nlu_source(tmp_path / "work", "auto", tmp_path)
