"""The policy and skills on a real Redis, with NLU results given directly (the NLU model is tested on
its own): slot filling, confirmation, changes while confirming, carry-over, cancel/help/repeat,
low-confidence fallback, topic switches, and the atomicity of a turn's writes."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from zoneinfo import ZoneInfo

import grpc
import pytest
import redis.asyncio as aioredis

from rivulet.core.errors import RivuletError
from rivulet.dialog.engine import DialogEngine
from rivulet.dialog.policy import Policy, PolicyReply
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills import build_registry
from rivulet.dialog.skills.base import TurnContext
from rivulet.dialog.state import Keys
from rivulet.dialog.store import Event, SessionStore
from rivulet.dialog.understanding import NluResult, NluSlot

ZONE = ZoneInfo("Europe/Berlin")


class Harness:
    """Runs policy turns the way the engine does: under the store's lock, committed atomically."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.store = SessionStore(redis, ttl_s=600)
        self.policy = Policy(build_registry(DialogSettings()), threshold=0.5)
        self.session_id = f"p-{uuid.uuid4().hex[:8]}"

    async def turn(self, text: str, intent: str = "", score: float = 0.99, **slots: str) -> PolicyReply:
        nlu = NluResult(intent, score if intent else 0.1, [NluSlot(k, v) for k, v in slots.items()])
        return await self.respond(text, nlu)

    async def spans(self, text: str, intent: str, *spans: tuple[str, str]) -> PolicyReply:
        """A turn whose NLU result has these (label, value) spans, a label possibly several times."""
        return await self.respond(text, NluResult(intent, 1.0, [NluSlot(k, v) for k, v in spans]))

    async def respond(self, text: str, nlu: NluResult) -> PolicyReply:
        async with self.store.turn(self.session_id) as txn:
            ctx = TurnContext(
                self.session_id, txn.keys, txn.redis, txn.tx, ZONE, dt.datetime.now(ZONE), txn.events
            )
            reply = await self.policy.respond(text, nlu, txn.state, ctx)
            if not reply.repeat:
                txn.state.last_reply = reply.text
            txn.state.turns += 1
        return reply

    async def data(self) -> dict:
        _, _, _, data = await self.store.inspect(self.session_id)
        return data


