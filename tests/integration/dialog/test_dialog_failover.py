"""A dialog replica SIGKILLed mid-turn, with two replicas behind one address: the session continues
on the other one.

"One address" is what a Kubernetes Service gives a client: here gRPC's client-side `round_robin`
over both replicas' ports (`ipv4:127.0.0.1:P1,127.0.0.1:P2`), so a new call (or a reconnecting
stream) goes to whichever replica is alive. Session state lives in Redis: the survivor carries on
with the same session id, frame and data, and every turn the client was acknowledged (its reply
arrived) is in the session's history, once. Figures: `fault_figures` (RIVULET_FAULT_REPORT_DIR)."""

from __future__ import annotations

import json
import threading
import time
import uuid

import grpc
import pytest
import redis

from bench.dialog_support import VoiceClient
from rivulet.dialog.state import Keys
from rivulet.dialog.v1 import dialog_pb2 as pb
from rivulet.dialog.v1 import dialog_pb2_grpc
from tests.integration.dialog.conftest import Conversation, start_dialog
from tests.support import ServiceProcess, fault_figures, metric

pytestmark = pytest.mark.integration

ROUND_ROBIN = (("grpc.lb_policy_name", "round_robin"),)


def sid() -> str:
    return f"f-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def replicas(tts_stack, tmp_path):
    """Two dialog replicas on the voice stack's NLU, TTS and Redis; each test may kill one."""
    started = [start_dialog(tmp_path / f"dialog-{i}.log", tts_stack.dialog_settings()) for i in range(2)]
    yield started
    for service in started:
        service.stop()


def one_address(replicas: list[ServiceProcess]) -> str:
    return "ipv4:" + ",".join(r.address for r in replicas)


def kill(replica: ServiceProcess) -> float:
    replica.process.kill()  # SIGKILL: no graceful shutdown, no lock released, connections reset
    killed_at = time.monotonic()
    replica.process.wait(10)
    return killed_at


def retry_unavailable(call, attempts: int = 5):
    """`call()`, again while it fails UNAVAILABLE (a round-robin channel may try the dead replica
    once more before it has seen the connection go)."""
    for _ in range(attempts - 1):
        try:
            return call()
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            time.sleep(0.1)
    return call()


def holding(replicas: list[ServiceProcess], name: str, **labels: str) -> ServiceProcess:
    """The replica on which the gauge `name` is 1 (the one serving the call under test)."""
    serving = [r for r in replicas if metric(r, name, **labels) >= 1]
    assert len(serving) == 1, [metric(r, name, **labels) for r in replicas]
    return serving[0]


def history(stub: dialog_pb2_grpc.DialogStub, session_id: str) -> pb.Session:
    return stub.GetSession(pb.GetSessionRequest(session_id=session_id), timeout=10)


async def test_conversation_continues_on_the_other_replica_when_its_replica_dies_mid_reply(replicas):
    """Killed while speaking an acknowledged reply (its audio streaming): the stream ends UNAVAILABLE,
    the client reopens Converse at the same address and the answer to the open question lands."""
    address, session_id = one_address(replicas), sid()
    async with VoiceClient(address, session_id, channel_options=ROUND_ROBIN) as client:
        milk = await client.text_turn("add milk to my shopping list")
        assert milk.reply.action == "list.add", milk.reply
        since = len(client.received)
        client.type("turn on the lights")
        await client.wait_for(lambda r: r.kind == "audio", since)  # reply acknowledged, being spoken
        asked = client.received[since:]
        reply = next(r.message for r in asked if r.kind == "reply")
        assert reply.reply.expecting_slot == "room", reply
        victim = holding(replicas, "rivulet_dialog_open_conversations")
        killed_at = kill(victim)
        code = await client.close()
        failed_at = time.monotonic()
    assert code == grpc.StatusCode.UNAVAILABLE, code
    acknowledged = [milk.messages[-1].message.turn_id, reply.turn_id]

    async with VoiceClient(address, session_id, channel_options=ROUND_ROBIN) as client:
        done = await client.text_turn("the bedroom")
        continued_at = time.monotonic()
    assert done.reply.action == "lights.on", done.reply
    assert done.reply.action_slots["room"] == "bedroom"
    survivor = next(r for r in replicas if r is not victim)
    with grpc.insecure_channel(survivor.address) as channel:
        session = history(dialog_pb2_grpc.DialogStub(channel), session_id)
    ids = [h.turn_id for h in session.history]
    assert ids == [*acknowledged, done.messages[-1].message.turn_id], ids
    assert session.turns == 3
    data = json.loads(session.data_json)
    assert data["lists"] == {"shopping": ["milk"]}
    assert data["devices"]["bedroom/light"]["on"] is True, data["devices"]
    fault_figures(
        "dialog_replica_killed_mid_reply",
        {
            "replicas": 2,
            "address": "round_robin over both replicas",
            "kill_to_stream_unavailable_s": round(failed_at - killed_at, 3),
            "kill_to_next_turn_answered_on_survivor_s": round(continued_at - killed_at, 3),
            "acknowledged_turns": len(acknowledged) + 1,
            "turns_lost": 0,
        },
    )


