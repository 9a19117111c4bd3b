"""Agenda rows and the checks and time arithmetic shared by :mod:`.store` and :mod:`.due`."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, time, timedelta
from typing import cast

from companion.agenda import recur
from companion.agenda.model import AgendaItem, Kind, Status
from companion.agenda.zone import zone
from companion.errors import InputError
from companion.memory.codec import from_text, maybe_from_text

#: The longest ``what`` kept (characters).
MAX_WHAT = 500
#: The statuses of an item still ahead.
ACTIVE: tuple[Status, ...] = ("pending", "snoozed")
_COUNT = re.compile(r"(?:^|;)COUNT=(\d+)(?=;|$)", re.IGNORECASE)
#: Windows searched, smallest first, for the latest missed occurrence of a rule.
_LOOKBACK = (timedelta(hours=1), timedelta(days=1), timedelta(days=32),
             timedelta(days=400), timedelta(days=4000), None)


def item_from_row(row: sqlite3.Row) -> AgendaItem:
    tz = zone(row["tz"])

    def local(text: str | None) -> datetime | None:
        when = maybe_from_text(text)
        return None if when is None else when.astimezone(tz)

    return AgendaItem(
        id=row["id"], what=row["what"], when=from_text(row["when_utc"]).astimezone(tz),
        kind=cast(Kind, row["kind"]), status=cast(Status, row["status"]),
        all_day=bool(row["all_day"]), rrule=row["rrule"], source_turn_id=row["source_turn_id"],
        created_at=maybe_from_text(row["created_at"]), snoozed_until=local(row["snoozed_until"]),
        followed_up_at=maybe_from_text(row["followed_up_at"]), uid=row["uid"],
    )


def row_for(conn: sqlite3.Connection, user_id: str, item_id: int) -> sqlite3.Row:
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise InputError(f"no agenda item {item_id!r}")
    row = conn.execute("SELECT * FROM agenda WHERE id = ? AND user_id = ?",
                       (item_id, user_id)).fetchone()
    if row is None:
        raise InputError(f"no agenda item {item_id}")
    return cast(sqlite3.Row, row)


def check_what(what: str) -> str:
    """``what`` with its spaces tidied, if it can be stored; else :class:`InputError`."""
    text = " ".join(str(what).split())
    if not text:
        raise InputError("an agenda item needs some words: what is it?")
    if len(text) > MAX_WHAT:
        raise InputError(f"an agenda item is at most {MAX_WHAT} characters "
                         f"(this one has {len(text)})")
    if "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text):
        raise InputError("an agenda item's words hold a character that is not text")
    return text


def check_rule(start: datetime, rrule: str | None) -> tuple[str | None, datetime]:
    """``rrule`` ready to store from ``start`` (``COUNT`` turned into the ``UNTIL`` it
    implies, since the stored start moves on as the item fires), or None; and the
    first occurrence (``start`` itself without a rule).

    A rule :func:`companion.agenda.recur.check_rule` refuses (FREQ=SECONDLY,
    parts it does not know...), or one that never happens, is an
    :class:`InputError`.
    """
    if rrule is None or not rrule.strip():
        return None, start
    rule = rrule.strip()
    if rule[:6].upper() == "RRULE:":
        rule = rule[6:]
    if len(rule) > 500:
        raise InputError("a recurrence rule is at most 500 characters")
    recur.check_rule(rule)
    count = _COUNT.search(rule)
    n = int(count.group(1)) if count else 1
    try:
        found = recur.occurrences(start, rule, start, start + timedelta(days=366 * 100), n)
    except (ValueError, OverflowError, TypeError) as exc:
        raise InputError(f"not a recurrence rule I can follow: {rule[:80]!r} ({exc})") from exc
    if not found:
        raise InputError(f"the recurrence rule {rule[:80]!r} never happens")
    if count is None:
        return rule, found[0]
    until = found[-1].astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    parts = [p for p in rule.split(";") if p and not p.upper().startswith("COUNT=")]
    return ";".join([*parts, f"UNTIL={until}"]), found[0]


def local_time(when: datetime, tz: str, all_day: bool) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when!r}: pass an aware one")
    zi = zone(tz)
    if all_day:
        return datetime.combine(when.date(), time(0), zi)
    return when.astimezone(zi)


def next_after(item: AgendaItem, after: datetime) -> datetime | None:
    """The item's first occurrence strictly after ``after`` (None for a one-off or a rule
    that has ended)."""
    if item.rrule is None:
        return None
    return recur.next_occurrence(item.when, item.rrule, after)


def latest(item: AgendaItem, upto: datetime) -> datetime | None:
    """The item's last occurrence from ``item.when`` to ``upto`` (inclusive), or None."""
    if item.when > upto:
        return None
    if item.rrule is None:
        return item.when
    end = upto + timedelta(microseconds=1)
    for back in _LOOKBACK:
        start = item.when if back is None else max(item.when, upto - back)
        found = recur.occurrences(item.when, item.rrule, start, end, 100_000)
        if found:
            return found[-1]
        if back is None or start == item.when:
            break
    return None