@pytest.fixture
async def h(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    yield Harness(client)
    await client.aclose()


async def test_slot_filling_with_a_bare_answer(h):
    asked = await h.turn("set a timer", "SetTimer")
    assert (asked.action, asked.expecting_slot, asked.text) == ("ask_slot", "duration", "For how long?")
    done = await h.turn("ten minutes", "GetTime", 0.3)  # the NLU's guess for a bare answer does not matter
    assert done.action == "timer.set" and done.action_slots["duration_s"] == "600"
    assert [t["duration_s"] for t in (await h.data())["timers"]] == [600]


async def test_unusable_answer_is_asked_again_then_dropped(h):
    await h.turn("set a timer", "SetTimer")
    again = await h.turn("purple", "PlayMusic", 0.4)
    assert again.action == "ask_slot" and again.text.startswith("Sorry")
    await h.turn("green", "PlayMusic", 0.4)
    gave_up = await h.turn("blue", "PlayMusic", 0.4)
    assert gave_up.action == "abandoned"
    state = await h.store.load(h.session_id)
    assert state.frame is None


async def test_confirmation_yes_no_and_a_change(h):
    reply = await h.turn(
        "book a table for 4 in boston at 7 pm",
        "BookRestaurant",
        party_size_number="4",
        city="boston",
        timeRange="at 7 pm",
    )
    assert reply.expecting_confirmation and reply.text == "Book a table for 4 people 7 pm in boston?"
    changed = await h.turn("no make it six people", "Deny", party_size_number="six")
    assert changed.action == "confirm" and "6 people" in changed.text
    unclear = await h.turn("hmm", "", 0.1)
    assert unclear.action == "confirm" and unclear.text.startswith("Please say yes or no")
    booked = await h.turn("yes", "Affirm")
    assert booked.action == "restaurant.book"
    assert booked.action_slots == {
        "intent": "BookRestaurant",
        "party_size": "6",
        "time": "7 pm",
        "place": "boston",
    }
    declined_first = await h.turn(
        "book a table for two in paris tonight",
        "BookRestaurant",
        party_size_number="two",
        city="paris",
        timeRange="tonight",
    )
    assert declined_first.expecting_confirmation
    assert (await h.turn("no", "Deny")).action == "declined"
    assert len((await h.data())["bookings"]) == 1


async def test_carry_over_changes_one_slot_of_the_context(h):
    first = await h.turn("weather in paris", "GetWeather", city="paris")
    assert first.action == "weather.no_provider" and first.action_slots["place"] == "paris"
    follow = await h.turn("what about tomorrow", "GetDate", 0.3)
    assert follow.action == "weather.no_provider"
    tomorrow = dt.datetime.now(ZONE).date() + dt.timedelta(days=1)
    assert follow.action_slots == {"intent": "GetWeather", "place": "paris", "date": tomorrow.isoformat()}
    place = await h.turn("and in rome", "GetWeather", 0.7)
    assert place.action_slots["place"] == "rome" and place.action_slots["date"] == tomorrow.isoformat()
    alone = await h.turn("friday", "", 0.2)
    assert alone.action_slots["place"] == "rome"
    # a follow-up the NLU takes for a farewell or for something out of scope still follows up
    farewell = await h.turn("how about tomorrow", "Goodbye", 0.98)
    assert farewell.action == "weather.no_provider" and farewell.action_slots["date"] == tomorrow.isoformat()
    outside = await h.turn("what about in berlin", "OutOfScope", 0.8)
    assert outside.action == "weather.no_provider" and outside.action_slots["place"] == "berlin"
    assert (await h.turn("goodbye", "Goodbye")).action == "social.goodbye"


async def test_cancel_help_repeat(h):
    asked = await h.turn("turn on the lights", "LightsOn", device="lights")
    help_ = await h.turn("help", "Help")
    assert help_.text == "I'm turning on a light. Which room? Or say cancel to stop."
    assert help_.expecting_slot == "room"
    again = await h.turn("say again", "Repeat")
    assert again.repeat and again.text == help_.text
    assert (await h.turn("cancel", "Cancel")).action == "cancelled"
    assert (await h.store.load(h.session_id)).frame is None
    assert (await h.turn("cancel", "Cancel")).text == "Okay."
    assert asked.expecting_slot == "room"


async def test_low_confidence_falls_back(h):
    reply = await h.turn("blorp zib", "SetAlarm", 0.2)
    assert reply.action == "fallback" and reply.low_confidence
    assert (await h.store.load(h.session_id)).frame is None


async def test_out_of_scope_says_what_it_can_do_and_acts_on_nothing(h):
    before = await h.data()
    reply = await h.turn("what's the exchange rate of the dollar", "OutOfScope", 0.4)
    assert reply.action == "out_of_scope" and not reply.action_slots
    assert (
        reply.text.startswith("Sorry, I can't help with that yet.") and "set timers and alarms" in reply.text
    )
    assert (await h.store.load(h.session_id)).frame is None and await h.data() == before


async def test_out_of_scope_while_a_question_is_open_keeps_asking(h):
    await h.turn("set a timer", "SetTimer")
    reply = await h.turn("tell me a joke", "OutOfScope", 0.9)
    assert reply.action == "ask_slot" and reply.expecting_slot == "duration"


async def test_cancel_alarm_removes_only_the_alarm_named(h):
    await h.turn("wake me at 7 am tomorrow", "SetAlarm", time="7 am", date="tomorrow")
    await h.turn("set an alarm for 9 pm tomorrow", "SetAlarm", time="9 pm", date="tomorrow")
    await h.turn("set a timer for ten minutes", "SetTimer", duration="ten minutes")
    cancelled = await h.turn("remove my seven am alarm", "CancelAlarm", time="seven am")
    assert cancelled.action == "alarm.cancel" and cancelled.text == "Cancelled your alarm for 7 AM."
    left = (await h.data())["timers"]
    assert sorted(t["kind"] for t in left) == ["alarm", "timer"] and [
        t["time"] for t in left if t["kind"] == "alarm"
    ] == ["21:00"]
    assert (await h.turn("delete all my alarms", "CancelAlarm")).action_slots["count"] == "1"
    assert (await h.turn("cancel my alarms", "CancelAlarm")).action == "alarm.none"


async def test_a_full_new_request_switches_task(h):
    await h.turn("set an alarm", "SetAlarm")
    switched = await h.turn("add milk to my shopping list", "ListAdd", item="milk", list_name="shopping")
    assert switched.action == "list.add"
    assert (await h.store.load(h.session_id)).frame is None


async def test_a_bare_answer_never_switches_task(h):
    """'tonight at eight' to "For when?" is the booking's time, though the NLU, which has no memory of
    the question, reads it as an alarm (the full model: SetAlarm 0.93, date and time slots)."""
    await h.turn("i want to book a restaurant", "BookRestaurant")
    asked = await h.turn("four people", "", 0.2)
    assert asked.expecting_slot == "time"
    answered = await h.turn("tonight at eight", "SetAlarm", 0.93, date="tonight", time="eight")
    assert answered.expecting_slot == "place"
    frame = (await h.store.load(h.session_id)).frame
    assert frame.intent == "BookRestaurant" and frame.slots["time"] == "tonight at eight"
    assert "alarms" not in await h.data()
    # A request with words of its own still switches: the frame gives way to the new task.
    switched = await h.turn("set an alarm for seven", "SetAlarm", time="seven")
    assert switched.action == "alarm.set" and (await h.store.load(h.session_id)).frame is None


async def test_an_alarm_time_is_read_with_its_date(h):
    """ "eight tonight" is 8 pm: the NLU gives the time ('eight') and the date ('tonight') apart."""
    tonight = await h.turn("set an alarm for eight tonight", "SetAlarm", time="eight", date="tonight")
    assert tonight.action_slots["time"] == "20:00", tonight.text
    asked = await h.turn("wake me up tomorrow", "SetAlarm", date="tomorrow")
    assert asked.expecting_slot == "time"
    morning = await h.turn("six in the morning", "SetAlarm", time="six", date="in the morning")
    assert morning.action_slots["time"] == "06:00", morning.text
    # The NLU may cut one time in two spans: "9" and "evening" (the full model on "9 this evening").
    evening = await h.spans("set an alarm for 9 this evening", "SetAlarm", ("time", "9"), ("time", "evening"))
    assert evening.action_slots["time"] == "21:00", evening.text
    early = await h.spans(
        "wake me up in the morning at six fifteen",
        "SetAlarm",
        ("time", "in the morning"),
        ("time", "six fifteen"),
    )
    assert early.action_slots["time"] == "06:15", early.text


async def test_a_booking_time_cut_in_two_spans_is_read_whole(h):
    """The full model cuts "tomorrow at seven" into two timeRange spans; the booking keeps both."""
    asked = await h.spans(
        "reserve a table for 4 people tomorrow at seven",
        "BookRestaurant",
        ("party_size_number", "4"),
        ("timeRange", "tomorrow"),
        ("timeRange", "seven"),
    )
    assert asked.expecting_slot == "place"
    assert (await h.store.load(h.session_id)).frame.slots["time"] == "tomorrow at seven"


async def test_several_items_are_added_and_removed_at_once(h):
    """ "add eggs and milk": the NLU gives two item spans, and both go on the list."""
    added = await h.spans(
        "add eggs and milk to my shopping list",
        "ListAdd",
        ("item", "eggs"),
        ("item", "milk"),
        ("list_name", "shopping"),
    )
    assert added.text == "Added eggs and milk to your shopping list."
    again = await h.spans("put milk and bread on it", "ListAdd", ("item", "milk"), ("item", "bread"))
    assert again.text == "Added bread to your shopping list. Milk is already on it."
    assert (await h.data())["lists"] == {"shopping": ["eggs", "milk", "bread"]}
    removed = await h.spans("remove eggs and jam", "ListRemove", ("item", "eggs"), ("item", "jam"))
    assert removed.text == "Removed eggs from your shopping list. I couldn't find jam on it."
    assert (await h.data())["lists"] == {"shopping": ["milk", "bread"]}


async def test_lights_in_several_rooms_at_once(h):
    """ "the kitchen and the bedroom": two room spans, both rooms switched, one reply."""
    on = await h.spans(
        "turn on the lights in the kitchen and the bedroom",
        "LightsOn",
        ("device", "lights"),
        ("room", "kitchen"),
        ("room", "bedroom"),
    )
    assert (
        on.text == "Turned on the kitchen and bedroom lights."
        and on.action_slots["room"] == "kitchen|bedroom"
    )
    dimmed = await h.spans(
        "dim the bedroom to 20 percent", "SetBrightness", ("room", "bedroom"), ("brightness", "20")
    )
    assert dimmed.text == "Set the bedroom light to 20 percent."
    devices = (await h.data())["devices"]
    assert devices == {
        "kitchen/light": {"on": True, "brightness": 100},
        "bedroom/light": {"on": True, "brightness": 20},
    }


async def test_turn_writes_are_all_or_nothing(h):
    keys = Keys(h.session_id)
    with pytest.raises(RuntimeError):
        async with h.store.turn(h.session_id) as txn:
            txn.state.turns = 5
            txn.tx.hset(keys.data, "lists", json.dumps({"shopping": ["milk"]}))
            txn.events.append(Event("user", {"text": "x"}))
            raise RuntimeError("the policy failed after skills queued writes")
    assert await h.redis.exists(keys.session, keys.data, keys.log) == 0
    assert await h.redis.get(keys.lock) is None  # lock released


async def test_a_concurrent_write_aborts_the_turn(h):
    keys = Keys(h.session_id)
    await h.turn("hello", "Greet")
    other = aioredis.Redis(connection_pool=h.redis.connection_pool)
    with pytest.raises(RivuletError) as err:
        async with h.store.turn(h.session_id) as txn:
            txn.state.turns = 99
            await other.hset(
                keys.session, "state", txn.state.model_copy(update={"turns": 42}).model_dump_json()
            )
    assert err.value.code == grpc.StatusCode.ABORTED
    assert (await h.store.load(h.session_id)).turns == 42


async def test_hints_follow_what_the_assistant_just_asked(h):
    """The words the ASR is told to expect next come from the stored state (any replica can
    compute them): the open question's answers, yes/no, follow-ups on the last answer, or none."""
    from rivulet.dialog import hints

    async def next_hints() -> tuple[str, ...]:
        return h.policy.hints(await h.store.load(h.session_id))

    assert h.policy.hints(None) == ()
    await h.turn("book a table", "BookRestaurant")
    party = await next_hints()
    assert {"four", "people", "cancel"} <= set(party) and "paris" not in party
    await h.turn("four people", "", 0.2)
    assert "tomorrow" in await next_hints()
    await h.turn("tomorrow at seven pm", "", 0.2)
    assert {"boston", "denver", "paris"} <= set(await next_hints())
    asked = await h.turn("boston", "", 0.2)
    assert asked.expecting_confirmation and await next_hints() == hints.CONFIRM
    await h.turn("yes", "Affirm")
    assert await next_hints() == hints.FOLLOW_UP  # "what about tomorrow?" books again
    await h.turn("what time is it", "GetTime")
    assert await next_hints() == ()  # nothing to carry over from the clock
    await h.turn("weather in paris", "GetWeather", city="paris")
    assert await next_hints() == hints.FOLLOW_UP and "what about" in hints.FOLLOW_UP
    await h.turn("turn on the lights", "LightsOn")
    assert {"kitchen", "living room"} <= set(await next_hints())
    await h.turn("rate a book", "RateBook")
    assert "the hobbit" in await next_hints()


async def test_hints_name_what_is_on_the_list_being_removed_from(h):
    """ "What should I remove?" is answered with an item on that list: the ASR hears those names."""
    await h.turn("add milk", "ListAdd", item="milk")
    await h.turn("add oat flakes", "ListAdd", item="oat flakes")
    await h.turn("add nails to my hardware list", "ListAdd", item="nails", list_name="hardware")
    asked = await h.turn("remove something", "ListRemove")
    assert asked.expecting_slot == "item"
    async with h.store.turn(h.session_id) as txn:
        ctx = TurnContext(h.session_id, txn.keys, txn.redis, txn.tx, ZONE, dt.datetime.now(ZONE), txn.events)
        known = await h.policy.hints_with_known(txn.state, ctx)
    assert {"milk", "oat flakes", "cancel"} <= set(known) and "nails" not in known


async def test_a_spoken_turn_without_words_is_reprompted_with_the_open_question_and_stores_nothing(h):
    engine = DialogEngine(DialogSettings(), h.redis, h.policy.registry, None)
    fresh = await engine.reprompt(h.session_id, zone=ZONE)  # no session yet, no question open
    assert (fresh.text, fresh.action) == ("Sorry, I didn't catch that. Could you say that again?", "no_input")
    await h.turn("book a table", "BookRestaurant")
    stored = await h.redis.hget(Keys(h.session_id).session, "state")
    reply = await engine.reprompt(h.session_id, zone=ZONE)
    assert reply.text == "Sorry, I didn't catch that. For how many people?"
    assert reply.expecting_slot == "party_size" and reply.action == "no_input"
    assert await h.redis.hget(Keys(h.session_id).session, "state") == stored  # asked-count included
    await h.turn("four people", "BookRestaurant", party_size_number="4", timeRange="at 7 pm", city="boston")
    confirming = await engine.reprompt(h.session_id, zone=ZONE)
    assert confirming.expecting_confirmation
    assert confirming.text == "Sorry, I didn't catch that. Book a table for 4 people 7 pm in boston?"
