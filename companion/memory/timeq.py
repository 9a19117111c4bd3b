"""Time in a question about the past: "what did I do last week?", "when did I ...".

:func:`time_range` finds the period a query is about (yesterday, last night,
last/this week, last/this month, last year, last Tuesday, N days/weeks/months
ago, in March, on March 3rd), resolved against ``now`` in the user's time zone,
as a half-open UTC range. Recall favours memories from inside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from companion.memory.dates import MONTHS, NUMBERS, WEEKDAYS

_WD = "|".join(WEEKDAYS)
_MON = "|".join(sorted(MONTHS, key=len, reverse=True))
_NUM = "|".join(sorted(NUMBERS, key=len, reverse=True)) + r"|\d{1,3}"

_PATTERNS = [
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in [
        ("yesterday", r"\byesterday\b|\blast\s+night\b"),
        ("today", r"\btoday\b|\bthis\s+morning\b|\bearlier\s+today\b"),
        ("weekday", rf"\b(?:last|on|this\s+past)\s+(?P<wd>{_WD})\b"),
        ("week", r"\b(?P<which>last|this|past)\s+week\b"),
        ("weekend", r"\b(?:last|this\s+past)\s+weekend\b"),
        ("month", r"\b(?P<which>last|this|past)\s+month\b"),
        ("year", r"\b(?P<which>last|this|past)\s+year\b"),
        ("ago", rf"\b(?P<n>{_NUM})\s+(?P<unit>day|week|month|year)s?\s+ago\b"),
        ("month_day", rf"\bon\s+(?P<mon>{_MON})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b"),
        ("in_month", rf"\b(?:in|during|back\s+in)\s+(?P<mon>{_MON})\b(?:\s+(?P<y>\d{{4}}))?"),
    ]
]


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A half-open period [start, end) in UTC that a query asks about."""

    start: datetime
    end: datetime

    def __contains__(self, when: datetime) -> bool:
        return self.start <= when < self.end


def _days(first: date, last_exclusive: date, tz: object) -> TimeRange:
    start = datetime.combine(first, time(), tzinfo=tz)  # type: ignore[arg-type]
    end = datetime.combine(last_exclusive, time(), tzinfo=tz)  # type: ignore[arg-type]
    return TimeRange(start.astimezone(UTC), end.astimezone(UTC))


def _month(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return first, nxt


def time_range(query: str, now: datetime) -> TimeRange | None:
    """The period ``query`` refers to, or None; ``now`` is aware (the user's local zone)."""
    tz = now.tzinfo
    today = now.date()
    for kind, pattern in _PATTERNS:
        m = pattern.search(query)
        if m is None:
            continue
        g = m.groupdict()
        if kind == "yesterday":
            return _days(today - timedelta(days=1), today + timedelta(days=1), tz)
        if kind == "today":
            return _days(today, today + timedelta(days=1), tz)
        if kind == "weekday":
            back = (today.weekday() - WEEKDAYS.index(g["wd"].lower()) - 1) % 7 + 1
            day = today - timedelta(days=back)
            return _days(day, day + timedelta(days=1), tz)
        monday = today - timedelta(days=today.weekday())
        if kind == "week":
            if g["which"].lower() == "this":
                return _days(monday, today + timedelta(days=1), tz)
            if g["which"].lower() == "past":
                return _days(today - timedelta(days=7), today + timedelta(days=1), tz)
            return _days(monday - timedelta(days=7), monday, tz)
        if kind == "weekend":
            saturday = monday - timedelta(days=2)
            return _days(saturday, monday, tz)
        if kind == "month":
            if g["which"].lower() == "last":
                prev = today.replace(day=1) - timedelta(days=1)
                return _days(*_month(prev.year, prev.month), tz)
            if g["which"].lower() == "past":
                return _days(today - timedelta(days=31), today + timedelta(days=1), tz)
            return _days(today.replace(day=1), today + timedelta(days=1), tz)
        if kind == "year":
            if g["which"].lower() == "last":
                return _days(date(today.year - 1, 1, 1), date(today.year, 1, 1), tz)
            return _days(date(today.year, 1, 1), today + timedelta(days=1), tz)
        if kind == "ago":
            raw = g["n"].lower()
            n = int(raw) if raw.isdigit() else NUMBERS[raw]
            unit = {"day": 1, "week": 7, "month": 30, "year": 365}[g["unit"].lower()]
            center = today - timedelta(days=n * unit)
            slack = max(1, n * unit // 4)
            return _days(center - timedelta(days=slack), center + timedelta(days=slack + 1), tz)
        month = MONTHS[g["mon"].lower()]
        if kind == "month_day":
            past = (month, int(g["d"])) <= (today.month, today.day)
            year = today.year if past else today.year - 1
            try:
                day = date(year, month, int(g["d"]))
            except ValueError:
                continue
            return _days(day, day + timedelta(days=1), tz)
        year = int(g["y"]) if g.get("y") else today.year - (month > today.month)
        return _days(*_month(year, month), tz)
    return None
