"""Recurrence: RFC 5545 rules, checked, expanded in the item's own zone.

A rule is the RRULE value without ``DTSTART`` ("FREQ=WEEKLY;BYDAY=MO"); the
item's ``when`` is its start. Expansion runs on wall time in the start's zone,
so "every Monday at 9" stays at 9:00 across a daylight-saving change: the
rule is expanded on naive local times with :mod:`dateutil.rrule` and each
occurrence is then placed in the zone (a wall time skipped by the change moves
on by the gap).

Rules come from the user's words and from ICS files, which may be hostile:
:func:`check_rule` accepts only the parts the agenda uses (FREQ, INTERVAL,
COUNT, UNTIL, BYDAY, BYMONTHDAY, BYMONTH, WKST), refuses FREQ=SECONDLY and
MINUTELY, bounds INTERVAL (1-1000) and COUNT (1-10000), and refuses a day of
the month that no chosen month has (a rule that would search for it for
thousands of years), each with a one-line :class:`InputError`.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, tzinfo

from dateutil.rrule import rrule, rrulestr

from companion.errors import InputError

_PARTS = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "WKST")
_FREQS = ("HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_VALUE = {
    "FREQ": re.compile(r"[A-Z]+"),
    "INTERVAL": re.compile(r"\d{1,6}"),
    "COUNT": re.compile(r"\d{1,6}"),
    "UNTIL": re.compile(r"\d{8}(?:T\d{6}Z?)?"),
    "BYDAY": re.compile(r"(?:[+-]?\d{1,2})?(?:MO|TU|WE|TH|FR|SA|SU)"
                        r"(?:,(?:[+-]?\d{1,2})?(?:MO|TU|WE|TH|FR|SA|SU)){0,6}"),
    "BYMONTHDAY": re.compile(r"[+-]?\d{1,2}(?:,[+-]?\d{1,2}){0,30}"),
    "BYMONTH": re.compile(r"\d{1,2}(?:,\d{1,2}){0,11}"),
    "WKST": re.compile(r"MO|TU|WE|TH|FR|SA|SU"),
}
MAX_INTERVAL = 1000
MAX_COUNT = 10_000
#: The most occurrences :func:`occurrences` returns unless told otherwise.
DEFAULT_LIMIT = 1000


def check_rule(rule: str) -> dict[str, str]:
    """The rule's parts, or a one-line :class:`InputError` saying what is wrong."""
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if not text or len(text) > 300:
        raise InputError("recurrence rule is empty or too long")
    parts: dict[str, str] = {}
    for piece in text.upper().split(";"):
        key, sep, value = piece.partition("=")
        if not sep or key not in _VALUE:
            raise InputError(f"recurrence rule part {key[:20]!r} is not supported")
        if key in parts:
            raise InputError(f"recurrence rule repeats {key}")
        if not _VALUE[key].fullmatch(value):
            raise InputError(f"recurrence rule has a bad {key} value {value[:20]!r}")
        parts[key] = value
    freq = parts.get("FREQ")
    if freq not in _FREQS:
        raise InputError(f"recurrence every {(freq or 'nothing').lower()[:20]} is not supported"
                         " (daily, weekly, monthly, yearly or hourly)")
    if not 1 <= int(parts.get("INTERVAL", "1")) <= MAX_INTERVAL:
        raise InputError(f"recurrence INTERVAL must be 1 to {MAX_INTERVAL}")
    if "COUNT" in parts and not 1 <= int(parts["COUNT"]) <= MAX_COUNT:
        raise InputError(f"recurrence COUNT must be 1 to {MAX_COUNT}")
    if "COUNT" in parts and "UNTIL" in parts:
        raise InputError("recurrence rule has both COUNT and UNTIL")
    months = [int(m) for m in parts.get("BYMONTH", "").split(",") if m] or list(range(1, 13))
    if any(not 1 <= m <= 12 for m in months):
        raise InputError("recurrence BYMONTH must be 1 to 12")
    longest = max(29 if m == 2 else calendar.monthrange(2001, m)[1] for m in months)
    days = [int(d) for d in parts.get("BYMONTHDAY", "").split(",") if d]
    if any(d == 0 or abs(d) > 31 for d in days):
        raise InputError("recurrence BYMONTHDAY must be 1 to 31 or -1 to -31")
    if days and all(abs(d) > longest for d in days):
        raise InputError("recurrence names a day of the month that never comes")
    return parts


