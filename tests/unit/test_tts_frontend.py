"""The TTS text front-end: normalization, SSML subset, custom dictionary, pronunciations."""

from __future__ import annotations

import pytest

from rivulet.tts import ssml
from rivulet.tts.frontend import FrontEndError, build_script, parse_custom_dictionary
from rivulet.tts.normalize import normalize
from rivulet.tts.phonemes import PronunciationError, parse_arpabet, parse_ipa, to_espeak, to_respelling


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("I have 1,234 apples", "I have one thousand two hundred thirty-four apples"),
        ("pi is 3.14", "pi is three point one four"),
        ("it is -5 outside", "it is minus five outside"),
        ("the 1st and the 22nd", "the first and the twenty-second"),
        ("on June 13th 2038", "on June thirteenth twenty thirty-eight"),
        ("on Dec 5, 1999", "on December fifth nineteen ninety-nine"),
        ("the 22nd of May", "the twenty-second of May"),
        ("due 2024-12-25", "due December twenty-fifth twenty twenty-four"),
        ("due 12/25/2024", "due December twenty-fifth twenty twenty-four"),
        ("at 7:30", "at seven thirty"),
        ("at 7:05 pm", "at seven oh five p m"),
        ("at 7:00", "at seven o'clock"),
        ("at 19:00", "at nineteen hundred"),
        ("at 7pm", "at seven p m"),
        ("meeting at 9 am.", "meeting at nine a m."),
        ("at 9 a.m. tomorrow", "at nine a m tomorrow"),
        ("costs $5.50", "costs five dollars and fifty cents"),
        ("costs $1", "costs one dollar"),
        ("costs €20", "costs twenty euros"),
        ("costs £3.01", "costs three pounds and one penny"),
        ("$2 million", "two million dollars"),
        ("20% off", "twenty percent off"),
        ("2.5% more", "two point five percent more"),
        ("in 1999 and 2005", "in nineteen ninety-nine and two thousand five"),
        ("Dr. Smith and Mr. Jones", "doctor Smith and mister Jones"),
        ("Main St. and St. Louis", "Main street and saint Louis"),
        ("cats, dogs, etc.", "cats, dogs, et cetera"),
        ("5 km and 3kg", "five kilometers and three kilograms"),
        ("AT&T", "AT and T"),
        ("room 101", "room one hundred one"),
    ],
)
def test_normalize(text, spoken):
    assert normalize(text) == spoken


def test_normalize_leaves_plain_words_alone():
    assert normalize("  play   some jazz  ") == "play some jazz"


def test_ipa_and_arpabet_pronunciations():
    assert parse_ipa("təˈmɑːtoʊ") == ["T", "AH0", "M", "AA1", "T", "OW0"]
    assert parse_arpabet("t ah0 m aa1 t ow2") == ["T", "AH0", "M", "AA1", "T", "OW2"]
    assert to_espeak(["T", "AH0", "M", "AA1", "T", "OW0"]) == "[[t@m'A:toU]]"
    assert to_respelling(["T", "AH0", "M", "AA1", "T", "OW0"]) == "tuh mah toh"
    with pytest.raises(PronunciationError, match="'Q1'"):
        parse_arpabet("K Q1")
    with pytest.raises(PronunciationError, match="U\\+0298"):
        parse_ipa("ʘa")


def test_custom_dictionary_parses_riva_format():
    entries = parse_custom_dictionary("tomato  T AH0 M AA1 T OW0,Rivulet  ˈɹɪvjəlɪt")
    assert entries["tomato"] == ["T", "AH0", "M", "AA1", "T", "OW0"]
    assert entries["rivulet"][0] == "R"
    with pytest.raises(FrontEndError, match="entry 1"):
        parse_custom_dictionary("tomato")
    with pytest.raises(FrontEndError, match="'Q1'"):
        parse_custom_dictionary("x  K Q1")


def test_custom_dictionary_applies_per_engine_input():
    espeak = build_script("Say Tomato at 7:30.", "tomato  T AH0 M AA1 T OW0", "espeak")
    assert espeak.entries == [{"text": "Say [[t@m'A:toU]] at seven thirty.", "rate": 1.0, "pitch": 1.0}]
    assert espeak.processed_text == "Say Tomato at seven thirty."
    respelled = build_script("tomatoes and tomato", "tomato  T AH0 M AA1 T OW0", "respell")
    assert respelled.entries[0]["text"] == "tomatoes and tuh mah toh"  # whole words only


