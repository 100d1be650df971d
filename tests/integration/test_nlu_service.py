"""The NLU service against a real tritonserver, called as a Riva user would: riva.client.NLPService."""

from __future__ import annotations

import concurrent.futures
import json

import grpc
import pytest
import riva.client
import tritonclient.grpc as grpcclient
from riva.client.proto import riva_nlp_pb2 as rnlp

from rivulet.core.tritonserver import TritonServer
from rivulet.nlu.service import WARM_UP_TEXTS
from tests.support import ServiceProcess, free_port, health_status, wait_for_health

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def nlu(triton, tmp_path_factory):
    log = tmp_path_factory.mktemp("nlu") / "nlu.log"
    service = ServiceProcess("rivulet.nlu", log, {"triton_url": triton.grpc_url, "readiness_interval_s": 0.2})
    service.start()
    try:
        wait_for_health(service.address, service="nvidia.riva.nlp.RivaLanguageUnderstanding")
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def client(nlu) -> riva.client.NLPService:
    return riva.client.NLPService(riva.client.Auth(uri=nlu.address))


def _inferences(triton, model: str) -> int:
    """How many requests Triton has run `model` on."""
    with grpcclient.InferenceServerClient(triton.grpc_url) as client:
        [stats] = client.get_inference_statistics(model).model_stats
        return int(stats.inference_count)


def test_the_default_model_is_warmed_up_before_the_service_serves(triton, tmp_path):
    """A fresh NLU service runs its default model on a few requests before it reports SERVING (the
    first requests through Triton's python backend are the slow ones), so the first user's is not.
    Nothing but the service calls Triton here: the model's count grows by the warm-up texts alone."""
    before = _inferences(triton, "intent_assistant")
    service = ServiceProcess(
        "rivulet.nlu", tmp_path / "nlu.log", {"triton_url": triton.grpc_url, "readiness_interval_s": 0.2}
    )
    service.start()
    try:
        wait_for_health(service.address, service="nvidia.riva.nlp.RivaLanguageUnderstanding")
        assert _inferences(triton, "intent_assistant") - before == len(WARM_UP_TEXTS)
        assert "warmed up intent_assistant with 2 requests" in (tmp_path / "nlu.log").read_text()
    finally:
        service.stop()


def _slots(response) -> dict[str, str]:
    return {s.label[0].class_name: s.token for s in response.slots}


def test_analyze_intent_play_music_with_slots(client):
    query = "play the latest album by adele"
    response = client.analyze_intent(query)
    assert response.intent.class_name == "PlayMusic"
    assert 0.5 < response.intent.score <= 1.0
    assert response.domain_str == "assistant"
    adele = [s for s in response.slots if s.token == "adele"]
    assert adele, f"no slot covers 'adele': {response.slots}"
    assert adele[0].label[0].class_name == "artist"
    for slot in response.slots:
        assert query[slot.span[0].start : slot.span[0].end] == slot.token
        assert 0.0 < slot.label[0].score <= 1.0


@pytest.mark.parametrize(
    ("query", "intent", "slot"),
    [
        ("Set a timer for five minutes, please!", "SetTimer", ("duration", "five minutes")),
        ("turn on the kitchen lights", "LightsOn", ("room", "kitchen")),
        ("What time is it?", "GetTime", None),
    ],
)
def test_analyze_intent_assistant_domain(client, query, intent, slot):
    response = client.analyze_intent(query, options=rnlp.AnalyzeIntentOptions(domain="assistant"))
    assert response.intent.class_name == intent
    if slot:
        assert _slots(response).get(slot[0]) == slot[1]


