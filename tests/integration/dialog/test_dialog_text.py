"""Typed turns through the real dialog service: real NLU service on a real tritonserver, real Redis."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from zoneinfo import ZoneInfo

import pytest

from bench.dialog_support import OpenMeteoHandler, expected_forecast
from tests.integration.dialog.conftest import Conversation

pytestmark = pytest.mark.integration


@pytest.fixture
def convo(dialog) -> Conversation:
    return Conversation(dialog, f"test-{uuid.uuid4().hex[:10]}")


def test_greeting_help_and_time(convo):
    assert convo.say("hello").reply.action == "social.greet"
    help_reply = convo.say("what can you do")
    assert help_reply.reply.action == "help"
    assert "timers" in help_reply.reply.text
    now = dt.datetime.now(ZoneInfo("Europe/Berlin"))
    answer = convo.say("what time is it")
    assert answer.understanding.intent == "GetTime"
    assert answer.reply.action == "time.tell"
    said = dt.datetime.strptime(answer.reply.action_slots["time"], "%H:%M")
    minutes = (said.hour * 60 + said.minute - (now.hour * 60 + now.minute)) % (24 * 60)
    assert minutes in (0, 1), f"{answer.reply.action_slots} vs Berlin time {now:%H:%M}"
    assert answer.reply.action_slots["tz"] == "Europe/Berlin"


def test_timer_slot_filling_then_cancel(convo):
    first = convo.say("set a timer")
    assert first.reply.action == "ask_slot"
    assert first.reply.expecting_slot == "duration"
    assert convo.session().frame.awaiting_slot == "duration"
    done = convo.say("twenty five minutes")
    assert done.reply.action == "timer.set"
    assert done.reply.action_slots["duration_s"] == "1500"
    timers = json.loads(convo.session().data_json)["timers"]
    assert [t["duration_s"] for t in timers] == [1500]
    cancelled = convo.say("cancel the timer")
    assert cancelled.reply.action == "timer.cancel"
    assert "timers" not in json.loads(convo.session().data_json)


def test_cancel_and_repeat_inside_a_frame(convo):
    assert convo.say("turn on the lights").reply.expecting_slot == "room"
    again = convo.say("say that again")
    assert again.reply.action == "repeat"
    assert again.reply.text == "Which room?"
    assert convo.say("never mind").reply.action == "cancelled"
    session = convo.session()
    assert not session.HasField("frame")


def test_lights_slot_filling_keeps_device_state(convo):
    assert convo.say("switch on the lamp").reply.text == "Which room?"
    on = convo.say("the kitchen")
    assert on.reply.action == "lights.on"
    assert on.reply.action_slots["room"] == "kitchen"
    dim = convo.say("set the kitchen lamp to forty percent")
    assert dim.reply.action == "lights.brightness"
    devices = json.loads(convo.session().data_json)["devices"]
    assert devices == {"kitchen/lamp": {"on": True, "brightness": 40}}


def test_lists_add_read_remove(convo):
    assert convo.say("add milk to my shopping list").reply.action == "list.add"
    assert convo.say("put eggs on the shopping list").reply.action == "list.add"
    read = convo.say("what's on my shopping list")
    assert read.reply.action == "list.read"
    assert read.reply.action_slots["items"] == "milk|eggs"
    assert convo.say("remove milk from my shopping list").reply.action == "list.remove"
    assert json.loads(convo.session().data_json)["lists"] == {"shopping": ["eggs"]}


def test_restaurant_booking_asks_each_slot_and_confirms(convo):
    first = convo.say("i want to book a restaurant")
    assert first.understanding.intent == "BookRestaurant"
    asked = [first.reply.expecting_slot]
    answers = {"party_size": "four people", "time": "tomorrow at 7 pm", "place": "boston"}
    reply = first.reply
    while reply.expecting_slot:
        reply = convo.say(answers[reply.expecting_slot]).reply
        if reply.expecting_slot:
            asked.append(reply.expecting_slot)
    assert set(asked) <= {"party_size", "time", "place"}
    assert reply.expecting_confirmation, reply
    assert reply.action == "confirm"
    assert "4 people" in reply.text and "boston" in reply.text.lower()
    assert convo.session().frame.awaiting_confirmation
    booked = convo.say("yes").reply
    assert booked.action == "restaurant.book"
    assert booked.action_slots["party_size"] == "4"
    assert "boston" in booked.action_slots["place"]
    assert "7 pm" in booked.action_slots["time"]
    bookings = json.loads(convo.session().data_json)["bookings"]
    assert len(bookings) == 1 and bookings[0]["party_size"] == "4"


def test_restaurant_denied_books_nothing(convo):
    reply = convo.say("book a table for two people in paris tonight").reply
    for _ in range(3):
        if reply.expecting_confirmation:
            break
        reply = convo.say(
            {"party_size": "two", "time": "tonight", "place": "paris"}[reply.expecting_slot]
        ).reply
    assert reply.expecting_confirmation
    assert convo.say("no").reply.action == "declined"
    assert "bookings" not in json.loads(convo.session().data_json)


def test_weather_context_carry_over(convo):
    OpenMeteoHandler.requests.clear()
    berlin_today = dt.datetime.now(ZoneInfo("Europe/Berlin")).date()
    today = convo.say("what is the weather in paris")
    assert today.understanding.intent == "GetWeather"
    assert today.reply.action == "weather.forecast", today.reply
    t_min, t_max, condition = expected_forecast(berlin_today)
    assert today.reply.action_slots["date"] == berlin_today.isoformat()
    assert f"between {t_min} degrees and {t_max} degrees" in today.reply.text
    assert condition in today.reply.text
    tomorrow = convo.say("what about tomorrow")
    assert tomorrow.reply.action == "weather.forecast", tomorrow.reply
    assert tomorrow.reply.action_slots["place"] == "Paris"
    day = berlin_today + dt.timedelta(days=1)
    assert tomorrow.reply.action_slots["date"] == day.isoformat()
    assert f"between {expected_forecast(day)[0]} degrees" in tomorrow.reply.text
    other = convo.say("and in boston")
    assert other.reply.action_slots["place"] == "Boston"
    assert other.reply.action_slots["date"] == day.isoformat()
    forecasts = [q for path, q in OpenMeteoHandler.requests if path == "/v1/forecast"]
    assert [q["start_date"] for q in forecasts] == [
        berlin_today.isoformat(),
        day.isoformat(),
        day.isoformat(),
    ]
    assert forecasts[0]["latitude"] == "48.85341"


def test_catalogue_skills(convo):
    work = convo.say("find the book pride and prejudice")
    assert work.understanding.intent == "SearchCreativeWork"
    assert work.reply.action == "work.found"
    assert work.reply.action_slots["title"] == "Pride and Prejudice"
    shows = convo.say("what movies are showing at riverside cinema")
    assert shows.understanding.intent == "SearchScreeningEvent"
    assert shows.reply.action in ("screening.list", "screening.found")
    assert "Riverside Cinema" in shows.reply.text


def test_rate_book_asks_for_the_rating(convo):
    reply = convo.say("rate the hobbit").reply
    assert reply.action == "ask_slot"
    assert reply.expecting_slot == "rating_value"
    rated = convo.say("four").reply
    assert rated.action == "book.rate"
    assert rated.action_slots == {
        "intent": "RateBook",
        "title": "The Hobbit",
        "rating_value": "4",
        "best_rating": "5",
    }
