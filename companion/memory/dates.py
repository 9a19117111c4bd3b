"""Finding dates and times in a message and resolving them against the current time.

One parser for the memory and the agenda. Two readings:

- :func:`find_when` (memory) finds the first date phrase and renders it
  absolutely, so a fact stays true when read next month: "I have an interview
  on Tuesday" -> ``on Tuesday 2026-12-01``.
- :func:`find_moments` (agenda) finds every date and time phrase and resolves
  each to a local datetime: "on Friday at 6", "tomorrow 9am", "in 20 minutes".

Dates covered: today, tonight, this morning, tomorrow (and the day after),
weekdays (``on``/``this``/``next``), this/next week, weekend, month and year,
``in N days/weeks/months``, ``March 3rd``, ``3 March``, ``the 3rd of March``,
``on the 14th``, ``on 12/14`` (month first in an American zone, else day first,
unless only one order is a real date), with or without a year, and ISO dates; in
the past: yesterday, last night, ``last`` week/weekend/month/year/weekday and
``N days/weeks/months/years ago`` ("I got divorced last year" -> ``in 2025``).

Conventions: a bare or ``this`` weekday is its next occurrence after today (its
last one before today when the sentence is in the past tense: "I went to the
beach on Sunday"); ``next Tuesday`` is the Tuesday of next week (Monday to
Sunday). A month and day without a year is the next such day from today on;
``the 14th`` is the next 14th.

Times (:func:`find_moments`): ``6pm``, ``6:30 pm``, ``18:30``, ``at 6``, ``at
six``, ``6 o'clock``, ``half past 6``, ``quarter to 7``; ``noon`` 12:00,
``midnight`` 00:00 of the next day, ``end of the day`` 17:00; parts of the day
without a time: ``morning`` 09:00, ``afternoon`` 15:00, ``this evening`` (any
``evening``) 19:00, ``tonight`` (any ``night``) 20:00; and ``in 20 minutes``,
``in 2 hours``, ``in half an hour``, ``an hour from now``. A bare hour 1-7
without am/pm is pm unless the morning is said, 8-11 am, 12 noon; ``07:30`` and
``18:30`` are 24-hour. A time said without a date is the next such time (today
if still ahead, else tomorrow); a bare hour whose evening reading has passed
("at 7" said at 20:00) is marked ``ambiguous``. A date and a time far apart in
one message ("remind me tomorrow to call at 6") are read together when they are
the only two.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "a couple of": 2,
    "a couple": 2,
    "couple of": 2,
}
_ORDINAL_WORDS = [
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
    "twentieth",
]
#: "first" -> 1 ... "thirty-first" -> 31.
ORDINALS = (
    {word: n for n, word in enumerate(_ORDINAL_WORDS, start=1)}
    | {
        f"{tens}{sep}{word}": base + n
        for tens, base in (("twenty", 20), ("thirty", 30))
        for n, word in enumerate(_ORDINAL_WORDS[:9], start=1)
        for sep in ("-", " ")
        if base + n <= 31
    }
    | {"thirtieth": 30}
)

_WDFULL = "|".join(WEEKDAYS)
#: A weekday, abbreviated only after "on", "this", "next", "every" or "each"
#: ("sat" and "sun" are words too).
_WD = (
    _WDFULL
    + "|"
    + "|".join(
        rf"(?<={word}\s)(?:mon|tues?|wed|thu(?:rs?)?|fri|sat|sun)"
        for word in ("on", "this", "next", "every", "each")
    )
)
_MON = "|".join(sorted(MONTHS, key=len, reverse=True))
_NUM = "|".join(sorted(NUMBERS, key=len, reverse=True)) + r"|\d{1,3}"
_PART = r"(?:\s+(?:in\s+the\s+)?(?P<part>morning|afternoon|evening|night))?"
_ORD = r"(?:st|nd|rd|th)?"
_ORDW = "|".join(sorted(ORDINALS, key=len, reverse=True))

#: Holidays on a fixed day of the year (month, day), as they are written.
HOLIDAYS = {
    r"christmas\s+eve": (12, 24),
    r"christmas(?:\s+day)?|xmas": (12, 25),
    r"boxing\s+day": (12, 26),
    r"new\s+year'?s\s+eve": (12, 31),
    r"new\s+year'?s\s+day": (1, 1),
    r"valentine'?s(?:\s+day)?": (2, 14),
    r"halloween": (10, 31),
}
_HOLIDAY = "|".join(f"(?:{name})" for name in HOLIDAYS)

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in [
        ("iso", r"\b(?:on\s+)?(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})\b"),
        (
            "month_day",
            rf"\b(?:on\s+)?(?:(?:{_WDFULL}),?\s+)?(?:the\s+)?(?P<mon>{_MON})\.?\s+"
            rf"(?P<d>\d{{1,2}}){_ORD}\b(?:,?\s+(?P<y>\d{{4}})\b)?",
        ),
        (
            "day_month",
            rf"\b(?:on\s+)?(?:(?:{_WDFULL}),?\s+)?(?:the\s+)?(?P<d>\d{{1,2}}){_ORD}\s+"
            rf"(?:of\s+)?(?P<mon>{_MON})\b\.?(?:,?\s+(?P<y>\d{{4}})\b)?",
        ),
        (
            "numeric",
            r"(?:\b(?:on|by|until|before|for|due)\s+)(?P<a>\d{1,2})/(?P<b>\d{1,2})"
            r"(?:/(?P<y>\d{4}|\d{2}))?\b|\b(?P<a2>\d{1,2})/(?P<b2>\d{1,2})/(?P<y2>\d{4})\b",
        ),
        (
            "ordinal",
            rf"\b(?:on|by|until|before|for)\s+the\s+(?:(?P<d>\d{{1,2}})(?:st|nd|rd|th)"
            rf"|(?P<dw>{_ORDW}))\b(?!\s+(?:of\s+(?:every|each|the)|time|place|one))",
        ),
        ("holiday", rf"\b(?:on\s+)?(?P<hol>{_HOLIDAY})\b"),
        ("after_tomorrow", r"\b(?:on\s+)?the\s+day\s+after\s+(?:tomorrow|tmrw|tmr)\b"),
        ("tomorrow", rf"\b(?:tomorrow|tmrw|tmr|tomorow|tommorow|2moro)\b{_PART}"),
        ("tonight", r"\b(?:later\s+)?(?:tonight|tonite)\b"),
        ("today", r"\b(?:later\s+)?today\b|\bthis\s+(?P<part>morning|afternoon|evening)\b"),
        ("weekday", rf"\b(?:(?:on|this|this\s+coming|coming)\s+)?(?P<wd>{_WD})\b\.?{_PART}"),
        ("next_weekday", rf"\bnext\s+(?P<wd>{_WD})\b\.?{_PART}"),
        ("weekend", r"\b(?:this|next|over\s+the|on\s+the|at\s+the)\s+weekend\b"),
        ("week", r"\b(?:this|next)\s+week\b"),
        ("month", r"\b(?:this|next)\s+month\b"),
        ("year", r"\bnext\s+year\b"),
        ("in_n", rf"\bin\s+(?P<n>{_NUM})\s+(?P<unit>day|week|month)s?\b"),
        ("yesterday", rf"\byesterday\b{_PART}|\blast\s+(?P<night>night)\b"),
        ("last", rf"\blast\s+(?P<what>week|weekend|month|year|{_WDFULL})\b"),
        ("ago", rf"\b(?P<n>{_NUM})\s+(?P<unit>day|week|month|year)s?\s+ago\b"),
    ]
]
#: Kinds that name a whole week, month or year rather than a day.
COARSE = frozenset({"week", "month", "year"})
PAST_KINDS = frozenset({"yesterday", "last", "ago"})


@dataclass(frozen=True, slots=True)
class When:
    """A date phrase found in a text: where it is and what it means."""

    start: int
    end: int
    #: The absolute rendering, ready to end a sentence: "on Tuesday 2026-12-01".
    phrase: str
    #: The first day it refers to.
    day: date
    #: Whether it is today or later.
    future: bool


def on_day(day: date, part: str | None = None) -> str:
    text = f"on {WEEKDAYS[day.weekday()].capitalize()} {day.isoformat()}"
    return f"{text} ({part.lower()})" if part else text


def _add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekday_index(word: str) -> int:
    """0 for "monday", "Mon" or "mon.", ... 6 for "sun"."""
    return [w[:3] for w in WEEKDAYS].index(word.lower()[:3])


def _next_dom(today: date, dom: int) -> date | None:
    """The next day ``dom`` of a month from today on (None for day 32+)."""
    if not 1 <= dom <= 31:
        return None
    first = today.replace(day=1)
    for ahead in range(13):
        month = _add_months(first, ahead)
        if dom <= calendar.monthrange(month.year, month.month)[1]:
            day = month.replace(day=dom)
            if day >= today:
                return day
    return None  # pragma: no cover - a day 1-31 comes back within a year


def _calendar_day(
    groups: dict[str, str | None], kind: str, today: date, month_first: bool
) -> date | None:
    """The day an explicit date means (None when it does not exist)."""
    if kind == "ordinal":
        dom = int(groups["d"] or 0) if groups.get("d") else ORDINALS[(groups["dw"] or "").lower()]
        return _next_dom(today, dom)
    year_text = groups.get("y") or groups.get("y2")
    if kind == "numeric":
        a, b = int(groups.get("a") or groups["a2"] or 0), int(groups.get("b") or groups["b2"] or 0)
        month, dom = (a, b) if (month_first and a <= 12) or b > 12 else (b, a)
    else:
        month = int(groups["m"] or 0) if kind == "iso" else MONTHS[(groups["mon"] or "").lower()]
        dom = int(groups["d"] or 0)
    years = (
        [int(year_text) + (2000 if len(year_text) == 2 else 0)]
        if year_text
        else list(range(today.year, today.year + 9))
    )
    for year in years:
        try:
            day = date(year, month, dom)
        except ValueError:
            continue
        if year_text or day >= today:
            return day
    return None


def _resolve(
    kind: str, m: re.Match[str], today: date, month_first: bool = False
) -> tuple[str, date] | None:
    """The phrase and first day a match means, or None when it is not a real date."""
    groups = m.groupdict()
    part = groups.get("part")
    words = m.group().lower().split()
    if kind == "holiday":
        said = (groups.get("hol") or "").lower()
        month, dom = next(v for k, v in HOLIDAYS.items() if re.fullmatch(k, said))
        day = date(today.year, month, dom)
        day = day if day >= today else date(today.year + 1, month, dom)
        return on_day(day), day
    if kind in ("iso", "month_day", "day_month", "numeric", "ordinal"):
        found = _calendar_day(groups, kind, today, month_first)
        return None if found is None else (on_day(found), found)
    if kind == "after_tomorrow":
        day = today + timedelta(days=2)
        return on_day(day), day
    if kind == "tomorrow":
        day = today + timedelta(days=1)
        return on_day(day, part), day
    if kind == "tonight":
        return on_day(today, "night"), today
    if kind == "today":
        return on_day(today, part), today
    if kind in ("weekday", "next_weekday"):
        target = weekday_index(groups["wd"] or "")
        if kind == "weekday":
            day = today + timedelta(days=(target - today.weekday() - 1) % 7 + 1)
        else:
            day = _monday(today) + timedelta(days=7 + target)
        return on_day(day, part), day
    if kind == "weekend":
        saturday = _monday(today) + timedelta(days=5)
        if words[0] == "next":
            saturday += timedelta(days=7)
        elif today.weekday() == 6:  # on a Sunday, "this weekend" is today
            return on_day(today), today
        return f"on the weekend of Saturday {saturday.isoformat()}", saturday
    if kind == "week":
        monday = _monday(today) + timedelta(days=7 if words[0] == "next" else 0)
        return f"in the week of Monday {monday.isoformat()}", max(monday, today)
    if kind == "month":
        first = _add_months(today.replace(day=1), 1 if words[0] == "next" else 0)
        return f"in {calendar.month_name[first.month]} {first.year}", max(first, today)
    if kind == "year":
        first = date(today.year + 1, 1, 1)
        return f"in {first.year}", first
    if kind == "in_n":
        raw = (groups["n"] or "").lower()
        n = int(raw) if raw.isdigit() else NUMBERS[raw]
        unit = (groups["unit"] or "").lower()
        if unit == "month":
            day = _add_months(today, n)
            return f"in {calendar.month_name[day.month]} {day.year}", day
        day = today + timedelta(days=n * (7 if unit == "week" else 1))
        return on_day(day), day
    if kind in ("yesterday", "last", "ago"):
        return _past(kind, groups, today)
    raise AssertionError(kind)  # pragma: no cover - every kind is handled above


def _past(kind: str, groups: dict[str, str | None], today: date) -> tuple[str, date]:
    """Yesterday, last week/weekend/month/year/weekday, N units ago."""
    if kind == "yesterday":
        day = today - timedelta(days=1)
        return on_day(day, "night" if groups.get("night") else groups.get("part")), day
    if kind == "ago":
        raw = (groups["n"] or "1").lower()
        n, unit = int(raw) if raw.isdigit() else NUMBERS[raw], groups["unit"] or "day"
        if unit.lower() == "year":
            return f"in {today.year - n}", date(today.year - n, 1, 1)
        if unit.lower() == "month":
            day = _add_months(today, -n)
            return f"in {calendar.month_name[day.month]} {day.year}", day
        day = today - timedelta(days=n * (7 if unit.lower() == "week" else 1))
        return on_day(day), day
    what = (groups["what"] or "").lower()
    if what == "year":
        return f"in {today.year - 1}", date(today.year - 1, 1, 1)
    if what == "month":
        first = _add_months(today.replace(day=1), -1)
        return f"in {calendar.month_name[first.month]} {first.year}", first
    if what == "week":
        monday = _monday(today) - timedelta(days=7)
        return f"in the week of Monday {monday.isoformat()}", monday
    if what == "weekend":
        saturday = _monday(today) - timedelta(days=2)
        return f"on the weekend of Saturday {saturday.isoformat()}", saturday
    day = today - timedelta(days=(today.weekday() - weekday_index(what) - 1) % 7 + 1)
    return on_day(day), day


def past_tense(text: str) -> bool:
    from companion.memory.grammar import PAST_VERBS

    words = re.findall(r"[a-z']+", text.lower())
    return any(w in PAST_VERBS or (w.endswith("ed") and len(w) > 4) for w in words)


@dataclass(frozen=True, slots=True)
class DayPhrase:
    """A date phrase: where it is, its kind (a key of the patterns), its day
    (None when the date does not exist: "31 February") and the part of the day
    it names ("tomorrow evening")."""

    start: int
    end: int
    kind: str
    day: date | None
    phrase: str
    part: str | None


def day_phrases(
    text: str, today: date, *, month_first: bool = False, tense: bool = True
) -> list[DayPhrase]:
    """Every date phrase in ``text``, in order, overlaps resolved (earliest, then
    longest wins); with ``tense``, a weekday in a past-tense text is the last one."""
    found: list[DayPhrase] = []
    past = None
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            resolved = _resolve(kind, m, today, month_first)
            part = "night" if kind == "tonight" else m.groupdict().get("part")
            if resolved is not None and kind in ("weekday", "holiday") and tense:
                if past is None:
                    past = past_tense(text)
                if past and resolved[1] > today:  # the last one: "I went home for Christmas"
                    ahead = resolved[1]
                    before = (ahead - timedelta(days=7) if kind == "weekday"
                              else _last_year(ahead))
                    resolved = on_day(before, part), before
            phrase, day = resolved if resolved is not None else ("", None)
            found.append(DayPhrase(m.start(), m.end(), kind, day, phrase, part))
    found.sort(key=lambda d: (d.start, -(d.end - d.start)))
    kept: list[DayPhrase] = []
    for phrase_ in found:
        if not kept or phrase_.start >= kept[-1].end:
            kept.append(phrase_)
    return kept


def _last_year(day: date) -> date:
    return day.replace(year=day.year - 1)


def find_when(text: str, today: date) -> When | None:
    """The first date phrase in ``text`` (earliest, then longest), resolved."""
    for found in day_phrases(text, today):
        if found.day is not None:
            return When(found.start, found.end, found.phrase, found.day, found.day >= today)
    return None
