"""NVIDIA python-clients r2.14 NLP scripts (`intentslot_client.py`, `ner_client.py`,
`text_classify_client.py`; removed from python-clients in 2.15) with their default models and
queries, against the running stack. Each test repeats its script's `main()` with `riva.client`
(the scripts' `riva_api` was renamed `riva.client`; the calls are the same). The default model names
are aliases of `intent_assistant`; `riva_ner` answers with slot labels, not entity types (README).
The current python-clients `punctuation_client.py` is repeated the same way (its `run_punct_capit`)."""

from __future__ import annotations

import grpc
import pytest
import riva.client
from riva.client.proto import riva_nlp_pb2 as rnlp

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


# -- punctuation: python-clients main `scripts/nlp/punctuation_client.py` -----------------------------
PUNCTUATION_QUERY = "can you prove that you are self aware"  # the script's --query default


def _words(text: str) -> list[str]:
    return [w.strip(",.?!;:").lower() for w in text.split()]


def test_punctuation_client_defaults(nlp):
    """`run_punct_capit` with the script's defaults: no --model (the server picks its punctuation
    model), --language-code en-US, the default query."""
    result = riva.client.nlp.extract_most_probable_transformed_text(
        nlp.punctuate_text(input_strings=PUNCTUATION_QUERY, model_name=None, language_code="en-US")
    )
    assert _words(result) == _words(PUNCTUATION_QUERY)  # the same words, in order
    assert result[0] == "C" and result[-1] in ".?", result  # capitalized, a sentence


def test_punctuate_text_batch_keeps_order_and_what_the_text_has(nlp):
    texts = [
        "the train leaves by 09:45 A.M. and arrives in 3 hours",
        "what time is it",
        "i think so but i am not sure where we parked the car",
    ]
    response = nlp.punctuate_text(input_strings=texts, model_name="riva-punctuation-en-US")  # alias
    assert len(response.text) == len(texts)
    for source, result in zip(texts, response.text, strict=True):
        assert _words(result) == _words(source)
        assert result[0].isupper() and result[-1] in ".?", result
    assert "09:45 A.M." in response.text[0] and "A.M.." not in response.text[0]


@pytest.mark.parametrize(
    ("model", "language", "code"),
    [("no_such_model", "en-US", grpc.StatusCode.NOT_FOUND), ("", "de-DE", grpc.StatusCode.NOT_FOUND)],
)
def test_punctuate_text_unknown_model_or_language(nlp, model, language, code):
    with pytest.raises(grpc.RpcError) as err:
        nlp.punctuate_text(input_strings="hello there", model_name=model, language_code=language)
    assert err.value.code() == code
    assert "punct_capit_en" in err.value.details()


def test_nlp_config_lists_the_punctuation_model(nlp):
    listed = {
        c.model_name: dict(c.parameters)
        for c in nlp.stub.GetRivaNLPConfig(rnlp.RivaNLPConfigRequest()).model_config
    }
    assert listed["punct_capit_en"]["type"] == "punctuation"
    assert listed["punct_capit_en"]["language_code"] == "en-US"
    assert listed["riva-punctuation-en-US"]["alias_of"] == "punct_capit_en"
    assert listed["intent_assistant"]["type"] == "intent_slot"
