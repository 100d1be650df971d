"""What the user is likely to say next, for the ASR (Riva `speech_contexts` word boosting).

After a question the answers narrow a lot: "For how many people?" is answered with a number and
"people", a confirmation with yes or no, "Where?" with a place. The policy turns the session's state
into these phrases (`Policy.hints`) and the Converse stream opens the ASR call for the next turn with
them boosted, so a short answer the acoustic model half hears ("yes", "four people", "paris") is
written as the word the dialog expects rather than a likelier-looking one from the general LM.
Hints are only a bias: any other words can still be recognized.

Each required slot of a skill names its hints (`SlotSpec.hints`); the lists shared by several
skills live here. Function words ("a", "at", "in") are left out: the LM knows them well, and
boosting them would only invite insertions.
"""

from __future__ import annotations

from rivulet.dialog.parse import DAYS, number_words

CONFIRM = ("yes", "no", "yes please", "no thanks", "sure", "okay", "cancel", "correct")
SMALL_NUMBERS = number_words(1, 12)
DAYS_AHEAD = ("today", "tonight", "tomorrow", "this weekend", "next week", *DAYS)
CLOCK = (*SMALL_NUMBERS, "am", "pm", "noon", "midnight", "o'clock", "thirty", "fifteen", "forty five",
         "half past", "quarter past")  # fmt: skip
DURATION = (*number_words(1, 19), "twenty", "thirty", "forty", "forty five", "fifty", "sixty", "ninety",
            "half", "an hour", "seconds", "second", "minutes", "minute", "hours", "hour")  # fmt: skip
PARTY = (*SMALL_NUMBERS, "people", "person", "of us", "just me")
PERCENT = (*number_words(1, 10), "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
           "hundred", "percent")  # fmt: skip
# The places people most often ask about: large cities of the US and of the world.
CITIES = (
    "new york", "los angeles", "chicago", "houston", "phoenix", "philadelphia", "san antonio", "san diego",
    "dallas", "austin", "san francisco", "seattle", "denver", "boston", "washington", "nashville",
    "las vegas", "portland", "detroit", "atlanta", "miami", "minneapolis", "new orleans", "london", "paris",
    "berlin", "madrid", "rome", "amsterdam", "dublin", "tokyo", "beijing", "sydney", "toronto", "mexico city",
    "near me", "here",
)  # fmt: skip
# After an answer that a follow-up can change one slot of ("what about tomorrow?", "and in Paris?")
FOLLOW_UP = ("what about", "how about", *DAYS_AHEAD)


def boost(phrases: tuple[str, ...], answer_boost: float, follow_up_boost: float) -> float:
    """The speech_contexts boost of a turn's hints: the answers to a question are expected
    (`answer_boost`); the follow-ups on an answer only possible (`follow_up_boost`, lower: with the
    answers' boost they won over other requests, "Saturday time of 4" for "set a timer...")."""
    return follow_up_boost if tuple(phrases) == FOLLOW_UP else answer_boost