def test_ssml_subset_becomes_script():
    document = """<speak version="1.0" xml:lang="en-US">Hello <break time="300ms"/>
      <prosody rate="slow" pitch="+2st">I am <sub alias="World Wide Web">WWW</sub> and
      <phoneme alphabet="ipa" ph="ˈpiːkæn">pecan</phoneme></prosody> on 5/6/2020.</speak>"""
    script = build_script(document, "", "espeak")
    assert script.entries[0] == {"text": "Hello", "rate": 1.0, "pitch": 1.0}
    assert script.entries[1] == {"break_ms": 300}
    slow = script.entries[2]
    assert slow["text"] == "I am World Wide Web and [[p'i:kan]]"
    assert slow["rate"] == 0.75 and slow["pitch"] == pytest.approx(1.1225, abs=1e-4)
    assert script.entries[3]["text"] == "on May sixth twenty twenty."
    assert "pecan" in script.processed_text and "WWW" not in script.processed_text


def test_ssml_prosody_nests_and_breaks_by_strength():
    pieces = ssml.parse('<speak><prosody rate="50%"><prosody rate="200%">x</prosody></prosody>'
                        '<break strength="strong"/></speak>')  # fmt: skip
    assert pieces[0].rate == pytest.approx(1.0)
    assert pieces[1].break_ms == ssml.BREAK_STRENGTHS["strong"]


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        (
            "<speak>hi <emphasis>x</emphasis></speak>",
            "line 1, column 11, <emphasis>: tag <emphasis> is not supported",
        ),
        (
            '<speak>hi <prosody volume="loud">x</prosody></speak>',
            "attribute 'volume' is not supported on <prosody>",
        ),
        ('<speak>\nhi\n<break time="5"/></speak>', "line 3, column 1, <break>: break time='5'"),
        ('<speak><break time="11s"/></speak>', "over the 10000 ms limit"),
        ('<speak><prosody rate="900%">x</prosody></speak>', "rate='900%' is not supported"),
        ('<speak><prosody pitch="up">x</prosody></speak>', "pitch='up' is not supported"),
        ("<speak><prosody>x</prosody></speak>", "needs a rate or pitch"),
        ("<speak><sub>x</sub></speak>", "<sub> needs a non-empty alias"),
        (
            '<speak><phoneme ph="K Q1" alphabet="x-arpabet">x</phoneme></speak>',
            "'Q1' is not an ARPABET phone",
        ),
        ('<speak><phoneme ph="x" alphabet="sampa">x</phoneme></speak>', "alphabet 'sampa' is not supported"),
        ("<speak>hi <b></speak>", "tag <b> is not supported"),
        ("<speak>hi", "malformed SSML at line 1"),
        ("<speak>a</speak><x/>", "junk after document element"),
        ("<speak><speak>a</speak></speak>", "<speak> cannot be nested"),
        ('<?xml version="1.0"?><p>x</p>', "root element must be <speak>"),
        ('<!DOCTYPE speak [<!ENTITY a "b">]><speak>&a;</speak>', "DOCTYPE declarations are not allowed"),
    ],
)
def test_bad_ssml_names_the_problem(document, needle):
    with pytest.raises(FrontEndError) as err:
        build_script(document)
    assert needle in str(err.value)


def test_plain_text_with_angle_brackets_is_not_ssml():
    assert build_script("1 < 2 and 3 > 2").entries[0]["text"] == "one < two and three > two"


def test_markup_only_script_is_empty():
    assert build_script('<speak><break time="1s"/></speak>').empty


def test_nested_prosody_stays_within_one_elements_range():
    """20 nested rate="150%" once asked for 3325x speed (and got no audio): the product is clamped."""
    deep = "<speak>" + "<prosody rate='150%' pitch='+50%'>" * 20 + "deep" + "</prosody>" * 20 + "</speak>"
    (entry,) = build_script(deep).entries
    assert entry["rate"] == ssml.RATE_RANGE[1] and entry["pitch"] == ssml.PITCH_RANGE[1]
    slow = "<speak>" + "<prosody rate='x-slow'>" * 10 + "slow" + "</prosody>" * 10 + "</speak>"
    assert build_script(slow).entries[0]["rate"] == ssml.RATE_RANGE[0]


def test_overlong_words_are_refused_with_the_limit():
    with pytest.raises(FrontEndError, match=r"a word of 1801 characters .* over the 100-character limit"):
        build_script("w" * 1801)
    with pytest.raises(FrontEndError, match="a word of 101 characters"):
        build_script("<speak>fine " + "x" * 101 + "</speak>")
    assert build_script("pneumonoultramicroscopicsilicovolcanoconiosis " * 3).entries