def _rule(start: datetime, rule: str) -> rrule:
    parts = check_rule(rule)
    until = parts.pop("UNTIL", None)
    text = ";".join(f"{k}={v}" for k, v in parts.items())
    naive = start.replace(tzinfo=None)
    try:
        expanded = rrulestr(text, dtstart=naive)
        assert isinstance(expanded, rrule)
        if until is not None:
            expanded = expanded.replace(until=_until(until, start.tzinfo))
    except ValueError as exc:
        raise InputError(f"recurrence rule cannot be read: {str(exc)[:80]}") from exc
    return expanded


def _until(value: str, zone: tzinfo | None) -> datetime:
    """UNTIL as a naive wall time in the start's zone (it may be given in UTC)."""
    try:
        if "T" not in value:
            return datetime.strptime(value, "%Y%m%d").replace(hour=23, minute=59, second=59)
        at = datetime.strptime(value.rstrip("Z"), "%Y%m%dT%H%M%S")
    except ValueError as exc:
        raise InputError(f"recurrence UNTIL {value!r} is not a date") from exc
    if value.endswith("Z"):
        return at.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
    return at


def _place(naive: datetime, zone: tzinfo | None) -> datetime:
    return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


def _local(moment: datetime, zone: tzinfo | None) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def next_occurrence(start: datetime, rule: str, after: datetime) -> datetime | None:
    """The first occurrence of ``rule`` from ``start`` strictly after ``after``
    (aware, in the start's zone), or None when the rule has ended."""
    zone = start.tzinfo
    expanded = _rule(start, rule)
    moment = _local(after, zone)
    while True:
        found = expanded.after(moment, inc=False)
        if found is None:
            return None
        placed = _place(found, zone)
        if placed > after:  # a wall time repeated by a DST change is still past
            return placed
        moment = found


def occurrences(start: datetime, rule: str, window_start: datetime, window_end: datetime,
                limit: int = DEFAULT_LIMIT) -> list[datetime]:
    """The occurrences in [window_start, window_end), at most ``limit``."""
    zone = start.tzinfo
    expanded = _rule(start, rule)
    found: list[datetime] = []
    for naive in expanded.xafter(_local(window_start, zone), count=limit + 1, inc=True):
        placed = _place(naive, zone)
        if placed >= window_end or len(found) >= limit:
            break
        if placed >= window_start:
            found.append(placed)
    return found


# -- reading a recurrence in words ---------------------------------------------------------

