"""The alias table: names Riva clients send by default resolve to what Rivulet serves, are listed
as Riva lists its models, and unknown names stay NOT_FOUND listing what exists."""

from __future__ import annotations

import json
import re

import grpc
import pytest
from riva.proto import riva_asr_pb2 as asr
from riva.proto import riva_nlp_pb2 as nlp
from riva.proto import riva_tts_pb2 as tts

from rivulet.asr.catalog import ModelCatalog as AsrCatalog
from rivulet.asr.servicer import AsrServicer
from rivulet.asr.settings import AsrSettings
from rivulet.core.aliases import Aliases, load_section
from rivulet.core.errors import RivuletError
from rivulet.core.triton import ModelInfo
from rivulet.nlu.catalog import ModelCatalog as NluCatalog
from rivulet.nlu.servicer import NluServicer
from rivulet.nlu.settings import NluSettings
from rivulet.tts.catalog import VoiceCatalog
from rivulet.tts.servicer import TtsServicer
from rivulet.tts.settings import TtsSettings
from tests.support import ROOT
from tests.unit.test_asr_requests import asr_info

# What the ecosystem sends when left at its defaults (FACTS.md, issue 15).
ECOSYSTEM_DEFAULTS = {
    "asr": ["parakeet-1.1b-en-US-asr-streaming-silero-vad-sortformer"],  # LiveKit STT
    "tts": ["Magpie-Multilingual.EN-US.Aria", "Magpie-Multilingual.EN-US.Leo"],  # Pipecat, LiveKit TTS
    "nlu": ["riva_intent_weather", "riva_ner", "riva_text_classification_domain"],  # python-clients r2.14
}


def embedded_voices() -> set[str]:
    config = (ROOT / "models" / "tts_embedded" / "config.pbtxt").read_text()
    subvoices = re.search(r'"subvoices" value: \{ string_value: "([^"]+)"', config).group(1)
    return {f"English-US.{s.split(':')[0]}" for s in subvoices.split(",")}


def error(call) -> RivuletError:
    with pytest.raises(RivuletError) as err:
        call()
    return err.value


def test_the_default_table_covers_the_ecosystem_and_points_at_what_rivulet_serves():
    targets = {
        "asr": {"asr_streaming"},
        "tts": embedded_voices(),
        "nlu": {"intent_assistant", "punct_capit_en"},
    }
    for section, names in ECOSYSTEM_DEFAULTS.items():
        table = load_section(section)
        assert set(names) <= set(table), section
        assert set(table.values()) <= targets[section], section
    assert all(".EN-US." in alias or "English-US" in alias for alias in load_section("tts"))  # English only


def test_settings_hold_the_table_and_an_environment_variable_replaces_it(monkeypatch):
    assert TtsSettings().tts_voice_aliases == load_section("tts")
    monkeypatch.setenv("RIVULET_TTS_VOICE_ALIASES", '{"My.Voice": "English-US.Male-1"}')
    monkeypatch.setenv("RIVULET_ASR_MODEL_ALIASES", "{}")
    assert TtsSettings().tts_voice_aliases == {"My.Voice": "English-US.Male-1"}
    assert AsrSettings().asr_model_aliases == {}


@pytest.fixture
def asr_catalog() -> AsrCatalog:
    catalog = AsrCatalog("asr_streaming", "triton:8001", aliases=Aliases(load_section("asr")))
    catalog.update([asr_info("asr_streaming")])
    return catalog


async def test_asr_aliases_select_the_model_and_are_listed(asr_catalog):
    livekit = ECOSYSTEM_DEFAULTS["asr"][0]
    assert asr_catalog.select(livekit, "en-US").name == "asr_streaming"
    assert asr_catalog.select(livekit.upper()).name == "asr_streaming"
    unknown = error(lambda: asr_catalog.select("conformer-de-DE-asr-streaming-asr-bls-ensemble"))
    assert unknown.code == grpc.StatusCode.NOT_FOUND
    assert "asr_streaming (en-US)" in unknown.message and livekit in unknown.message
    servicer = AsrServicer(AsrSettings(), triton=None, catalog=asr_catalog, releaser=None)
    reply = await servicer.GetRivaSpeechRecognitionConfig(asr.RivaSpeechRecognitionConfigRequest(), None)
    listed = {(c.model_name, c.parameters["type"]): c.parameters for c in reply.model_config}
    assert listed[(livekit, "online")]["alias_of"] == "asr_streaming"
    assert listed[(livekit, "online")]["language_code"] == "en-US"  # what transcribe_file --list-models reads
    assert "alias_of" not in listed[("asr_streaming", "online")]
    one = await servicer.GetRivaSpeechRecognitionConfig(
        asr.RivaSpeechRecognitionConfigRequest(model_name=livekit), None
    )
    assert {c.model_name for c in one.model_config} == {livekit}


