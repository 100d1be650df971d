"""Templated utterances for the voice assistant's own intents, in the SNIPS format.

Deterministic for a given seed: lowercase words (SNIPS tokenization: "what's" -> "what s"),
word-level BIO tags, CamelCase intents. `generate()` returns disjoint train/dev/test splits of
unique utterances.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from pipelines.nlu.datasets import Example

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen \
sixteen seventeen eighteen nineteen".split()
_TENS = {
    20: "twenty",
    30: "thirty",
    40: "forty",
    50: "fifty",
    60: "sixty",
    70: "seventy",
    80: "eighty",
    90: "ninety",
}


def number_words(n: int) -> str:
    """0..100 in words: 25 -> "twenty five"."""
    if n < 20:
        return _ONES[n]
    if n == 100:
        return "one hundred"
    tens, ones = divmod(n, 10)
    return _TENS[tens * 10] + ("" if ones == 0 else " " + _ONES[ones])


def _number(rng: random.Random, low: int, high: int) -> str:
    n = rng.randint(low, high)
    return str(n) if rng.random() < 0.45 else number_words(n)


def _duration(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.12:
        return rng.choice(
            [
                "a minute",
                "an hour",
                "half an hour",
                "an hour and a half",
                "a minute and a half",
                "a quarter of an hour",
                "one and a half hours",
                "a couple of minutes",
                "a few minutes",
                "two and a half minutes",
                "a second",
                "thirty secs",
                "ten mins",
            ]
        )
    if kind < 0.22:
        return f"{_number(rng, 1, 3)} hours and {_number(rng, 5, 55)} minutes"
    if kind < 0.28:
        return f"{_number(rng, 1, 9)} minutes {_number(rng, 5, 55)} seconds"
    unit = rng.choice(["minutes", "minutes", "minutes", "seconds", "hours", "mins", "secs"])
    high = {"hours": 12}.get(unit, 90)
    n = rng.randint(2, high)
    value = str(n) if rng.random() < 0.45 else number_words(n)
    return f"{value} {unit}"


def _clock(rng: random.Random) -> str:
    hour = rng.randint(1, 12)
    minute = rng.choice([0, 0, 5, 10, 15, 20, 30, 30, 40, 45, 50])
    kind = rng.random()
    ampm = rng.choice(["", " am", " pm", " in the morning", " in the evening", " at night"])
    if kind < 0.25:
        return f"{hour}{ampm}" if ampm else f"{hour} o clock"
    if kind < 0.5:
        return f"{hour}:{minute:02d}{ampm}"
    if kind < 0.7:
        words = number_words(hour) + ("" if minute == 0 else " " + number_words(minute))
        return words + (ampm or rng.choice([" o clock", "", " am", " pm"]) if minute == 0 else ampm)
    if kind < 0.85:
        if minute in (15, 30, 45):
            phrase = {15: "quarter past", 30: "half past", 45: "quarter to"}[minute]
            target = hour if minute != 45 else hour % 12 + 1
            return f"{phrase} {rng.choice([str(target), number_words(target)])}{ampm}"
        return f"{number_words(hour)} {rng.choice(['am', 'pm'])}"
    return rng.choice(["noon", "midnight", "sunrise", "six thirty", "7 am sharp", "dawn", "seven fifteen"])


_DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_MONTHS = "january february march april may june july august september october november december".split()
_ORDINALS = [
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "tenth",
    "twelfth",
    "fifteenth",
    "twentieth",
    "1st",
    "2nd",
    "3rd",
    "4th",
    "14th",
    "21st",
    "30th",
]


def _date(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return rng.choice(
            [
                "tomorrow",
                "today",
                "tonight",
                "tomorrow morning",
                "the day after tomorrow",
                "this weekend",
                "every day",
                "weekdays",
                "every weekday",
                "tomorrow night",
            ]
        )
    if kind < 0.65:
        return rng.choice(["", "", "next ", "this ", "every "]) + rng.choice(_DAYS)
    return f"{rng.choice(_MONTHS)} {rng.choice(_ORDINALS)}"


_ROOMS = [
    "kitchen",
    "living room",
    "bedroom",
    "bathroom",
    "office",
    "hallway",
    "garage",
    "dining room",
    "basement",
    "kids room",
    "master bedroom",
    "guest room",
    "porch",
    "attic",
    "study",
    "nursery",
    "laundry room",
    "den",
    "upstairs",
    "downstairs",
    "front yard",
    "patio",
    "closet",
    "lounge",
]
_DEVICES = [
    "lights",
    "light",
    "lamp",
    "ceiling light",
    "desk lamp",
    "floor lamp",
    "light strip",
    "lamps",
    "ceiling lights",
    "bulbs",
    "spotlights",
    "led strip",
    "night light",
    "chandelier",
]
_ITEMS = [
    "milk",
    "eggs",
    "bread",
    "apples",
    "bananas",
    "coffee",
    "butter",
    "peanut butter",
    "olive oil",
    "paper towels",
    "toilet paper",
    "dish soap",
    "cheese",
    "tomatoes",
    "chicken breasts",
    "rice",
    "orange juice",
    "batteries",
    "light bulbs",
    "dog food",
    "sunscreen",
    "toothpaste",
    "oat milk",
    "pasta",
    "ground beef",
    "yogurt",
    "a birthday card",
    "call the dentist",
    "pay the rent",
    "buy stamps",
    "pick up dry cleaning",
    "book flights",
    "water the plants",
    "passport",
    "phone charger",
    "socks",
    "sunglasses",
    "nails",
    "a hammer",
    "trash bags",
    "cereal",
    "garlic",
    "onions",
    "salt",
    "ice cream",
    "dark chocolate",
    "avocados",
    "wine",
    "two lemons",
    "flour",
]
_LISTS = [
    "shopping",
    "grocery",
    "to do",
    "todo",
    "packing",
    "christmas",
    "hardware store",
    "costco",
    "weekend",
    "work",
    "chores",
    "camping",
    "party",
    "errands",
    "birthday",
    "wish",
]


def _brightness(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.55:
        n = rng.choice(range(5, 101, 5))
        return f"{n} percent" if rng.random() < 0.5 else f"{number_words(n)} percent"
    if kind < 0.7:
        return f"{rng.choice(range(10, 101, 10))}%"
    if kind < 0.85:
        return f"level {_number(rng, 1, 10)}"
    return rng.choice(
        ["maximum", "max", "full", "half", "minimum", "low", "dim", "bright", "full brightness"]
    )


SLOT_VALUES: dict[str, Callable[[random.Random], str]] = {
    "duration": _duration,
    "time": _clock,
    "date": _date,
    "room": lambda rng: rng.choice(_ROOMS),
    "device": lambda rng: rng.choice(_DEVICES),
    "brightness": _brightness,
    "item": lambda rng: rng.choice(_ITEMS),
    "list_name": lambda rng: rng.choice(_LISTS),
}

# intent -> (templates, how many unique utterances to aim for, takes command fillers)
TEMPLATES: dict[str, tuple[list[str], int, bool]] = {
    "Greet": (
        [
            "hello",
            "hi",
            "hey",
            "hi there",
            "hello there",
            "hey there",
            "good morning",
            "good afternoon",
            "good evening",
            "morning",
            "howdy",
            "greetings",
            "hiya",
            "yo",
            "hey assistant",
            "hello assistant",
            "hi how are you",
            "hello how are you doing",
            "hey what s up",
            "good morning to you",
            "hi friend",
            "hey buddy",
            "hello again",
            "hi again",
        ],
        90,
        False,
    ),
    "Goodbye": (
        [
            "bye",
            "goodbye",
            "bye bye",
            "see you later",
            "see you",
            "good night",
            "talk to you later",
            "that s all",
            "that s all for now",
            "i m done",
            "catch you later",
            "farewell",
            "see ya",
            "have a good day",
            "good bye",
            "later",
            "bye for now",
            "see you tomorrow",
            "that will be all",
            "we re done",
            "i have to go now",
            "signing off",
        ],
        90,
        False,
    ),
    "Thanks": (
        [
            "thanks",
            "thank you",
            "thank you so much",
            "thanks a lot",
            "cheers",
            "much appreciated",
            "great thanks",
            "that s helpful thank you",
            "awesome thanks",
            "thanks a bunch",
            "thank you very much",
            "many thanks",
            "i appreciate it",
            "thanks for your help",
            "perfect thank you",
            "nice thanks",
            "thank you kindly",
            "that was helpful",
        ],
        80,
        False,
    ),
    "Help": (
        [
            "help",
            "i need help",
            "what can you do",
            "how does this work",
            "what are my options",
            "help me",
            "can you help me",
            "what can i say",
            "what commands do you know",
            "show me what you can do",
            "how do i use this",
            "what are you able to do",
            "i m lost",
            "what should i say",
            "help please",
            "i don t know what to do",
            "what do you do",
            "list your features",
            "what can i ask you",
            "how can you help me",
        ],
        90,
        False,
    ),
    "Cancel": (
        [
            "cancel",
            "stop",
            "never mind",
            "nevermind",
            "forget it",
            "cancel that",
            "stop that",
            "abort",
            "quit",
            "that s enough",
            "stop it",
            "scratch that",
            "forget about it",
            "cancel it",
            "stop stop",
            "cancel please",
            "never mind that",
            "oh never mind",
            "no stop",
            "shut up",
            "be quiet",
            "enough",
            "stop talking",
            "cancel the request",
            "drop it",
            "cancel everything",
        ],
        110,
        False,
    ),
    "Affirm": (
        [
            "yes",
            "yeah",
            "yep",
            "sure",
            "correct",
            "that s right",
            "ok",
            "okay",
            "absolutely",
            "of course",
            "yes please",
            "sounds good",
            "right",
            "affirmative",
            "do it",
            "go ahead",
            "exactly",
            "yes that s correct",
            "sure thing",
            "yup",
            "definitely",
            "yes go ahead",
            "that s it",
            "please do",
            "alright",
            "yes i do",
            "uh huh",
            "confirm",
        ],
        100,
        False,
    ),
    "Deny": (
        [
            "no",
            "nope",
            "nah",
            "no thanks",
            "not really",
            "that s wrong",
            "incorrect",
            "no way",
            "negative",
            "don t",
            "that s not right",
            "not now",
            "no it isn t",
            "no thank you",
            "wrong",
            "not at all",
            "no that s not it",
            "i don t think so",
            "no i don t",
            "please don t",
            "definitely not",
            "no not that one",
            "that s not what i said",
        ],
        90,
        False,
    ),
    "Repeat": (
        [
            "repeat",
            "repeat that",
            "say that again",
            "what did you say",
            "come again",
            "pardon",
            "sorry i didn t catch that",
            "can you repeat that",
            "again please",
            "one more time",
            "i didn t hear you",
            "what was that",
            "please repeat",
            "could you say that again",
            "repeat the last thing",
            "say it again",
            "pardon me",
            "i missed that",
            "repeat what you just said",
            "huh what",
        ],
        90,
        False,
    ),
    "GetTime": (
        [
            "what time is it",
            "what s the time",
            "tell me the time",
            "do you know what time it is",
            "current time",
            "time please",
            "what time is it now",
            "what s the current time",
            "can you tell me the time",
            "what time do you have",
            "what is the time",
            "give me the time",
            "what s the time right now",
            "do you have the time",
            "how late is it",
            "the time",
        ],
        110,
        True,
    ),
    "GetDate": (
        [
            "what s the date",
            "what day is it",
            "what is today s date",
            "what s today",
            "which day is it today",
            "tell me the date",
            "what s the date today",
            "what month is it",
            "what year is it",
            "what s today s date",
            "what day of the week is it",
            "today s date",
            "what is the date today",
            "what date is it",
            "which date is it",
            "what day is today",
        ],
        110,
        True,
    ),
    "SetTimer": (
        [
            "set a timer for {duration}",
            "start a {duration} timer",
            "timer for {duration}",
            "set the timer to {duration}",
            "start a timer for {duration}",
            "{duration} timer",
            "put a timer on for {duration}",
            "i need a timer for {duration}",
            "set a timer",
            "count down {duration}",
            "set a {duration} timer",
            "start a timer",
            "timer {duration}",
            "can you time {duration}",
            "make a timer for {duration}",
            "new timer for {duration}",
            "start the timer for {duration}",
            "set timer {duration}",
            "start counting down from {duration}",
            "let me know when {duration} are up",
            "set a countdown for {duration}",
        ],
        400,
        True,
    ),
    "CancelTimer": (
        [
            "cancel the timer",
            "stop the timer",
            "delete my timer",
            "turn off the timer",
            "cancel my {duration} timer",
            "remove the timer",
            "kill the timer",
            "stop the countdown",
            "cancel all timers",
            "delete the {duration} timer",
            "cancel timer",
            "stop my timer",
            "get rid of the timer",
            "clear the timer",
            "turn the timer off",
            "end the timer",
            "i don t need the timer anymore",
            "cancel the countdown",
            "stop the {duration} timer",
        ],
        220,
        True,
    ),
    "SetAlarm": (
        [
            "set an alarm for {time}",
            "wake me up at {time}",
            "set an alarm for {time} {date}",
            "wake me up {date} at {time}",
            "alarm at {time}",
            "set my alarm for {time} on {date}",
            "i need an alarm at {time}",
            "{date} wake me at {time}",
            "create an alarm for {time}",
            "set an alarm",
            "wake me up at {time} {date}",
            "set the alarm to {time}",
            "alarm for {time} {date}",
            "set alarm {time}",
            "new alarm {date} at {time}",
            "make an alarm for {date} at {time}",
            "set an alarm on {date} for {time}",
            "please wake me at {time}",
            "get me up at {time} {date}",
            "set a {time} alarm",
        ],
        450,
        True,
    ),
    "CancelAlarm": (
        [
            "cancel my alarm",
            "cancel the alarm",
            "cancel my {time} alarm",
            "delete the alarm for {time}",
            "remove my alarm",
            "turn off my {time} alarm",
            "get rid of the {date} alarm",
            "delete my alarms",
            "remove all my alarms",
            "cancel the alarm for {date}",
            "i don t need the {time} alarm anymore",
            "switch off the alarm for {date} at {time}",
            "clear my alarms",
            "remove the {time} alarm {date}",
            "cancel alarm",
            "don t wake me up {date}",
            "delete the {date} {time} alarm",
            "stop my {date} alarm",
        ],
        220,
        True,
    ),
    "LightsOn": (
        [
            "turn on the {room} {device}",
            "turn on the {device} in the {room}",
            "switch on the {device}",
            "{device} on",
            "{room} {device} on",
            "turn the {device} on",
            "turn on the {device}",
            "switch the {room} {device} on",
            "put the {device} on in the {room}",
            "turn on the {room} light",
            "light up the {room}",
            "power on the {room} {device}",
            "{device} on",
            "turn the {room} {device} on",
            "switch on the {device} in the {room}",
            "i need some light in the {room}",
            "turn {room} {device} on",
            "turn on {room} {device}",
            "switch on {device}",
            "can i get the {device} on in the {room}",
            "{device} on in the {room}",
            "activate the {room} {device}",
        ],
        420,
        True,
    ),
    "LightsOff": (
        [
            "turn off the {room} {device}",
            "turn off the {device} in the {room}",
            "switch off the {device}",
            "{device} off",
            "{room} {device} off",
            "turn the {device} off",
            "turn off the {device}",
            "switch the {room} {device} off",
            "kill the {device} in the {room}",
            "shut off the {device}",
            "power off the {room} {device}",
            "{device} off",
            "turn the {room} {device} off",
            "switch off the {device} in the {room}",
            "make it dark in the {room}",
            "turn {room} {device} off",
            "turn off {room} {device}",
            "switch off {device}",
            "lights out in the {room}",
            "shut the {room} {device} off",
            "deactivate the {room} {device}",
            "no more light in the {room}",
        ],
        420,
        True,
    ),
    "SetBrightness": (
        [
            "set the {room} {device} to {brightness}",
            "dim the {device} to {brightness}",
            "set brightness to {brightness} in the {room}",
            "make the {room} {device} {brightness}",
            "brighten the {room} {device} to {brightness}",
            "change the {device} brightness to {brightness}",
            "{device} at {brightness}",
            "dim the {room} {device}",
            "set the {device} brightness to {brightness}",
            "set the {device} in the {room} to {brightness}",
            "brightness {brightness}",
            "turn the {room} {device} up to {brightness}",
            "turn the {device} down to {brightness}",
            "dim the {room} {device}",
            "brighten the {device}",
            "adjust the {room} {device} to {brightness}",
            "make the {device} brighter",
            "make the {room} {device} dimmer",
            "{room} {device} to {brightness}",
            "set {room} brightness to {brightness}",
            "turn the brightness up in the {room}",
            "lower the {device} in the {room} to {brightness}",
        ],
        420,
        True,
    ),
    "ListAdd": (
        [
            "add {item} to my {list_name} list",
            "put {item} on the {list_name} list",
            "add {item} to the {list_name} list",
            "add {item} to my list",
            "put {item} on my list",
            "add {item} to {list_name} list",
            "i need to add {item} to my {list_name} list",
            "can you add {item} to the {list_name} list",
            "put {item} on my {list_name} list",
            "add {item}",
            "{list_name} list add {item}",
            "remember to buy {item}",
            "add {item} and {item} to my {list_name} list",
            "include {item} on the {list_name} list",
            "note {item} on my {list_name} list",
            "stick {item} on the {list_name} list",
            "write {item} on my {list_name} list",
        ],
        420,
        True,
    ),
    "ListRemove": (
        [
            "remove {item} from my {list_name} list",
            "take {item} off the {list_name} list",
            "delete {item} from the {list_name} list",
            "cross {item} off my list",
            "scratch {item} from the {list_name} list",
            "remove {item} from the list",
            "take {item} off my {list_name} list",
            "delete {item} from my list",
            "remove {item}",
            "cross off {item} on the {list_name} list",
            "i already have {item} remove it from the list",
            "get {item} off my {list_name} list",
            "strike {item} from my {list_name} list",
            "{list_name} list remove {item}",
            "mark {item} as done on my {list_name} list",
            "i bought {item} take it off the {list_name} list",
        ],
        380,
        True,
    ),
    "ListRead": (
        [
            "what s on my {list_name} list",
            "read my {list_name} list",
            "read me the {list_name} list",
            "show my {list_name} list",
            "what do i have on the {list_name} list",
            "tell me what s on my list",
            "check my {list_name} list",
            "what s on the list",
            "read my list",
            "what s on my list",
            "list the items on my {list_name} list",
            "what is on my {list_name} list",
            "open my {list_name} list",
            "go through my {list_name} list",
            "what do i need to buy",
            "how many items are on my {list_name} list",
            "read out the {list_name} list",
            "is {item} on my {list_name} list",
            "do i have {item} on the {list_name} list",
            "what s left on my {list_name} list",
        ],
        380,
        True,
    ),
}

COMMAND_PREFIXES = [
    "please",
    "hey",
    "ok",
    "um",
    "can you",
    "could you",
    "could you please",
    "would you",
    "would you please",
    "i want you to",
    "i need you to",
    "hey can you",
    "ok please",
    "go ahead and",
    "hey rivulet",
    "alright",
    "quick",
    "i d like you to",
    "uh",
]
COMMAND_SUFFIXES = ["please", "now", "for me", "thanks", "thank you", "right now", "asap", "quickly", "ok"]
SOCIAL_PREFIXES = ["oh", "um", "well", "ok", "uh", "hmm"]
SOCIAL_SUFFIXES = ["please", "then", "now", "again", "rivulet"]
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _render(template: str, rng: random.Random) -> tuple[list[str], list[str]]:
    words: list[str] = []
    tags: list[str] = []
    for part in template.split():
        match = _PLACEHOLDER.fullmatch(part)
        if match:
            value = SLOT_VALUES[match.group(1)](rng).split()
            words.extend(value)
            tags.extend([f"B-{match.group(1)}"] + [f"I-{match.group(1)}"] * (len(value) - 1))
        else:
            words.append(part)
            tags.append("O")
    return words, tags


def _utterance(template: str, command: bool, rng: random.Random) -> tuple[list[str], list[str]]:
    words, tags = _render(template, rng)
    prefixes, suffixes = (
        (COMMAND_PREFIXES, COMMAND_SUFFIXES) if command else (SOCIAL_PREFIXES, SOCIAL_SUFFIXES)
    )
    if rng.random() < (0.3 if command else 0.15):
        prefix = rng.choice(prefixes).split()
        words, tags = prefix + words, ["O"] * len(prefix) + tags
    if rng.random() < (0.15 if command else 0.08):
        suffix = rng.choice(suffixes).split()
        words, tags = words + suffix, tags + ["O"] * len(suffix)
    return words, tags


def generate(
    seed: int = 13, dev_fraction: float = 0.1, test_fraction: float = 0.1
) -> dict[str, list[Example]]:
    """Unique utterances per intent, shuffled and split into {"train", "dev", "test"}."""
    rng = random.Random(seed)
    splits: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    for intent, (templates, target, command) in TEMPLATES.items():
        seen: dict[tuple[str, ...], Example] = {}
        for _ in range(target * 6):
            if len(seen) >= target:
                break
            words, tags = _utterance(rng.choice(templates), command, rng)
            seen.setdefault(tuple(words), Example(tuple(words), tuple(tags), intent))
        examples = list(seen.values())
        rng.shuffle(examples)
        n_dev = max(2, round(len(examples) * dev_fraction))
        n_test = max(2, round(len(examples) * test_fraction))
        splits["dev"].extend(examples[:n_dev])
        splits["test"].extend(examples[n_dev : n_dev + n_test])
        splits["train"].extend(examples[n_dev + n_test :])
    return splits
