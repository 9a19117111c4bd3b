"""Dates and times in words, as she says them: "today at 6 pm", "on Friday at
9:30 am", "on Monday 21 December", "every Monday at 9 am".

The day is relative to ``now`` while it is near (today, tomorrow, a weekday
within the coming six days), else the weekday with its date (and the year
when it is not this one). The clock is 12-hour with am/pm, "noon" and
"midnight". Recurrence rules are read back from the RFC 5545 parts the agenda
writes (FREQ, INTERVAL, BYDAY, BYMONTHDAY).
"""

from __future__ import annotations

from datetime import datetime

_DAYS = {"MO": "Monday", "TU": "Tuesday", "WE": "Wednesday", "TH": "Thursday",
         "FR": "Friday", "SA": "Saturday", "SU": "Sunday"}  # fmt: skip
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR")
_UNITS = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}


def clock_words(when: datetime) -> str:
    """``6 pm``, ``6:30 am``, ``noon``, ``midnight``."""
    if when.minute == 0 and when.hour in (0, 12):
        return "midnight" if when.hour == 0 else "noon"
    hour = when.hour % 12 or 12
    minutes = f":{when.minute:02d}" if when.minute else ""
    return f"{hour}{minutes} {'am' if when.hour < 12 else 'pm'}"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def day_words(when: datetime, now: datetime) -> str:
    """``today``, ``tomorrow``, ``on Friday``, ``on Monday 21 December``."""
    days = (when.date() - now.date()).days
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days == -1:
        return "yesterday"
    if 1 < days < 7:
        return f"on {when:%A}"
    year = f" {when.year}" if when.year != now.year else ""
    return f"on {when:%A} {when.day} {when:%B}{year}"


def when_words(
    when: datetime, now: datetime, *, all_day: bool = False, rrule: str | None = None
) -> str:
    """The whole time of an agenda item in words (``now`` in the same zone)."""
    if rrule:
        return repeat_words(rrule, when, all_day=all_day)
    if all_day:
        return day_words(when, now)
    return f"{day_words(when, now)} at {clock_words(when)}"


def _parts(rrule: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for part in rrule.split(";"):
        key, _, value = part.partition("=")
        parts[key.strip().upper()] = value.strip().upper()
    return parts


def repeat_words(rrule: str, first: datetime, *, all_day: bool = False) -> str:
    """``every Monday at 9 am``, ``every day at 8 am``, ``every other week on
    Friday``, ``on the 1st of every month``."""
    parts = _parts(rrule)
    freq = parts.get("FREQ", "")
    interval = int(parts["INTERVAL"]) if parts.get("INTERVAL", "").isdigit() else 1
    days = [d[-2:] for d in parts.get("BYDAY", "").split(",") if d[-2:] in _DAYS]
    unit = _UNITS.get(freq, "time")
    every = "every" if interval == 1 else ("every other" if interval == 2 else f"every {interval}")
    plural = "" if interval <= 2 else "s"
    if freq == "WEEKLY" and days:
        if sorted(days) == sorted(_WEEKDAYS) and interval == 1:
            text = "every weekday"
        else:
            names = [_DAYS[d] for d in days]
            listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            text = f"every {listed}" if interval == 1 else f"{every} week{plural} on {listed}"
    elif freq == "DAILY" and days and sorted(days) == sorted(_WEEKDAYS):
        text = "every weekday"
    elif freq == "MONTHLY":
        day = int(parts["BYMONTHDAY"]) if parts.get("BYMONTHDAY", "").isdigit() else first.day
        text = f"on the {ordinal(day)} of {every} month{plural}"
    elif freq == "YEARLY":
        text = f"{every} year{plural} on {first.day} {first:%B}"
    else:
        text = f"{every} {unit}{plural}"
    return text if all_day else f"{text} at {clock_words(first)}"
