"""Real people's phrasings (SLURP's held-out test part, never trained on) through the dialog's TextTurn
on the real stack: out-of-scope requests get the "can't help with that yet" reply and change nothing;
in-scope ones reach the skill of their intent. The test suite serves the quick model, so the rates
asserted here are floors well under that model's (75.8 % of these out-of-scope requests rejected, 92.5 %
of the in-scope ones reaching their skill; bench/nlu_accuracy.py measures the models)."""

from __future__ import annotations

import json
import uuid

import pytest

from pipelines.nlu.slurp import devel_file, load_mapping, load_sentences
from tests.integration.dialog.conftest import Conversation

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not devel_file().is_file(), reason=f"SLURP not found at {devel_file()}"),
]
NOT_ACTED = ("out_of_scope", "fallback", "unsupported")


@pytest.fixture(scope="module")
def held_out() -> list[tuple[str, str]]:
    return [(sentence, e.intent) for part, sentence, e in load_sentences() if part == "test"]


def fresh(dialog) -> Conversation:
    return Conversation(dialog, f"real-{uuid.uuid4().hex[:10]}")


def test_the_issue_examples_are_answered_with_what_the_assistant_can_do(dialog):
    for text in ("what's the exchange rate of the dollar", "send an email to mum"):
        convo = fresh(dialog)
        turn = convo.say(text)
        assert turn.understanding.intent == "OutOfScope", (text, turn.understanding)
        assert turn.reply.action == "out_of_scope"
        assert (
            turn.reply.text.startswith("Sorry, I can't help with that yet.") and "timers" in turn.reply.text
        )
        session = convo.session()
        assert not session.HasField("frame") and json.loads(session.data_json or "{}") == {}


def test_held_out_out_of_scope_requests_get_the_fallback_and_change_nothing(dialog, held_out):
    oos = load_mapping().out_of_scope_intent
    requests = [text for text, intent in held_out if intent == oos][::3]
    rejected = 0
    for text in requests:
        convo = fresh(dialog)
        turn = convo.say(text)
        if turn.reply.action == "out_of_scope":
            rejected += 1
            assert turn.understanding.intent == oos
            session = convo.session()
            assert not session.HasField("frame") and json.loads(session.data_json or "{}") == {}, text
    assert len(requests) > 100 and rejected / len(requests) >= 0.6, f"{rejected}/{len(requests)} rejected"


def test_held_out_in_scope_requests_reach_the_skill_of_their_intent(dialog, held_out):
    oos = load_mapping().out_of_scope_intent
    requests = [(text, intent) for text, intent in held_out if intent != oos]
    reached, missed = 0, []
    for text, intent in requests:
        turn = fresh(dialog).say(text)
        if turn.understanding.intent == intent and turn.reply.action not in NOT_ACTED:
            reached += 1
        else:
            missed.append((text, intent, turn.understanding.intent, turn.reply.action))
    assert len(requests) > 100 and reached / len(requests) >= 0.75, missed
