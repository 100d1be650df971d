"""Text normalization: write out what a synthesizer would otherwise misread or spell.

``normalize("Meet Dr. Smith at 7:30 pm on June 13th 2038; it costs $5.50 (20% off).")`` →
``"Meet doctor Smith at seven thirty p m on June thirteenth twenty thirty-eight; it costs five
dollars and fifty cents (twenty percent off)."``

Covered, in this order (each rule sees the output of the ones before it): currencies
(``$5``, ``€1.50``, ``£3``, ``¥100``), percentages (``50%``, ``2.5%``), dates (``12/25/2024``,
``2024-12-25``, month names followed by a day and/or a year), times (``7:30``, ``7:05 pm``,
``7pm``, ``19:00``), ordinals (``1st``, ``22nd``), years (``1999``, ``2038`` read as years when they
stand alone), units after numbers (``5 km``, ``3kg``), abbreviations (``Dr.``, ``Mr.``, ``St.``,
``etc.``, ``e.g.``, ...), ``&``, signed and decimal numbers, and cardinals (``1,234``). Number words
come from ``inflect`` (a maintained library) rather than hand-written tables.

Everything is plain regular expressions over the text, so a 10-word sentence takes well under a
millisecond: the front-end stays out of the first-audio latency budget.
"""

from __future__ import annotations

import re
from functools import lru_cache

import inflect

MONTHS = ("january february march april may june july august september october november december").split()
_MONTH_ABBR = {m[:3]: m for m in MONTHS} | {"sept": "september"}
_MONTH_RE = r"(?:" + "|".join(MONTHS + sorted(_MONTH_ABBR, key=len, reverse=True)) + r")\.?"

