"""Times in words, for prompts and for people."""

from __future__ import annotations

from datetime import datetime, tzinfo


def span(seconds: float) -> str:
    """A duration in rough words: ``3 hours``, ``2 days``, ``a few minutes``."""
    s = max(0.0, seconds)
    if s < 90:
        return "a moment"
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400),
                       ("day", 86400), ("hour", 3600), ("minute", 60)):
        if s >= size:
            n = round(s / size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "a moment"  # pragma: no cover - unreachable


def ago(then: datetime, now: datetime) -> str:
    """``3 hours ago``, ``just now``."""
    words = span((now - then).total_seconds())
    return "just now" if words == "a moment" else f"{words} ago"


def local_clock(now: datetime, *, step_minutes: int = 1, zone: tzinfo | None = None) -> str:
    """The local date and time for the prompt: ``Tuesday 24 November 2026, 18:55``
    (minutes rounded down to ``step_minutes``), in ``zone`` (default: the system's)."""
    local = now.astimezone(zone)
    local = local.replace(minute=local.minute - local.minute % step_minutes)
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M}"
