"""Sessions across requests, replicas and failures: serialization of concurrent turns, isolation of
sessions, a killed and restarted service, Redis and NLU outages, the event log and its replay,
timers firing onto an open Converse stream, and input validation."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import redis

from rivulet.core.processes import start_redis_server
from rivulet.dialog.v1 import dialog_pb2 as pb
from rivulet.dialog.v1 import dialog_pb2_grpc
from tests.integration.dialog.conftest import Conversation, dialog_env, start_dialog
from tests.support import ROOT, free_port, service_env

pytestmark = pytest.mark.integration


def sid() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def second_replica(redis_url, nlu_service, tmp_path_factory):
    """Another replica of the dialog service (no weather provider) on the same Redis."""
    service = start_dialog(
        tmp_path_factory.mktemp("replica") / "dialog.log", dialog_env(redis_url, nlu_service.address)
    )
    yield service
    service.stop()


def stub_for(address: str) -> tuple[grpc.Channel, dialog_pb2_grpc.DialogStub]:
    channel = grpc.insecure_channel(address)
    return channel, dialog_pb2_grpc.DialogStub(channel)


def test_concurrent_turns_on_one_session_are_serialized(dialog):
    convo = Conversation(dialog, sid())
    items = ["milk", "eggs", "bread", "apples", "bananas", "coffee", "butter", "cheese"]
    with ThreadPoolExecutor(len(items)) as pool:
        answers = list(pool.map(lambda item: convo.say(f"add {item} to my shopping list"), items))
    assert all(a.reply.action == "list.add" for a in answers), [a.reply for a in answers]
    session = convo.session()
    assert session.turns == len(items)
    assert len(session.history) == len(items)
    assert sorted(json.loads(session.data_json)["lists"]["shopping"]) == sorted(items)


def test_a_turn_retried_with_its_turn_id_is_applied_once(dialog, second_replica):
    """A retry with the same turn_id (here on the other replica) is answered with the first attempt's
    outcome and changes nothing; duplicates sent at once are applied once too; a new id is a new turn."""
    convo = Conversation(dialog, sid())
    first = convo.say("add milk to my shopping list", turn_id="t-1")
    assert first.turn_id == "t-1" and first.reply.action == "list.add"
    channel, other = stub_for(second_replica.address)
    with channel:
        retried = Conversation(other, convo.session_id).say("add milk to my shopping list", turn_id="t-1")
    assert retried.turn_id == "t-1"
    assert retried.reply == first.reply and retried.understanding == first.understanding
    with ThreadPoolExecutor(4) as pool:
        racing = list(pool.map(lambda _: convo.say("add eggs to my shopping list", turn_id="t:2"), range(4)))
    assert {a.reply.SerializeToString(deterministic=True) for a in racing} == {
        racing[0].reply.SerializeToString(deterministic=True)
    }
    assert racing[0].reply.action == "list.add" and racing[0].turn_id == "t:2"
    assert convo.say("add bread to my shopping list", turn_id="t-3").reply.action == "list.add"
    session = convo.session()
    assert session.turns == 3 and [h.turn_id for h in session.history] == ["t-1", "t:2", "t-3"]
    assert json.loads(session.data_json)["lists"] == {"shopping": ["milk", "eggs", "bread"]}


def test_sessions_never_mix_across_replicas(dialog, second_replica):
    channel, other = stub_for(second_replica.address)
    with channel:
        a, b = Conversation(dialog, sid()), Conversation(other, sid())
        with ThreadPoolExecutor(2) as pool:
            first = list(
                pool.map(lambda pair: pair[0].say(pair[1]), [(a, "turn on the lights"), (b, "set a timer")])
            )
        assert first[0].reply.expecting_slot == "room" and first[1].reply.expecting_slot == "duration"
        # each session's next turn is served by the *other* replica: nothing lives in process memory
        a_other, b_other = Conversation(other, a.session_id), Conversation(dialog, b.session_id)
        with ThreadPoolExecutor(2) as pool:
            second = list(
                pool.map(
                    lambda pair: pair[0].say(pair[1]), [(a_other, "the bedroom"), (b_other, "ten minutes")]
                )
            )
        assert second[0].reply.action == "lights.on" and second[0].reply.action_slots["room"] == "bedroom"
        assert second[1].reply.action == "timer.set" and second[1].reply.action_slots["duration_s"] == "600"
        a_data, b_data = json.loads(a.session().data_json), json.loads(b.session().data_json)
        assert "timers" not in a_data and list(a_data) == ["devices"]
        assert "devices" not in b_data and len(b_data["timers"]) == 1


def test_killed_service_restarts_and_the_session_continues(redis_url, nlu_service, tmp_path):
    env = dialog_env(redis_url, nlu_service.address)
    service = start_dialog(tmp_path / "dialog-1.log", env)
    session = sid()
    try:
        channel, stub = stub_for(service.address)
        with channel:
            assert Conversation(stub, session).say("set a timer").reply.expecting_slot == "duration"
    finally:
        service.process.kill()  # SIGKILL: no graceful shutdown
        service.stop()
    restarted = start_dialog(tmp_path / "dialog-2.log", env)
    try:
        channel, stub = stub_for(restarted.address)
        with channel:
            convo = Conversation(stub, session)
            done = convo.say("five minutes")
            assert done.reply.action == "timer.set"
            assert done.reply.action_slots["duration_s"] == "300"
            assert convo.session().turns == 2
    finally:
        restarted.stop()


def test_no_weather_provider_is_said_honestly(second_replica):
    channel, stub = stub_for(second_replica.address)
    with channel:
        reply = Conversation(stub, sid()).say("what's the weather in paris tomorrow").reply
    assert reply.action == "weather.no_provider"
    assert "no weather service is configured" in reply.text


@pytest.fixture
def own_redis(tmp_path):
    process, url = start_redis_server(tmp_path)
    yield process, url
    os.kill(process.pid, signal.SIGCONT)
    process.terminate()
    process.wait(10)


def test_redis_outage_is_unavailable_and_writes_nothing(own_redis, nlu_service, tmp_path):
    process, url = own_redis
    service = start_dialog(tmp_path / "dialog.log", dialog_env(url, nlu_service.address))
    try:
        channel, stub = stub_for(service.address)
        with channel:
            convo = Conversation(stub, sid())
            assert convo.say("add milk to my shopping list").reply.action == "list.add"
            os.kill(process.pid, signal.SIGSTOP)  # Redis stops answering
            try:
                with pytest.raises(grpc.RpcError) as err:
                    convo.say("add eggs to my shopping list")
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "Redis is unavailable" in err.value.details()
            finally:
                os.kill(process.pid, signal.SIGCONT)
            session = convo.session()
            assert session.turns == 1
            assert json.loads(session.data_json)["lists"] == {"shopping": ["milk"]}
            # the lock the cut-off request may have left behind expires (RIVULET_DIALOG_LOCK_TIMEOUT_S)
            assert convo.say("add eggs to my shopping list").reply.action == "list.add"
            assert json.loads(convo.session().data_json)["lists"] == {"shopping": ["milk", "eggs"]}
    finally:
        service.stop()


def converse(stub: dialog_pb2_grpc.DialogStub, config: pb.ConverseConfig):
    """A Converse stream fed from a queue: returns (send, responses iterator, close)."""
    outbox: queue.Queue = queue.Queue()

    def requests():
        yield pb.ConverseRequest(config=config)
        while (item := outbox.get()) is not None:
            yield item

    call = stub.Converse(requests(), timeout=60)
    return outbox.put, call, lambda: outbox.put(None)


def collect_until(call, predicate, timeout_s: float = 15.0) -> list[pb.ConverseResponse]:
    got: list[pb.ConverseResponse] = []
    deadline = time.monotonic() + timeout_s
    for message in call:
        got.append(message)
        if predicate(message):
            return got
        assert time.monotonic() < deadline, f"timed out; got {got}"
    raise AssertionError(f"stream ended early: {got}")


def test_nlu_outage_gives_error_events_and_the_session_survives(redis_url, tmp_path):
    service = start_dialog(tmp_path / "dialog.log", dialog_env(redis_url, f"127.0.0.1:{free_port()}"))
    try:
        channel, stub = stub_for(service.address)
        with channel:
            session = sid()
            with pytest.raises(grpc.RpcError) as err:
                Conversation(stub, session).say("hello")
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "NLU service" in err.value.details()
            send, call, close = converse(stub, pb.ConverseConfig(session_id=session))
            send(pb.ConverseRequest(text="hello"))
            got = collect_until(call, lambda m: m.WhichOneof("response") == "error")
            error = got[-1].error
            assert (error.stage, error.code) == ("nlu", "UNAVAILABLE")
            send(pb.ConverseRequest(text="what time is it"))
            assert collect_until(call, lambda m: m.WhichOneof("response") == "error")[-1].error.stage == "nlu"
            close()
            assert list(call) == []
            assert call.code() == grpc.StatusCode.OK
    finally:
        service.stop()


def test_timer_fires_on_the_open_converse_stream(dialog, second_replica):
    session = sid()
    send, call, close = converse(dialog, pb.ConverseConfig(session_id=session))
    send(pb.ConverseRequest(text="set a timer for two seconds"))
    turn = collect_until(call, lambda m: m.WhichOneof("response") == "latency")
    kinds = [m.WhichOneof("response") for m in turn]
    assert kinds == ["transcript", "understanding", "reply", "latency"], kinds
    assert turn[2].reply.action == "timer.set"
    latency = turn[3].latency
    assert latency.nlu_ms > 0 and latency.policy_ms > 0 and latency.total_ms >= latency.nlu_ms
    # the timer is set through replica 1's stream; any replica's scheduler may fire it
    fired = collect_until(call, lambda m: m.WhichOneof("response") == "reply", timeout_s=10)
    assert fired[-2].event.type == pb.TurnEvent.ANNOUNCEMENT
    assert fired[-1].reply.text == "Your 2 seconds timer is done."
    assert fired[-1].reply.action == "timer.fired"
    close()
    assert list(call) == []
    # delivered once: nothing is left for the next text turn
    assert list(Conversation(dialog, session).say("hello").announcements) == []


def test_timer_fired_without_a_stream_comes_with_the_next_turn(dialog):
    convo = Conversation(dialog, sid())
    assert convo.say("set a timer for one second").reply.action == "timer.set"
    time.sleep(2.0)
    assert list(convo.say("thanks").announcements) == ["Your 1 second timer is done."]


def test_event_log_and_replay_command(dialog, dialog_service, redis_url):
    convo = Conversation(dialog, sid())
    convo.say("add bread to my shopping list")
    convo.say("what's on my shopping list")
    env = service_env()
    command = [sys.executable, "-m", "rivulet.dialog.replay", convo.session_id, "--redis-url", redis_url]
    printed = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert any("USER (typed): add bread to my shopping list" in line for line in lines)
    assert any("ASSISTANT: Added bread to your shopping list." in line for line in lines)
    assert any("ASSISTANT: Your shopping list has bread." in line for line in lines)
    assert convo.session().events == 6  # user, nlu, reply per turn
    command += ["--rerun", dialog_service.address]
    rerun = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "0 turn(s) ended differently" in rerun.stdout


def test_reset_and_inspect(dialog, redis_url):
    convo = Conversation(dialog, sid())
    convo.say("add milk to my shopping list")
    assert convo.say("set a timer for ten minutes").reply.action == "timer.set"
    inspected = convo.session()
    assert 0 < inspected.ttl_s <= 7 * 24 * 3600 and inspected.turns == 2 and inspected.events >= 6
    assert [h.action for h in inspected.history] == ["list.add", "timer.set"]
    assert inspected.context.intent == "SetTimer" and inspected.context.slots["duration"] == "600"
    reset = dialog.ResetSession(pb.ResetSessionRequest(session_id=convo.session_id), timeout=10)
    assert reset.existed
    assert json.loads(convo.session().data_json)["lists"] == {"shopping": ["milk"]}  # data kept
    pending = redis.Redis.from_url(redis_url).zrange("rivulet:dialog:timers", 0, -1)
    assert any(json.loads(m)["session"] == convo.session_id for m in pending)
    dialog.ResetSession(pb.ResetSessionRequest(session_id=convo.session_id, clear_data=True), timeout=10)
    with pytest.raises(grpc.RpcError) as err:
        convo.session()
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    pending = redis.Redis.from_url(redis_url).zrange("rivulet:dialog:timers", 0, -1)
    assert not any(json.loads(m)["session"] == convo.session_id for m in pending)


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        (pb.TextTurnRequest(session_id="bad id!", text="hello"), "session_id"),
        (pb.TextTurnRequest(session_id="ok", text="   "), "empty"),
        (pb.TextTurnRequest(session_id="ok", text="a" * 513), "limit is 512"),
        (pb.TextTurnRequest(session_id="ok", text="hello", time_zone="Mars/Olympus"), "time zone"),
        (pb.TextTurnRequest(session_id="ok", text="hello", turn_id="turn 1"), "turn_id"),
        (pb.TextTurnRequest(session_id="ok", text="hello", turn_id="t" * 65), "1-64 characters"),
    ],
)
def test_text_turn_validation(dialog, request_, needle):
    with pytest.raises(grpc.RpcError) as err:
        dialog.TextTurn(request_, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in err.value.details()


def test_converse_needs_a_config_first(dialog):
    call = dialog.Converse(iter([pb.ConverseRequest(text="hello")]), timeout=10)
    with pytest.raises(grpc.RpcError) as err:
        list(call)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config" in err.value.details()
    bad_rate = pb.ConverseConfig(session_id="x", audio=pb.AudioFormat(sample_rate_hz=1000))
    with pytest.raises(grpc.RpcError) as err:
        list(dialog.Converse(iter([pb.ConverseRequest(config=bad_rate)]), timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "8000-48000" in err.value.details()


def test_a_second_request_waits_for_the_first(dialog):
    """Requests on one session hold a Redis lock in turn; a slow one never lets another interleave."""
    convo = Conversation(dialog, sid())
    results: list[str] = []
    lock = threading.Lock()

    def turn(text: str) -> None:
        reply = convo.say(text).reply
        with lock:
            results.append(reply.action)

    threads = [
        threading.Thread(target=turn, args=("set a timer",)),
        threading.Thread(target=turn, args=("hello",)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    session = convo.session()
    assert session.turns == 2
    assert sorted(results) == ["ask_slot", "social.greet"]
    # the greeting keeps the open frame (whichever came first, the frame is still waiting)
    assert session.frame.awaiting_slot == "duration"