_DAY_CODES = {"mo": "MO", "tu": "TU", "we": "WE", "th": "TH", "fr": "FR", "sa": "SA", "su": "SU"}
_WDAY = (r"(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?s?\b\.?")
_WLIST = rf"{_WDAY}(?:\s*(?:,|and|&|/|\+|or)\s*(?:(?:and|&)\s+)?{_WDAY}){{0,6}}"
_COUNT_WORDS = {"other": 2, "second": 2, "2nd": 2, "two": 2, "three": 3, "four": 4, "five": 5,
                "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "couple of": 2}
_CN = "|".join(sorted(_COUNT_WORDS, key=len, reverse=True)) + r"|\d{1,3}"
_DOM = (r"(?P<dom>\d{1,2})(?:st|nd|rd|th)?|(?P<domw>first|last|second|third|fifteenth|"
        r"fourteenth|tenth|fifth|twentieth)")
_EVERY = r"(?:every|each|evry|once\s+(?:a|every|each|per))"
_FREQ_OF = {"day": "DAILY", "morning": "DAILY", "evening": "DAILY", "night": "DAILY",
            "afternoon": "DAILY", "week": "WEEKLY", "month": "MONTHLY", "year": "YEARLY",
            "hour": "HOURLY"}
_RULES: list[tuple[str, re.Pattern[str]]] = [
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in [
        ("monthday", rf"\b(?:on\s+)?the\s+(?:{_DOM})(?:\s+day)?\s+of\s+(?:every|each|the)\s+"
                     r"month\b"),
        ("monthday", rf"\b(?:{_EVERY}\s+month|monthly)\s+on\s+the\s+(?:{_DOM})\b"),
        ("weekdays", rf"\b(?:{_EVERY}\s+(?:week|work)\s*days?|on\s+weekdays|weekdays)\b"),
        ("weekends", rf"\b(?:{_EVERY}\s+weekend|on\s+weekends|weekends)\b"),
        ("days", rf"\b(?:{_EVERY}\s+(?:(?P<n>{_CN})\s+)?(?P<w>{_WLIST})|on\s+(?P<w2>{_WLIST}))"),
        ("unit", rf"\b{_EVERY}\s+(?:(?P<n>{_CN})\s+)?(?P<unit>day|morning|evening|night|afternoon"
                 rf"|week|month|year|hour)s?\b(?:\s+on\s+(?P<w>{_WLIST}))?"),
        ("word", rf"\b(?P<word>daily|everyday|nightly|weekly|monthly|yearly|annually|hourly)\b"
                 rf"(?:\s+on\s+(?P<w>{_WLIST}))?"),
    ]
]
_WORD_FREQ = {"daily": "DAILY", "everyday": "DAILY", "nightly": "DAILY", "weekly": "WEEKLY",
              "monthly": "MONTHLY", "yearly": "YEARLY", "annually": "YEARLY",
              "hourly": "HOURLY"}
_DOM_WORDS = {"first": 1, "second": 2, "third": 3, "fifth": 5, "tenth": 10, "fourteenth": 14,
              "fifteenth": 15, "twentieth": 20, "last": -1}


def _days(text: str, *, plural_only: bool) -> str | None:
    words = re.findall(_WDAY, text, re.IGNORECASE)
    if plural_only and not all(w.lower().rstrip(".").endswith("s") for w in words):
        return None
    codes = [_DAY_CODES[w[:2].lower()] for w in words]
    return ",".join(dict.fromkeys(codes)) or None


def find_rule(text: str) -> tuple[int, int, str] | None:
    """The first recurrence said in ``text`` as (start, end, RRULE value):
    "every Monday" -> ``FREQ=WEEKLY;BYDAY=MO``, "every other day" ->
    ``FREQ=DAILY;INTERVAL=2``, "on the 1st of every month" ->
    ``FREQ=MONTHLY;BYMONTHDAY=1``, "every weekday", "on Mondays and
    Thursdays", "every morning" (daily), "daily", "weekly", "each Friday"."""
    found: list[tuple[int, int, str]] = []
    for kind, pattern in _RULES:
        for m in pattern.finditer(text):
            rule = _rule_of(kind, m)
            if rule is not None:
                found.append((m.start(), m.end(), rule))
    if not found:
        return None
    return min(found, key=lambda f: (f[0], -(f[1] - f[0])))


def _rule_of(kind: str, m: re.Match[str]) -> str | None:
    g = m.groupdict()
    raw_n = (g.get("n") or "").lower()
    n = int(raw_n) if raw_n.isdigit() else _COUNT_WORDS.get(" ".join(raw_n.split()), 1)
    interval = f";INTERVAL={n}" if n > 1 else ""
    if kind == "monthday":
        dom = int(g["dom"]) if g.get("dom") else _DOM_WORDS[(g["domw"] or "").lower()]
        return f"FREQ=MONTHLY;BYMONTHDAY={dom}" if dom == -1 or 1 <= dom <= 31 else None
    if kind == "weekdays":
        return "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
    if kind == "weekends":
        return "FREQ=WEEKLY;BYDAY=SA,SU"
    if kind == "days":
        days = _days(g["w"], plural_only=False) if g.get("w") else _days(
            g["w2"] or "", plural_only=True)
        return None if days is None else f"FREQ=WEEKLY{interval};BYDAY={days}"
    if kind == "unit":
        freq = _FREQ_OF[g["unit"].lower()]
        days = _days(g["w"], plural_only=False) if g.get("w") else None
        return f"FREQ={freq}{interval}" + (f";BYDAY={days}" if days and freq == "WEEKLY" else "")
    freq = _WORD_FREQ[g["word"].lower()]
    days = _days(g["w"], plural_only=False) if g.get("w") and freq == "WEEKLY" else None
    return f"FREQ={freq}" + (f";BYDAY={days}" if days else "")