def test_an_alias_whose_target_is_not_loaded_is_not_found():
    catalog = AsrCatalog("asr_streaming", "triton:8001", aliases=Aliases({"x-asr": "asr_missing"}))
    catalog.update([asr_info("asr_streaming")])
    assert error(lambda: catalog.select("x-asr")).code == grpc.StatusCode.NOT_FOUND


@pytest.fixture
def voices() -> VoiceCatalog:
    catalog = VoiceCatalog("English-US.Male-2", "triton:8001", Aliases(load_section("tts")))
    subvoices = ",".join(f"{v.split('.')[1]}:{i}" for i, v in enumerate(sorted(embedded_voices())))
    params = {
        "rivulet_task": "tts",
        "language_code": "en-US",
        "voice_name": "English-US",
        "subvoices": subvoices,
    }
    catalog.update([ModelInfo("tts_embedded", "1", params)])
    return catalog


def test_tts_aliases_resolve_emotions_too_and_other_languages_are_not_found(voices):
    assert voices.resolve("Magpie-Multilingual.EN-US.Aria", "en-US").name == "English-US.Female-1"
    assert voices.resolve("magpie-multilingual.en-us.leo", "").name == "English-US.Male-2"
    assert voices.resolve("Magpie-Multilingual.EN-US.Aria.Calm", "en-US").name == "English-US.Female-1"
    spanish = error(lambda: voices.resolve("Magpie-Multilingual.ES-US.Diego", "es-US"))
    assert spanish.code == grpc.StatusCode.NOT_FOUND
    assert "English-US.Male-2" in spanish.message and "Magpie-Multilingual.EN-US.Aria" in spanish.message
    wrong_language = error(lambda: voices.resolve("Magpie-Multilingual.EN-US.Aria", "de-DE"))
    assert wrong_language.code == grpc.StatusCode.NOT_FOUND and "de-DE" in wrong_language.message
    assert error(lambda: voices.resolve("Nope.Voice", "")).code == grpc.StatusCode.NOT_FOUND


async def test_tts_aliases_are_listed_as_talk_py_lists_voices(voices):
    servicer = TtsServicer(TtsSettings(), synthesizer=None, catalog=voices)
    reply = await servicer.GetRivaSynthesisConfig(tts.RivaSynthesisConfigRequest(), None)
    listed = set()
    for config in reply.model_config:  # talk.py --list-voices
        p = config.parameters
        listed |= {f"{p['voice_name']}.{s.split(':')[0]}" for s in p["subvoices"].split(",")}
        assert p["language_code"] == "en-US"
    assert {*ECOSYSTEM_DEFAULTS["tts"], *embedded_voices()} <= listed
    magpie = next(c for c in reply.model_config if c.model_name == "Magpie-Multilingual.EN-US")
    assert (
        json.loads(magpie.parameters["alias_of"])["Magpie-Multilingual.EN-US.Aria"] == "English-US.Female-1"
    )


@pytest.fixture
def nlu_catalog() -> NluCatalog:
    catalog = NluCatalog("intent_assistant", "triton:8001", Aliases(load_section("nlu")))
    catalog.update(
        [ModelInfo("intent_assistant", "1", {"rivulet_task": "intent_slot", "domain": "assistant"})]
    )
    return catalog


async def test_nlu_aliases_work_as_model_names_and_domains_and_are_listed(nlu_catalog):
    for name in ECOSYSTEM_DEFAULTS["nlu"]:
        assert nlu_catalog.by_name(name).name == "intent_assistant"
        assert nlu_catalog.by_domain(name).name == "intent_assistant"
    unknown = error(lambda: nlu_catalog.by_name("riva_qa"))
    assert unknown.code == grpc.StatusCode.NOT_FOUND and "riva_intent_weather" in unknown.message
    servicer = NluServicer(NluSettings(), None, nlu_catalog)
    reply = await servicer.GetRivaNLPConfig(nlp.RivaNLPConfigRequest(), None)
    listed = {c.model_name: c.parameters.get("alias_of") for c in reply.model_config}
    assert listed["intent_assistant"] is None and listed["riva_ner"] == "intent_assistant"
