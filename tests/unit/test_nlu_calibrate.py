"""The out-of-scope threshold: calibrated on the dev sets, or left at 0 when the recipe trains on the
real phrasings' dev part."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.nlu.calibrate import calibrate, calibrate_for
from pipelines.nlu.datasets import Example
from pipelines.nlu.recipes import ASSISTANT_FULL, QUICK

INTENTS = ["OutOfScope", "GetTime", "LightsOn"]


class TableRuntime:
    """A runtime whose intent probabilities are given per sentence (the calibration's only input)."""

    intents = INTENTS
    out_of_scope = "OutOfScope"

    def __init__(self, probs: dict[str, list[float]]) -> None:
        self.probs = probs

    def predict_words(self, sentences: list[tuple[str, ...]]) -> tuple[np.ndarray, None]:
        return np.array([self.probs[" ".join(words)] for words in sentences]), None


def example(text: str, intent: str) -> Example:
    words = tuple(text.split())
    return Example(words, ("O",) * len(words), intent)


# In-scope requests with best in-scope probabilities 0.95, 0.9, 0.8, 0.6 and one the class rejects;
# out-of-scope ones with best in-scope probabilities 0.7 and 0.5 (the class loses) and one it wins.
PROBS = {
    "what time is it": [0.02, 0.95, 0.03],
    "lights on": [0.05, 0.05, 0.9],
    "time please": [0.1, 0.8, 0.1],
    "light it up": [0.3, 0.1, 0.6],
    "phones": [0.9, 0.05, 0.05],
    "send an email": [0.2, 0.7, 0.1],
    "tell me a joke": [0.25, 0.25, 0.5],
    "order a pizza": [0.8, 0.1, 0.1],
}
DEV = {
    "snips": [example("what time is it", "GetTime"), example("lights on", "LightsOn")],
    "slurp": [
        example("time please", "GetTime"),
        example("light it up", "LightsOn"),
        example("phones", "GetTime"),
        example("send an email", "OutOfScope"),
        example("tell me a joke", "OutOfScope"),
        example("order a pizza", "OutOfScope"),
    ],
}


def test_the_threshold_is_the_highest_that_keeps_every_sources_false_rejection_within_its_limit() -> None:
    report = calibrate(TableRuntime(PROBS), DEV)
    # SLURP already loses "phones" to the class (1 of 3 in-scope, over its 2 % limit at every
    # threshold): no threshold above 0 passes.
    assert report["threshold"] == 0.0
    assert report["dev"]["slurp"]["in_scope_false_rejection"] == pytest.approx(1 / 3)
    assert report["dev"]["slurp"]["out_of_scope_rejection"] == pytest.approx(1 / 3)

    without_phones = {**DEV, "slurp": [e for e in DEV["slurp"] if e.words != ("phones",)]}
    report = calibrate(TableRuntime(PROBS), without_phones)
    # the lowest in-scope probability (0.6, "light it up") passes: strictly under it is rejected
    assert report["threshold"] == pytest.approx(0.6)
    assert report["dev"]["slurp"]["in_scope_false_rejection"] == 0.0
    assert report["dev"]["slurp"]["out_of_scope_rejection"] == pytest.approx(2 / 3)  # "tell me a joke" too


def test_a_recipe_trained_on_the_real_dev_part_keeps_threshold_0_without_loading_the_model() -> None:
    def never() -> TableRuntime:
        raise AssertionError("the model must not be loaded to calibrate a recipe that trains on dev")

    assert ASSISTANT_FULL.real_dev_in_training
    report = calibrate_for(ASSISTANT_FULL, never, DEV)
    assert report["threshold"] == 0.0 and "skipped" in report


def test_a_recipe_that_holds_the_dev_part_out_is_calibrated_on_it() -> None:
    assert not QUICK.real_dev_in_training
    without_phones = {**DEV, "slurp": [e for e in DEV["slurp"] if e.words != ("phones",)]}
    report = calibrate_for(QUICK, lambda: TableRuntime(PROBS), without_phones)
    assert report["threshold"] == pytest.approx(0.6) and "skipped" not in report
