"""Times of day, and moments: a date phrase and a time read together.

The agenda's half of the one date parser (:mod:`companion.memory.dates` finds
the days). :func:`find_moments` finds every date and time phrase in a text
and resolves each to an aware local datetime in the zone of ``now``:

- times: ``6pm``, ``6:30 pm``, ``18:30``, ``at 6``, ``at six``, ``6 o'clock``,
  ``half past 6``, ``quarter to 7``; ``noon``/``midday``/``lunchtime`` 12:00,
  ``midnight`` 00:00 of the next day, ``end of the day`` 17:00;
- parts of the day without a time: ``morning`` 09:00, ``afternoon`` 15:00,
  ``evening`` (so ``this evening``) 19:00, ``tonight`` (any ``night``) 20:00;
- durations from now: ``in 20 minutes``, ``in 2 hours``, ``in half an hour``,
  ``in an hour and a half``, ``an hour from now`` (real elapsed time, so
  across a daylight-saving change too).

A bare hour 1-7 without am/pm is pm unless the morning is said ("at 7 in the
morning"), 8-11 am when a day is said, 12 noon; ``07:30`` and ``18:30`` are
24-hour. A time said without a date is the next such time (today if still
ahead, else tomorrow); an hour 8-11 said alone is the next of its morning and
evening readings ("at 9" said at 14:30 is 21:00); a bare hour 1-7 whose evening
reading has passed ("at 7" said at 20:00) is ``ambiguous`` (tomorrow morning or
evening?). A date and a time next to each other ("on Friday at 6", "6pm
friday") are one moment; far apart in one message ("remind me tomorrow to call
Maya at 6") they are read together when they are the only two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from companion.memory.dates import COARSE, NUMBERS, PAST_KINDS, DayPhrase, day_phrases

_HOURS = {w: n for w, n in NUMBERS.items() if w.isalpha() and n >= 1 and " " not in w
          and w not in ("a", "an")}
_HW = "|".join(sorted(_HOURS, key=len, reverse=True))
_H = rf"(?P<h>\d{{1,2}}|{_HW})"
_AP = r"(?P<ap>[ap])\.?\s?m\b\.?"
_PRE = r"(?:\b(?:at|by|around|@|for|from|until|till|til|before)\s*)?"
_NOT_A_TIME = (r"(?!\s*(?:%|percent|years?|yrs?|days?|minutes?|mins?|hours?|hrs?|weeks?|"
               r"months?|kids?|people|persons?|times?|of\b|points?|[/.,:-]\d|stars?|"
               r"miles?|km|k\b|dollars?|bucks|euros?|pounds?|am\b|pm\b|a\.m|p\.m))")
_MINUTE_WORDS = {"fifteen": 15, "thirty": 30, "forty five": 45, "forty-five": 45,
                 "o'clock": 0, "oclock": 0}
_DURATION_WORDS = NUMBERS | {"fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40,
                             "forty five": 45, "forty-five": 45, "ninety": 90, "few": 3,
                             "a few": 3, "half an": 0.5, "half a": 0.5}
_DN = "|".join(sorted(_DURATION_WORDS, key=len, reverse=True)) + r"|\d{1,4}(?:\.\d)?"
_UNIT = r"(?P<unit>minutes?|mins?|m|hours?|hrs?|h)\b"

_CLOCKS: list[tuple[str, re.Pattern[str]]] = [
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in [
        ("hm", rf"{_PRE}\b(?P<h>\d{{1,2}})[:h](?P<min>[0-5]\d)(?!\d)\s*(?:{_AP})?"),
        ("h_ap", rf"{_PRE}\b{_H}\s*{_AP}"),
        ("at_h", rf"\b(?:at|by|around|@|until|till|til|before)\s*{_H}\b"
                 rf"(?:\s+(?P<mw>forty[- ]five|fifteen|thirty|o'?clock)\b)?{_NOT_A_TIME}"),
        ("oclock", rf"\b{_H}\s*o'?clock\b"),
        ("half", rf"{_PRE}\b(?P<q>half|quarter)\s+(?P<dir>past|to|after)\s+{_H}\b"
                 rf"(?:\s*{_AP})?"),
        ("named", r"(?:\b(?:at|by|around|before|until|till)\s+(?:the\s+)?)?\b(?P<name>noon|midday|"
                  r"midnight|lunch\s?time|end\s+of\s+(?:the\s+)?(?:work\s*)?day|eod|"
                  r"close\s+of\s+business)\b"),
        ("part", r"\b(?:in\s+the\s+)?(?P<part>morning|afternoon|evening)\b|"
                 r"\bat\s+(?P<night>night)\b"),
        ("in", rf"\bin\s+(?:about\s+|like\s+)?(?P<n>{_DN})\s*{_UNIT}"
               r"(?P<andhalf>\s+and\s+a\s+half)?"),
        ("from_now", rf"\b(?P<n>{_DN})\s*{_UNIT}\s+from\s+now\b"),
    ]
]
_NAMED = {"noon": time(12), "midday": time(12), "lunch": time(12), "end": time(17),
          "eod": time(17), "close": time(17), "midnight": time(0)}
#: A part of the day said without a time: when it is.
PART_TIMES = {"morning": time(9), "afternoon": time(15), "evening": time(19),
              "night": time(20)}
_JOIN = re.compile(r"[\s,]*(?:(?:at|on|by|around|@|in\s+the|the|for|-)\b\s*)?[\s,]*",
                   re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Moment:
    """A date or time phrase in a text, resolved.

    ``when`` is aware, in the zone of the ``now`` given (the day's start when
    only a day was said), or None when the date does not exist ("31
    February"). ``dated``: a day was said; ``timed``: a time or a duration was;
    ``coarse``: the day is the start of a week, month or year ("next month");
    ``past``: the phrase names the past ("yesterday", "last week");
    ``ambiguous``: see the module's docstring.
    """

    start: int
    end: int
    text: str
    when: datetime | None
    dated: bool
    timed: bool
    coarse: bool = False
    past: bool = False
    ambiguous: bool = False
    #: The time of day said, read as for a given day (a bare 1-7 is pm, 8-11
    #: am), or the part of the day's time; None for a day alone or a duration.
    at: time | None = None


@dataclass(slots=True)
class _Group:
    start: int
    end: int
    day: DayPhrase | None = None
    clock: re.Match[str] | None = None
    clock_kind: str = ""
    part: str | None = None
    duration: timedelta | None = None


def _tokens(text: str, today: date, order: bool) -> list[tuple[int, int, str, object]]:
    found: list[tuple[int, int, str, object]] = [
        (d.start, d.end, "day", d)
        for d in day_phrases(text, today, month_first=order, tense=False)]
    for kind, pattern in _CLOCKS:
        found.extend((m.start(), m.end(), kind, m) for m in pattern.finditer(text))
    found.sort(key=lambda t: (t[0], -(t[1] - t[0])))
    kept: list[tuple[int, int, str, object]] = []
    for token in found:
        if not kept or token[0] >= kept[-1][1]:
            kept.append(token)
    return kept


def _duration(m: re.Match[str]) -> timedelta:
    raw = " ".join(m["n"].lower().split())
    n = float(_DURATION_WORDS[raw]) if raw in _DURATION_WORDS else float(raw)
    if m.groupdict().get("andhalf"):
        n += 0.5
    minutes = n if m["unit"].lower().startswith("m") else n * 60
    return timedelta(minutes=minutes)


def _groups(text: str, today: date, order: bool) -> list[_Group]:
    groups: list[_Group] = []
    for start, end, kind, token in _tokens(text, today, order):
        last = groups[-1] if groups else None
        joins = (last is not None and last.duration is None and kind not in ("in", "from_now")
                 and _JOIN.fullmatch(text, last.end, start) is not None)
        if kind == "day":
            assert isinstance(token, DayPhrase)
            if joins and last is not None and last.day is None:
                last.day, last.end = token, end
                last.part = last.part or token.part
            else:
                groups.append(_Group(start, end, day=token, part=token.part))
            continue
        assert isinstance(token, re.Match)
        group = last if joins and last is not None else None
        if kind in ("in", "from_now"):
            groups.append(_Group(start, end, duration=_duration(token)))
        elif kind == "part":
            part = (token["part"] or token["night"] or "").lower()
            if group is not None and group.part is None:
                group.part, group.end = part, end
            else:
                groups.append(_Group(start, end, part=part))
        elif group is not None and group.clock is None:
            group.clock, group.clock_kind, group.end = token, kind, end
        else:
            groups.append(_Group(start, end, clock=token, clock_kind=kind))
    if len(groups) == 2:
        first, second = groups
        dated, timed = (first, second) if first.day is not None else (second, first)
        if (dated.day is not None and dated.clock is None and timed.day is None
                and timed.duration is None and (timed.clock is not None or dated.part is None)):
            merged = _Group(first.start, second.end, day=dated.day, clock=timed.clock,
                            clock_kind=timed.clock_kind, part=timed.part or dated.part)
            return [merged]
    return groups


def _hour(word: str) -> int:
    return int(word) if word.isdigit() else _HOURS[word.lower()]


def _clock(group: _Group) -> tuple[int, int, bool] | time:
    """(hour, minute, meridiem known) for a said hour, or the exact time."""
    m, kind = group.clock, group.clock_kind
    assert m is not None
    if kind == "named":
        return _NAMED[m["name"].lower().split()[0].replace("lunchtime", "lunch")]
    hour = _hour(m["h"])
    minute = int(m.groupdict().get("min") or 0)
    words = (m.groupdict().get("mw") or "").lower()
    minute = _MINUTE_WORDS.get(words, minute)
    if kind == "half":
        minute = 30 if m["q"].lower() == "half" else 15
        if m["dir"].lower() == "to":
            hour, minute = (hour - 1) % 12 or 12, 45
    if hour > 23 or minute > 59:
        raise ValueError("no such time")
    ap = (m.groupdict().get("ap") or "").lower()
    if ap:
        if not 1 <= hour <= 12:
            raise ValueError("no such time")
        return time(hour % 12 + (12 if ap == "p" else 0), minute)
    if hour >= 13 or hour == 0 or (m["h"].startswith("0")):
        return time(hour, minute)
    part = group.part
    if part == "morning":
        return time(hour % 12, minute)
    if part in ("afternoon", "evening", "night"):
        return time(hour % 12 + 12, minute)
    return hour, minute, False


def _at(day: date, at: time, zone: tzinfo | None) -> datetime:
    """``day`` at wall time ``at`` in ``zone``; a time skipped by a DST change moves on."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC).astimezone(zone)


def _time_of_day(group: _Group) -> time | None:
    if group.clock is None:
        return PART_TIMES.get(group.part or "")
    said = _clock(group)
    if isinstance(said, time):
        return said
    hour, minute, _ = said
    return time(hour + 12 if hour <= 7 else hour, minute)


def _resolve(group: _Group, now: datetime) -> tuple[datetime | None, bool]:
    """The moment's datetime and whether it is ambiguous."""
    zone, today = now.tzinfo, now.date()
    if group.duration is not None:
        return (now.astimezone(UTC) + group.duration).astimezone(zone), False
    day: date | None = None
    if group.day is not None:
        if group.day.day is None:
            return None, False
        day = group.day.day
    if group.clock is None:
        at = PART_TIMES.get(group.part or "")
        if at is None:
            return (_at(day, time(0), zone) if day is not None else None), False
        if day is not None:
            return _at(day, at, zone), False
        return _next(now, at), False
    said = _clock(group)
    if isinstance(said, time):
        if day is not None:
            midnight = group.clock_kind == "named" and said == time(0)
            return _at(day + timedelta(days=1 if midnight else 0), said, zone), False
        return _next(now, said), False
    hour, minute, _ = said
    if day is not None:
        return _at(day, time(hour + 12 if hour <= 7 else hour, minute), zone), False
    if hour <= 7:
        evening = _at(today, time(hour + 12, minute), zone)
        if evening > now:
            return evening, False
        return _at(today + timedelta(days=1), time(hour, minute), zone), True
    for candidate in (time(hour, minute), time((hour + 12) % 24, minute)):
        if (at_today := _at(today, candidate, zone)) > now:
            return at_today, False
    return _at(today + timedelta(days=1), time(hour, minute), zone), False


def _next(now: datetime, at: time) -> datetime:
    today = _at(now.date(), at, now.tzinfo)
    return today if today > now else _at(now.date() + timedelta(days=1), at, now.tzinfo)


def month_first(now: datetime) -> bool:
    """Whether "12/3" is December 3rd for this user (an American time zone)."""
    return str(getattr(now.tzinfo, "key", "")).startswith("America/")


def find_moments(text: str, now: datetime) -> list[Moment]:
    """Every date and time phrase in ``text``, in order, resolved against ``now``."""
    found: list[Moment] = []
    for group in _groups(text, now.date(), month_first(now)):
        try:
            when, ambiguous = _resolve(group, now)
            at = None if group.duration is not None else _time_of_day(group)
        except ValueError:  # "25:00", "13pm"
            when, ambiguous, at = None, False, None
        kind = group.day.kind if group.day is not None else ""
        found.append(Moment(
            group.start, group.end, text[group.start:group.end], when,
            dated=group.day is not None,
            timed=group.clock is not None or group.duration is not None or group.part is not None,
            coarse=kind in COARSE or (kind == "in_n" and "month" in text[
                group.start:group.end].lower()),
            past=kind in PAST_KINDS, ambiguous=ambiguous, at=at))
    return found
