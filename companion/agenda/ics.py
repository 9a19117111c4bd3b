"""The agenda as iCalendar (RFC 5545): export for other calendars, import from them.

:func:`to_ics` writes one ``VEVENT`` per item (UID, DTSTART with its TZID and
the ``VTIMEZONE`` it needs, or a DATE for an all-day item, RRULE, SUMMARY,
STATUS, a ``VALARM`` for a reminder, DTSTAMP); ``X-COMPANION-KIND`` and
``X-COMPANION-STATUS`` keep what iCalendar has no word for.

:func:`from_ics` reads what Thunderbird, GNOME Calendar and Google Calendar
write: ``VEVENT`` and ``VTODO``; times with a TZID (IANA or Windows names),
in UTC, or floating (read in the calendar's ``X-WR-TIMEZONE``, else the
user's zone); all-day dates. A ``VTODO`` without a date, and the edited
copies of single occurrences (``RECURRENCE-ID``), are skipped. A file that is
too large, holds too many events, is not UTF-8 or not iCalendar, or has an
event that cannot be read (no start, a broken RRULE) is one
:class:`InputError` naming the problem, and nothing is imported.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple, cast
from zoneinfo import ZoneInfo

from companion.agenda.model import STATUSES, AgendaItem, Draft, Kind, Status
from companion.agenda.rows import MAX_WHAT, check_rule
from companion.agenda.zone import zone
from companion.errors import InputError

#: The largest calendar file read (bytes).
MAX_BYTES = 5 * 1024 * 1024
#: The most events and tasks in one file.
MAX_EVENTS = 5000
#: The most components of any kind (events, alarms, time zones...) in one file.
MAX_COMPONENTS = 4 * MAX_EVENTS + 1000
_PRODID = "-//companion//agenda//EN"
_UNTIL = re.compile(r"(?<![A-Z])UNTIL=([0-9]{8})(?:T([0-9]{6})(Z?))?", re.IGNORECASE)
_READ_ERRORS = (ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError,
                RecursionError)


class Imported(NamedTuple):
    """One event or task read from a file: the item to add, its UID, its status."""

    draft: Draft
    uid: str
    status: Status


# -- export -------------------------------------------------------------------------


def _date_until(rule: str, tz: Any) -> str:
    """An all-day rule's UNTIL as a DATE (RFC 5545: UNTIL has DTSTART's type)."""

    def local_day(m: re.Match[str]) -> str:
        if not m.group(2):
            return m.group()
        when = datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        return f"UNTIL={when.astimezone(tz):%Y%m%d}"

    return _UNTIL.sub(local_day, rule)


def to_ics(items: Iterable[AgendaItem], *, now: datetime | None = None) -> bytes:
    """The items as an iCalendar file (UTF-8, CRLF lines)."""
    from icalendar import Alarm, Calendar, Event, vRecur

    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    cal = Calendar()
    cal.add("prodid", _PRODID)
    cal.add("version", "2.0")
    for item in items:
        event = Event()
        event.add("uid", item.uid or f"companion-item-{item.id}@localhost")
        event.add("dtstamp", stamp)
        if item.created_at is not None:
            event.add("created", item.created_at.astimezone(UTC))
        event.add("summary", item.what)
        event.add("dtstart", item.when.date() if item.all_day else item.when)
        if item.rrule:
            rule = _date_until(item.rrule, item.when.tzinfo) if item.all_day else item.rrule
            event.add("rrule", vRecur.from_ical(rule))
        event.add("status", "CANCELLED" if item.status == "cancelled" else "CONFIRMED")
        event.add("x-companion-kind", item.kind)
        event.add("x-companion-status", item.status)
        if item.kind == "reminder":
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", item.what)
            alarm.add("trigger", timedelta(0))
            event.add_component(alarm)
        cal.add_component(event)
    cal.add_missing_timezones()
    return cast(bytes, cal.to_ical())


# -- import -------------------------------------------------------------------------


def _text(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise InputError(f"the calendar file is too large ({len(data) / 1e6:.1f} MB; "
                         f"at most {MAX_BYTES // (1024 * 1024)} MB)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"the calendar file is not UTF-8 text (byte {exc.start})") from exc
    upper = text.upper()
    if "BEGIN:VCALENDAR" not in upper:
        raise InputError("not an iCalendar file (it has no BEGIN:VCALENDAR)")
    events = upper.count("BEGIN:VEVENT") + upper.count("BEGIN:VTODO")
    if events > MAX_EVENTS:
        raise InputError(f"the calendar file holds {events} events; at most {MAX_EVENTS} "
                         "are imported at once")
    if upper.count("BEGIN:") > MAX_COMPONENTS:
        raise InputError(f"the calendar file holds more than {MAX_COMPONENTS} components")
    if "\x00" in text:
        raise InputError("the calendar file holds a NUL character; it is not text")
    return text


def _zone_of(tzid: str | None) -> ZoneInfo | None:
    """The IANA zone a TZID names (IANA or Windows name), or None."""
    if not tzid:
        return None
    from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

    for name in (tzid, WINDOWS_TO_OLSON.get(tzid, ""), tzid.strip("/").rsplit("/", 2)[-1]):
        try:
            return zone(name)
        except InputError:
            continue
    return None


def _start(component: Any, floating: ZoneInfo, label: str) -> tuple[datetime, bool] | None:
    """(start, all day) of an event or task, in an IANA zone; None when it has none."""
    names = ("DTSTART",) if component.name == "VEVENT" else ("DUE", "DTSTART")
    prop = next((component[n] for n in names if n in component), None)
    if prop is None:
        if component.name == "VEVENT":
            raise InputError(f"{label} has no start time (DTSTART)")
        return None
    value = getattr(prop, "dt", None)
    if not isinstance(value, date):
        raise InputError(f"{label} has a start time I cannot read: {str(prop)[:40]!r}")
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0), floating), True
    if value.tzinfo is None:
        return value.replace(tzinfo=floating), False
    if isinstance(value.tzinfo, ZoneInfo):
        return value, False
    tzid = prop.params.get("TZID")
    named = _zone_of(tzid) or (ZoneInfo("UTC") if not tzid and value.utcoffset() == timedelta(0)
                               else floating)
    return value.astimezone(named), False


def _rule(component: Any, start: datetime, label: str) -> str | None:
    prop = component.get("RRULE")
    if isinstance(prop, list):
        prop = prop[0] if prop else None
    if prop is None:
        return None
    text = prop.to_ical().decode("utf-8", "replace")

    def utc_until(m: re.Match[str]) -> str:
        if m.group(3):
            return m.group()
        if m.group(2):
            local = datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S")
        else:  # a date: to the end of that day
            local = datetime.combine(datetime.strptime(m.group(1), "%Y%m%d").date(),
                                     time(23, 59, 59))
        return f"UNTIL={local.replace(tzinfo=start.tzinfo).astimezone(UTC):%Y%m%dT%H%M%SZ}"

    try:
        return check_rule(start, _UNTIL.sub(utc_until, text))[0]
    except InputError as exc:
        raise InputError(f"{label}: {exc}") from exc
    except ValueError as exc:  # an UNTIL that is not a date
        raise InputError(f"{label}: not a recurrence rule I can follow: {text[:80]!r}") from exc


def _uid(component: Any, summary: str, start: datetime, rule: str | None) -> str:
    uid = " ".join(str(component.get("UID") or "").split())
    if uid and len(uid) <= 255:
        return uid
    seed = "\x1f".join([uid, summary, start.isoformat(), rule or ""]).encode("utf-8", "replace")
    return f"{hashlib.sha256(seed).hexdigest()[:32]}@import"


def _kind_status(component: Any) -> tuple[Kind, Status]:
    mark = str(component.get("X-COMPANION-KIND") or "").lower()
    kind: Kind = cast(Kind, mark) if mark in ("reminder", "plan") else (
        "reminder" if component.name == "VTODO" or component.walk("VALARM") else "plan")
    own = str(component.get("X-COMPANION-STATUS") or "").lower()
    if own in STATUSES:
        return kind, own
    status = str(component.get("STATUS") or "").upper()
    if status == "CANCELLED":
        return kind, "cancelled"
    if status == "COMPLETED" or component.get("COMPLETED") is not None:
        return kind, "done"
    return kind, "pending"


def from_ics(data: bytes, *, default_tz: str) -> list[Imported]:
    """The events and tasks of an iCalendar file, ready for
    :func:`companion.agenda.store.import_items`; :class:`InputError` when any of
    it cannot be read (nothing is partly imported)."""
    from icalendar import Calendar

    text = _text(data)
    user = zone(default_tz)
    try:
        calendars = Calendar.from_ical(text, multiple=True)
    except _READ_ERRORS as exc:
        reason = " ".join(str(exc).split())[:120]
        raise InputError(f"not a calendar file I can read ({reason})") from exc
    found: list[Imported] = []
    seen: set[str] = set()
    for cal in calendars:
        floating = _zone_of(str(cal.get("X-WR-TIMEZONE") or "")) or user
        for component in cal.walk():
            if component.name not in ("VEVENT", "VTODO") or "RECURRENCE-ID" in component:
                continue
            summary = " ".join(str(component.get("SUMMARY") or "").split()) or "(untitled)"
            if len(summary) > MAX_WHAT:
                summary = summary[:MAX_WHAT - 1] + "\u2026"
            label = f"event {summary[:60]!r}"
            broken = [(n, m) for n, m in component.errors
                      if n in ("DTSTART", "DUE", "RRULE", "UID", "SUMMARY")]
            if broken:
                raise InputError(f"{label}: {broken[0][0]}: {' '.join(broken[0][1].split())}")
            try:
                start = _start(component, floating, label)
            except _READ_ERRORS as exc:
                raise InputError(f"{label} has a start time I cannot read") from exc
            if start is None:
                continue
            when, all_day = start
            rule = _rule(component, when, label)
            uid = _uid(component, summary, when, rule)
            if uid in seen:
                continue
            seen.add(uid)
            kind, status = _kind_status(component)
            found.append(Imported(Draft(summary, when, kind, all_day=all_day, rrule=rule),
                                  uid, status))
    return found
