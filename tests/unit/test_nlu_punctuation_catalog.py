"""Which punctuation model PunctuateText uses, and how GetRivaNLPConfig lists it (pure logic)."""

from __future__ import annotations

import grpc
import pytest
from riva.proto import riva_nlp_pb2 as nlp

from rivulet.core.aliases import Aliases, load_section
from rivulet.core.errors import RivuletError
from rivulet.core.triton import ModelInfo
from rivulet.nlu.catalog import ModelCatalog
from rivulet.nlu.servicer import NluServicer
from rivulet.nlu.settings import NluSettings

INTENT = ModelInfo("intent_assistant", "1", {"rivulet_task": "intent_slot", "domain": "assistant"})
PUNCT = ModelInfo("punct_capit_en", "1", {"rivulet_task": "punctuation", "language_code": "en-US"})
PUNCT_DE = ModelInfo("punct_capit_de", "1", {"rivulet_task": "punctuation", "language_code": "de-DE"})


def catalog_of(*infos: ModelInfo) -> ModelCatalog:
    catalog = ModelCatalog("intent_assistant", "triton:8001", Aliases(load_section("nlu")))
    catalog.update(infos)
    return catalog


def error(call) -> RivuletError:
    with pytest.raises(RivuletError) as err:
        call()
    return err.value


def test_no_name_picks_the_first_model_for_the_language_as_riva_does():
    catalog = catalog_of(INTENT, PUNCT_DE, PUNCT)
    assert catalog.punctuation("").name == "punct_capit_de"  # no language: the first one
    assert catalog.punctuation("", "en-US").name == "punct_capit_en"
    assert catalog.punctuation("", "de").name == "punct_capit_de"
    assert [m.name for m in catalog.models] == ["intent_assistant"]  # intent models stay apart


def test_names_and_aliases_and_what_is_not_found():
    catalog = catalog_of(INTENT, PUNCT)
    assert catalog.punctuation("punct_capit_en").name == "punct_capit_en"
    assert catalog.punctuation("RIVA-PUNCTUATION-EN-US", "en-US").name == "punct_capit_en"
    unknown = error(lambda: catalog.punctuation("intent_assistant"))  # not a punctuation model
    assert unknown.code == grpc.StatusCode.NOT_FOUND and "punct_capit_en (en-US)" in unknown.message
    assert "riva-punctuation-en-US" in unknown.message
    other_language = error(lambda: catalog.punctuation("", "es-US"))
    assert other_language.code == grpc.StatusCode.NOT_FOUND and "punct_capit_en" in other_language.message


def test_without_a_punctuation_model_punctuate_text_is_unimplemented_and_says_how_to_build_one():
    missing = error(lambda: catalog_of(INTENT).punctuation(""))
    assert missing.code == grpc.StatusCode.UNIMPLEMENTED and "make models" in missing.message
    assert error(lambda: catalog_of().punctuation("")).code == grpc.StatusCode.UNAVAILABLE  # Triton down


async def test_config_lists_the_punctuation_model_with_its_type_and_alias():
    servicer = NluServicer(NluSettings(), None, catalog_of(INTENT, PUNCT))
    reply = await servicer.GetRivaNLPConfig(nlp.RivaNLPConfigRequest(), None)
    listed = {c.model_name: dict(c.parameters) for c in reply.model_config}
    assert listed["punct_capit_en"]["type"] == "punctuation"
    assert listed["punct_capit_en"]["default"] == "false"
    assert listed["riva-punctuation-en-US"]["alias_of"] == "punct_capit_en"
    assert (
        listed["intent_assistant"]["type"] == "intent_slot"
        and listed["intent_assistant"]["default"] == "true"
    )
    one = await servicer.GetRivaNLPConfig(nlp.RivaNLPConfigRequest(model_name="punct_capit_en"), None)
    assert [c.model_name for c in one.model_config] == ["punct_capit_en"]
