"""NVIDIA python-clients r2.14 NLP scripts (`intentslot_client.py`, `ner_client.py`,
`text_classify_client.py`; removed from python-clients in 2.15) with their default models and
queries, against the running stack. Each test repeats its script's `main()` with `riva.client`
(the scripts' `riva_api` was renamed `riva.client`; the calls are the same). The default model names
are aliases of `intent_assistant`; `riva_ner` answers with slot labels, not entity types (README)."""

from __future__ import annotations

import pytest
import riva.client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def nlp(riva_stack) -> riva.client.NLPService:
    return riva.client.NLPService(riva.client.Auth(uri=riva_stack))


def test_intentslot_client_defaults(nlp):
    query, model = "What is the weather tomorrow?", "riva_intent_weather"
    intents, intent_confidences = riva.client.extract_most_probable_text_class_and_confidence(
        nlp.classify_text(input_strings=query, model_name=model)
    )
    tokens, slots, slot_confidences, _, _ = (
        riva.client.extract_most_probable_token_classification_predictions(
            nlp.classify_tokens(input_strings=query, model_name=model)
        )
    )
    assert intents == ["GetWeather"] and 0 < intent_confidences[0] <= 1
    assert len(slots[0]) == len(slot_confidences[0]) == len(tokens[0])  # what pretty_print_result zips


def test_ner_client_defaults(nlp):
    queries = ["Where is San Francisco?", "Jensen Huang is the CEO of NVIDIA Corporation."]
    tokens, slots, _, starts, ends = riva.client.extract_most_probable_token_classification_predictions(
        nlp.classify_tokens(input_strings=queries, model_name="riva_ner")
    )
    assert len(slots) == len(starts) == len(ends) == 2  # one prediction list per query, as the script prints
    for query, words, found, begin, end in zip(queries, tokens, slots, starts, ends, strict=True):
        assert all(query[b:e].lower() == w.lower() for w, b, e in zip(words, begin, end, strict=True))
        assert len(found) == len(words)


def test_text_classify_client_defaults(nlp):
    classes, scores = riva.client.extract_most_probable_text_class_and_confidence(
        nlp.classify_text("How much sun does california get?", "riva_text_classification_domain")
    )
    assert classes == ["GetWeather"] and 0 < scores[0] <= 1
