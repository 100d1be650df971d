"""Model choice and output decoding of the NLU service (pure logic, no servers)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from rivulet.core.errors import RivuletError
from rivulet.core.triton import ModelInfo
from rivulet.nlu.catalog import ModelCatalog
from rivulet.nlu.inference import decode


@pytest.fixture
def catalog() -> ModelCatalog:
    catalog = ModelCatalog("intent_assistant", "triton:8001")
    catalog.update(
        [
            ModelInfo("intent_assistant", "1", {"rivulet_task": "intent_slot", "domain": "assistant"}),
            ModelInfo(
                "intent_atis",
                "1",
                {"rivulet_task": "intent_slot", "domain": "atis", "language_code": "en-US"},
            ),
            ModelInfo("asr_acoustic", "1", {"rivulet_task": "asr"}),
        ]
    )
    return catalog


def _code(call) -> grpc.StatusCode:
    with pytest.raises(RivuletError) as err:
        call()
    return err.value.code


def test_only_intent_slot_models_are_listed(catalog):
    assert [m.name for m in catalog.models] == ["intent_assistant", "intent_atis"]


def test_choice_by_name_domain_and_default(catalog):
    assert catalog.by_name("").name == "intent_assistant"
    assert catalog.by_name("intent_atis").name == "intent_atis"
    assert catalog.by_domain("").name == "intent_assistant"
    assert catalog.by_domain("atis").name == "intent_atis"
    assert catalog.by_domain("intent_atis").name == "intent_atis"  # a model name works as a domain


def test_language_matching(catalog):
    assert catalog.by_name("", "en-US").name == "intent_assistant"
    assert catalog.by_name("", "EN").name == "intent_assistant"
    assert _code(lambda: catalog.by_name("", "de-DE")) == grpc.StatusCode.NOT_FOUND


def test_unknown_names_and_empty_catalog(catalog):
    assert _code(lambda: catalog.by_name("nope")) == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: catalog.by_domain("weather")) == grpc.StatusCode.NOT_FOUND
    empty = ModelCatalog("intent_assistant", "triton:8001")
    assert _code(lambda: empty.by_name("")) == grpc.StatusCode.UNAVAILABLE


def test_decode_maps_spans_onto_the_text():
    text = "Play Adele, now!"
    outputs = {
        "INTENT_LABELS": np.array([[b"PlayMusic", b"Greet"]], dtype=object),
        "INTENT_SCORES": np.array([[0.9, 0.1]], dtype=np.float32),
        "SLOT_LABELS": np.array([[b"artist"]], dtype=object),
        "SLOT_SCORES": np.array([[0.8]], dtype=np.float32),
        "SLOT_SPANS": np.array([[[5, 10]]], dtype=np.int32),
    }
    result = decode(text, outputs)
    assert result.intent == ("PlayMusic", pytest.approx(0.9))
    assert [(s.label, s.text, s.start, s.end) for s in result.slots] == [("artist", "Adele", 5, 10)]


def test_decode_without_slots():
    outputs = {
        "INTENT_LABELS": np.array([[b"Greet"]], dtype=object),
        "INTENT_SCORES": np.array([[1.0]], dtype=np.float32),
        "SLOT_LABELS": np.zeros((1, 0), dtype=object),
        "SLOT_SCORES": np.zeros((1, 0), dtype=np.float32),
        "SLOT_SPANS": np.zeros((1, 0, 2), dtype=np.int32),
    }
    assert decode("hi", outputs).slots == []
