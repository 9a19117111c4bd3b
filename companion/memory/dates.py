"""Finding a date in a message and resolving it against the current time.

``find_when("I have an interview on Tuesday", today)`` finds the phrase "on
Tuesday" and renders it absolutely, so a fact stays true when read next month:
``on Tuesday 2026-12-01``. Covered: today, tonight, this morning, tomorrow (and
the day after), weekdays (``on``/``this``/``next``), this/next week, weekend,
month and year, ``in N days/weeks/months``, ``March 3rd``, ``3 March``,
``the 3rd of March``, with or without a year, and ISO dates; in the past:
yesterday, last night, ``last`` week/weekend/month/year/weekday and ``N
days/weeks/months/years ago`` ("I got divorced last year" -> ``in 2025``).

Conventions: a bare or ``this`` weekday is its next occurrence after today (its
last one before today when the sentence is in the past tense: "I went to the
beach on Sunday"); ``next
Tuesday`` is the Tuesday of next week (Monday to Sunday). A month and day
without a year is the next such day from today on.
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
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
         ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
         ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
         ("december", "dec")],
        start=1,
    )
    for name in names
}
NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "a couple of": 2, "a couple": 2, "couple of": 2,
}

_WD = "|".join(WEEKDAYS)
_MON = "|".join(sorted(MONTHS, key=len, reverse=True))
_NUM = "|".join(sorted(NUMBERS, key=len, reverse=True)) + r"|\d{1,3}"
_PART = r"(?:\s+(?P<part>morning|afternoon|evening|night))?"
_ORD = r"(?:st|nd|rd|th)?"

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in [
        ("iso", r"\b(?:on\s+)?(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})\b"),
        ("month_day", rf"\b(?:on\s+)?(?:(?:{_WD}),?\s+)?(?:the\s+)?(?P<mon>{_MON})\.?\s+"
                      rf"(?P<d>\d{{1,2}}){_ORD}\b(?:,?\s+(?P<y>\d{{4}})\b)?"),
        ("day_month", rf"\b(?:on\s+)?(?:(?:{_WD}),?\s+)?(?:the\s+)?(?P<d>\d{{1,2}}){_ORD}\s+"
                      rf"(?:of\s+)?(?P<mon>{_MON})\b\.?(?:,?\s+(?P<y>\d{{4}})\b)?"),
        ("after_tomorrow", r"\b(?:on\s+)?the\s+day\s+after\s+tomorrow\b"),
        ("tomorrow", rf"\btomorrow\b{_PART}"),
        ("tonight", r"\b(?:later\s+)?tonight\b"),
        ("today", r"\b(?:later\s+)?today\b|\bthis\s+(?P<part>morning|afternoon|evening)\b"),
        ("weekday", rf"\b(?:(?:on|this|this\s+coming|coming)\s+)?(?P<wd>{_WD})\b{_PART}"),
        ("next_weekday", rf"\bnext\s+(?P<wd>{_WD})\b{_PART}"),
        ("weekend", r"\b(?:this|next|over\s+the|on\s+the|at\s+the)\s+weekend\b"),
        ("week", r"\b(?:this|next)\s+week\b"),
        ("month", r"\b(?:this|next)\s+month\b"),
        ("year", r"\bnext\s+year\b"),
        ("in_n", rf"\bin\s+(?P<n>{_NUM})\s+(?P<unit>day|week|month)s?\b"),
        ("yesterday", rf"\byesterday\b{_PART}|\blast\s+(?P<night>night)\b"),
        ("last", rf"\blast\s+(?P<what>week|weekend|month|year|{_WD})\b"),
        ("ago", rf"\b(?P<n>{_NUM})\s+(?P<unit>day|week|month|year)s?\s+ago\b"),
    ]
]


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


def _resolve(kind: str, m: re.Match[str], today: date) -> tuple[str, date] | None:
    """The phrase and first day a match means, or None when it is not a real date."""
    groups = m.groupdict()
    part = groups.get("part")
    words = m.group().lower().split()
    if kind in ("iso", "month_day", "day_month"):
        month = int(groups["m"]) if kind == "iso" else MONTHS[groups["mon"].lower()]
        try:
            if groups.get("y"):
                day = date(int(groups["y"]), month, int(groups["d"]))
            else:
                day = date(today.year, month, int(groups["d"]))
                if day < today:
                    day = date(today.year + 1, month, int(groups["d"]))
        except ValueError:
            return None
        return on_day(day), day
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
        target = WEEKDAYS.index(groups["wd"].lower())
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
        raw = groups["n"].lower()
        n = int(raw) if raw.isdigit() else NUMBERS[raw]
        unit = groups["unit"].lower()
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
    day = today - timedelta(days=(today.weekday() - WEEKDAYS.index(what) - 1) % 7 + 1)
    return on_day(day), day


def _past_tense(text: str) -> bool:
    from companion.memory.grammar import PAST_VERBS

    words = re.findall(r"[a-z']+", text.lower())
    return any(w in PAST_VERBS or (w.endswith("ed") and len(w) > 4) for w in words)


def find_when(text: str, today: date) -> When | None:
    """The first date phrase in ``text`` (earliest, then longest), resolved."""
    found: list[When] = []
    past = _past_tense(text)
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            resolved = _resolve(kind, m, today)
            if resolved is not None and past and kind == "weekday":
                phrase, day = resolved
                before = day - timedelta(days=7)
                resolved = on_day(before, m.groupdict().get("part")), before
            if resolved is not None:
                phrase, day = resolved
                found.append(When(m.start(), m.end(), phrase, day, day >= today))
    if not found:
        return None
    return min(found, key=lambda w: (w.start, -(w.end - w.start)))