# Abbreviations that are unambiguous with their trailing period (case-sensitive keys).
ABBREVIATIONS = {
    "Mr.": "mister",
    "Mrs.": "missus",
    "Ms.": "miz",
    "Dr.": "doctor",
    "Prof.": "professor",
    "Jr.": "junior",
    "Sr.": "senior",
    "Mt.": "mount",
    "Ave.": "avenue",
    "Blvd.": "boulevard",
    "Rd.": "road",
    "Ft.": "fort",
    "Dept.": "department",
    "Inc.": "incorporated",
    "Ltd.": "limited",
    "Co.": "company",
    "Corp.": "corporation",
    "approx.": "approximately",
    "vs.": "versus",
    "etc.": "et cetera",
    "e.g.": "for example",
    "i.e.": "that is",
    "a.m.": "a m",
    "p.m.": "p m",
}
UNITS = {
    "km": ("kilometer", "kilometers"),
    "kg": ("kilogram", "kilograms"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "mi": ("mile", "miles"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "ft": ("foot", "feet"),
    "mph": ("mile per hour", "miles per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "ml": ("milliliter", "milliliters"),
    "GB": ("gigabyte", "gigabytes"),
    "MB": ("megabyte", "megabytes"),
    "kHz": ("kilohertz", "kilohertz"),
    "Hz": ("hertz", "hertz"),
    "ms": ("millisecond", "milliseconds"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
}
CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", "sen", "sen"),
}

_NUM = r"\d{1,3}(?:,\d{3})+|\d+"


@lru_cache(maxsize=1)
def _engine() -> inflect.engine:
    return inflect.engine()


def cardinal(n: int) -> str:
    """123 → 'one hundred twenty-three' (no commas, no 'and')."""
    if n < 0:
        return "minus " + cardinal(-n)
    words = _engine().number_to_words(n, andword="", zero="zero")
    return " ".join(str(words).replace(",", "").split())


def ordinal(n: int) -> str:
    """23 → 'twenty-third'."""
    return " ".join(str(_engine().number_to_words(_engine().ordinal(n), andword="")).replace(",", "").split())


def digits(text: str) -> str:
    """'0425' → 'zero four two five'."""
    return " ".join(cardinal(int(d)) for d in text)


def year(n: int) -> str:
    """1999 → 'nineteen ninety-nine', 1905 → 'nineteen oh five', 2005 → 'two thousand five'."""
    if n < 1000 or n > 9999 or (2000 <= n < 2010) or n % 1000 == 0:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return f"{cardinal(high)} hundred"
    if low < 10:
        return f"{cardinal(high)} oh {cardinal(low)}"
    return f"{cardinal(high)} {cardinal(low)}"


def number(text: str) -> str:
    """A written number: '1,234' → cardinal; '3.14' → 'three point one four'; long digit strings
    (over 15 digits, e.g. card numbers) → digit by digit."""
    sign = ""
    if text[:1] in "-−":
        sign, text = "minus ", text[1:]
    whole, _, frac = text.replace(",", "").partition(".")
    if len(whole) > 15:
        spoken = digits(whole)
    else:
        spoken = cardinal(int(whole or "0"))
    if frac:
        spoken += " point " + digits(frac)
    return sign + spoken


def _money(symbol: str, amount: str, scale: str = "") -> str:
    unit, units, sub, subs = CURRENCIES[symbol]
    whole, _, frac = amount.replace(",", "").partition(".")
    value = int(whole or "0")
    if scale:
        return f"{number(amount)} {scale} {units}"
    spoken = f"{cardinal(value)} {unit if value == 1 else units}"
    if frac and int(frac[:2].ljust(2, "0")):
        cents = int(frac[:2].ljust(2, "0"))
        spoken += f" and {cardinal(cents)} {sub if cents == 1 else subs}"
    return spoken


def _time(hour: int, minute: int, suffix: str) -> str:
    spoken = cardinal(hour)
    if minute == 0 and not suffix:
        spoken += " hundred" if hour > 12 else " o'clock"
    elif minute == 0:
        pass
    elif minute < 10:
        spoken += f" oh {cardinal(minute)}"
    else:
        spoken += f" {cardinal(minute)}"
    if suffix:
        spoken += " " + " ".join(suffix.lower().replace(".", ""))
    return spoken


def _month(name: str) -> str:
    key = name.lower().rstrip(".")
    return _MONTH_ABBR.get(key, key).capitalize()


def _date(month: int, day: int, year_text: str | None) -> str | None:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    spoken = f"{MONTHS[month - 1].capitalize()} {ordinal(day)}"
    if year_text:
        spoken += f" {year(int(year_text))}"
    return spoken


# --- rules: (pattern, replacement) applied in order ---------------------------------------------

_SCALES = r"(?:thousand|million|billion|trillion)"


def _sub_currency(m: re.Match) -> str:
    return _money(m["sym"], m["amt"], m["scale"] or "")


def _sub_percent(m: re.Match) -> str:
    return f"{number(m[1])} percent"


def _sub_numeric_date(m: re.Match) -> str:
    if m["iso_y"]:
        spoken = _date(int(m["iso_m"]), int(m["iso_d"]), m["iso_y"])
    else:
        spoken = _date(int(m["us_m"]), int(m["us_d"]), m["us_y"])
    return spoken if spoken is not None else m[0].replace("/", " slash ").replace("-", " ")


def _sub_month_date(m: re.Match) -> str:
    spoken = _month(m["month"])
    if m["day"]:
        spoken += " " + ordinal(int(m["day"]))
    if m["year"]:
        spoken += " " + year(int(m["year"]))
    return spoken


def _sub_day_month(m: re.Match) -> str:
    spoken = f"the {ordinal(int(m['day']))} of {_month(m['month'])}"
    if m["year"]:
        spoken += " " + year(int(m["year"]))
    return spoken


def _keep_period(m: re.Match, spoken: str) -> str:
    """'9 am.' at the end of a sentence: the period the am/pm pattern took also ended the sentence."""
    rest = m.string[m.end() :]
    if m[0].endswith(".") and (not rest.strip() or re.match(r"\s+[A-Z]", rest)):
        return spoken + "."
    return spoken


def _sub_clock(m: re.Match) -> str:
    hour, minute = int(m["h"]), int(m["m"])
    if hour > 23 or minute > 59:
        return f"{cardinal(hour)} {cardinal(minute)}"
    return _keep_period(m, _time(hour, minute, m["ampm"] or ""))


def _sub_hour_ampm(m: re.Match) -> str:
    return _keep_period(m, _time(int(m["h"]), 0, m["ampm"]))


def _sub_ordinal(m: re.Match) -> str:
    return ordinal(int(m[1].replace(",", "")))


def _sub_unit(m: re.Match) -> str:
    singular, plural = UNITS[m["unit"]]
    value = m["num"]
    return f"{number(value)} {singular if value in ('1', '1.0') else plural}"


def _sub_year(m: re.Match) -> str:
    return year(int(m[1]))


def _sub_number(m: re.Match) -> str:
    return number(m[0])


def _sub_abbreviation(m: re.Match) -> str:
    return ABBREVIATIONS[m[0]]


def _sub_saint_street(m: re.Match) -> str:
    # "St. Louis" → saint; "Main St." → street
    return "saint " if m["next"] is not None else "street"


_ABBR_RE = "|".join(re.escape(a) for a in sorted(ABBREVIATIONS, key=len, reverse=True))
_UNIT_RE = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
_AMPM = r"(?P<ampm>[ap]\.?\s?m\.?)(?![a-z])"

RULES: list[tuple[re.Pattern[str], object]] = [
    (
        re.compile(rf"(?P<sym>[$€£¥])\s?(?P<amt>(?:{_NUM})(?:\.\d+)?)(?:\s(?P<scale>{_SCALES}))?"),
        _sub_currency,
    ),
    (re.compile(rf"(-?(?:{_NUM})(?:\.\d+)?)\s?%"), _sub_percent),
    (
        re.compile(
            r"\b(?:(?P<iso_y>\d{4})-(?P<iso_m>\d{1,2})-(?P<iso_d>\d{1,2})"
            r"|(?P<us_m>\d{1,2})/(?P<us_d>\d{1,2})/(?P<us_y>\d{4}))\b"
        ),
        _sub_numeric_date,
    ),
    (
        re.compile(
            rf"\b(?P<month>{_MONTH_RE})\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>\d{{4}})\b)?",
            re.IGNORECASE,
        ),
        _sub_month_date,
    ),
    (
        re.compile(
            rf"(?:\bthe\s+)?\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<month>{_MONTH_RE})(?:,?\s+(?P<year>\d{{4}})\b)?",
            re.IGNORECASE,
        ),
        _sub_day_month,
    ),
    (re.compile(rf"\b(?P<h>\d{{1,2}}):(?P<m>\d{{2}})(?:\s?{_AMPM})?", re.IGNORECASE), _sub_clock),
    (re.compile(rf"\b(?P<h>\d{{1,2}})\s?{_AMPM}", re.IGNORECASE), _sub_hour_ampm),
    (re.compile(r"\b(\d{1,3}(?:,\d{3})+|\d+)(?:st|nd|rd|th)\b", re.IGNORECASE), _sub_ordinal),
    (re.compile(rf"(?P<num>\d+(?:\.\d+)?)\s?(?P<unit>{_UNIT_RE})(?![\w/])"), _sub_unit),
    (re.compile(r"(?<![\d.,])\b(1[1-9]\d\d|20\d\d)\b(?![.,]\d)"), _sub_year),
    (re.compile(rf"(?<![\w.])[-−]?(?:{_NUM})(?:\.\d+)?(?![\w])|\d+"), _sub_number),
    (re.compile(rf"(?<![\w.])(?:{_ABBR_RE})(?=\s|$|[,;:!?)])"), _sub_abbreviation),
    (re.compile(r"(?<![\w.])St\.(?:\s+(?P<next>(?=[A-Z])))?"), _sub_saint_street),
    (re.compile(r"\s*&\s*"), " and "),
]


def normalize(text: str) -> str:
    """Spoken form of ``text`` (see the module docstring); whitespace collapsed."""
    for pattern, replacement in RULES:
        text = pattern.sub(replacement, text)  # type: ignore[arg-type]
    return " ".join(text.split())