def test_turn_cut_off_while_committing_is_retried_on_the_other_replica(replicas, tts_stack):
    """Killed while it holds the session lock (synthesizing a typed turn's spoken reply, before the
    commit, or, rarely, just after it): the lock it left frees itself (its renewal stopped), and the
    client's retry of the same turn (same turn_id) at the same address succeeds on the survivor,
    applied once either way: when the kill came after the commit, the retry gets the stored outcome."""
    session_id = sid()
    store = redis.Redis.from_url(tts_stack.redis_url)
    with grpc.insecure_channel(one_address(replicas), options=list(ROUND_ROBIN)) as channel:
        stub = dialog_pb2_grpc.DialogStub(channel)
        convo = Conversation(stub, session_id)
        assert convo.say("add milk to my shopping list").reply.action == "list.add"
        assert convo.say("set a timer").reply.expecting_slot == "duration"
        request = pb.TextTurnRequest(
            session_id=session_id, text="five minutes", synthesize_audio=True, turn_id="five-minutes-1"
        )
        outcome: dict = {}
        # The cut turn goes to a replica known in advance, so the kill follows the lock at once (a
        # typed turn holds it for some 30 ms on a quiet machine: asking the replicas' metrics which
        # one serves it took long enough for the turn to finish first)
        victim = replicas[0]

        def cut_turn() -> None:
            with grpc.insecure_channel(victim.address) as direct:
                try:
                    outcome["reply"] = dialog_pb2_grpc.DialogStub(direct).TextTurn(request, timeout=30)
                except grpc.RpcError as exc:
                    outcome["code"], outcome["failed_at"] = exc.code(), time.monotonic()

        caller = threading.Thread(target=cut_turn)
        caller.start()
        deadline = time.monotonic() + 30
        while not store.exists(Keys(session_id).lock):  # the turn holds the session: mid-commit
            assert time.monotonic() < deadline and caller.is_alive(), outcome
            time.sleep(0.001)
        killed_at = kill(victim)
        caller.join(30)
        assert outcome.get("code") == grpc.StatusCode.UNAVAILABLE, outcome

        retried = retry_unavailable(lambda: stub.TextTurn(request, timeout=30))  # as a client does
        answered_at = time.monotonic()
        assert retried.turn_id == "five-minutes-1"
        assert retried.reply.action == "timer.set", retried.reply
        assert retried.reply.action_slots["duration_s"] == "300"
        assert len(retried.audio) > 0
        session = convo.session()
    assert session.turns == 3 and [h.action for h in session.history][-1] == "timer.set"
    assert session.history[-1].turn_id == "five-minutes-1"
    assert len(session.history) == 3, [h.user_text for h in session.history]  # the cut turn: once
    data = json.loads(session.data_json)
    assert data["lists"] == {"shopping": ["milk"]} and len(data["timers"]) == 1, data
    fault_figures(
        "dialog_replica_killed_mid_commit",
        {
            "replicas": 2,
            "kill_to_unavailable_s": round(outcome["failed_at"] - killed_at, 3),
            "kill_to_retried_turn_answered_s": round(answered_at - killed_at, 3),
            "lock_expiry_s": 2.0,
            "turns_lost": 0,
            "turns_doubled": 0,
        },
    )