def test_unknown_domain_is_not_found(client):
    with pytest.raises(grpc.RpcError) as err:
        client.analyze_intent("hello", options=rnlp.AnalyzeIntentOptions(domain="weather"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "assistant" in err.value.details()


@pytest.mark.parametrize(("query", "needle"), [("", "empty"), ("   ", "empty"), ("a" * 513, "limit is 512")])
def test_bad_text_is_invalid_argument(client, query, needle):
    with pytest.raises(grpc.RpcError) as err:
        client.analyze_intent(query)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in err.value.details()


def test_classify_text_ranks_intents(client):
    response = client.classify_text(["play some jazz", "hello there"], model_name="intent_assistant")
    assert [r.labels[0].class_name for r in response.results] == ["PlayMusic", "Greet"]
    ranked = client.stub.ClassifyText(
        rnlp.TextClassRequest(text=["play some jazz"], top_n=3, model=rnlp.NLPModelParams(model_name=""))
    )
    scores = [label.score for label in ranked.results[0].labels]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)


def test_classify_tokens_returns_spans(client):
    text = "add adele to my workout playlist"
    response = client.classify_tokens([text], model_name="intent_assistant")
    tokens = {v.label[0].class_name: v.token for v in response.results[0].results}
    assert tokens.get("artist") == "adele"
    for value in response.results[0].results:
        assert text[value.span[0].start : value.span[0].end] == value.token


def test_unknown_model_is_not_found(client):
    with pytest.raises(grpc.RpcError) as err:
        client.classify_text(["hello"], model_name="riva_qa")  # no alias: riva_intent_weather has one
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "intent_assistant" in err.value.details() and "riva_intent_weather" in err.value.details()


def test_get_config_lists_models(client):
    response = client.stub.GetRivaNLPConfig(rnlp.RivaNLPConfigRequest())
    configs = {c.model_name: dict(c.parameters) for c in response.model_config}
    assert configs["intent_assistant"]["domain"] == "assistant"
    assert configs["intent_assistant"]["language_code"] == "en-US"
    assert configs["intent_assistant"]["type"] == "intent_slot"
    assert configs["intent_assistant"]["out_of_scope_intent"] == "OutOfScope"
    with pytest.raises(grpc.RpcError) as err:
        client.stub.GetRivaNLPConfig(rnlp.RivaNLPConfigRequest(model_name="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_punctuate_text_keeps_the_words_and_the_order(client):
    """punct_capit_en (the session's quick build) through the service; with no punctuation model
    loaded the answer is UNIMPLEMENTED (tests/unit/test_nlu_punctuation_catalog.py)."""
    texts = ["hello world", "what time is it", "set a timer for ten minutes"]
    response = client.punctuate_text(texts)
    assert [[w.strip(",.?") for w in t.lower().split()] for t in response.text] == [t.split() for t in texts]
    assert all(t[0].isupper() for t in response.text)
    with pytest.raises(grpc.RpcError) as err:
        client.punctuate_text(["   "])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_request_id_is_echoed_and_in_logs(client, nlu):
    request = rnlp.AnalyzeIntentRequest(query="what time is it", id={"value": "trace-7f3a"})
    assert client.stub.AnalyzeIntent(request).id.value == "trace-7f3a"
    with pytest.raises(grpc.RpcError):
        client.stub.AnalyzeIntent(rnlp.AnalyzeIntentRequest(query="", id={"value": "trace-bad1"}))
    records = [json.loads(line) for line in nlu.logs().splitlines() if line.startswith("{")]
    assert any(r.get("request_id") == "trace-bad1" and "rpc failed" in r["msg"] for r in records)


def test_concurrent_requests_each_get_their_own_answer(client):
    """Triton batches requests from concurrent RPCs; each answer must belong to its own query,
    and a bad request among them fails alone."""
    cases = {
        "play the latest album by adele": "PlayMusic",
        "set a timer for ten minutes": "SetTimer",
        "turn off the bedroom lights": "LightsOff",
        "what's the date today": "GetDate",
        "hello": "Greet",
        "": None,
    }
    queries = list(cases) * 6
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = {pool.submit(client.analyze_intent, q): q for q in queries}
        for future, query in futures.items():
            if cases[query] is None:
                assert future.exception().code() == grpc.StatusCode.INVALID_ARGUMENT
            else:
                assert future.result().intent.class_name == cases[query], query


def test_triton_outage_is_unavailable_and_recovers(nlu_repository, tmp_path):
    """Triton going away: RPCs get UNAVAILABLE saying so, health goes NOT_SERVING, and the service
    recovers by itself when Triton returns on the same address, warming the model up again first."""
    ports = {"grpc_port": free_port(), "http_port": free_port(), "metrics_port": free_port()}
    triton = TritonServer(nlu_repository, log_file=tmp_path / "triton.log", **ports)
    triton.start()
    triton.wait_ready(["intent_assistant"])
    service = ServiceProcess(
        "rivulet.nlu", tmp_path / "nlu.log", {"triton_url": triton.grpc_url, "readiness_interval_s": 0.2}
    )
    service.start()
    try:
        wait_for_health(service.address)
        client = riva.client.NLPService(riva.client.Auth(uri=service.address))
        assert client.analyze_intent("hello").intent.class_name == "Greet"
        triton.stop()
        with pytest.raises(grpc.RpcError) as err:
            client.analyze_intent("hello")
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "Triton" in err.value.details()
        wait_for_health(service.address, want="NOT_SERVING", timeout_s=10)
        triton = TritonServer(nlu_repository, log_file=tmp_path / "triton2.log", **ports)
        triton.start()
        triton.wait_ready(["intent_assistant"])
        wait_for_health(service.address, timeout_s=30)
        # the new Triton's model warmed up again before the service served: nothing else called it
        assert _inferences(triton, "intent_assistant") == len(WARM_UP_TEXTS)
        assert client.analyze_intent("hello").intent.class_name == "Greet"
        assert health_status(service.address) == "SERVING"
    finally:
        service.stop()
        triton.stop()
