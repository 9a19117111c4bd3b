"""What is due in the agenda: claiming reminders once, plans to follow up, a day's items.

Re-exported by :mod:`companion.agenda.store` (import them from there). See
that module for the exactly-once design: a claim is a row in
``agenda_fires`` keyed by ``(item_id, due_at)``, inserted with ``INSERT OR
IGNORE`` in the same transaction that moves a recurring item to its next
occurrence.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, time, timedelta

from companion.agenda import recur
from companion.agenda.model import AgendaItem, Fire
from companion.agenda.rows import ACTIVE, item_from_row, latest, next_after, row_for
from companion.memory.codec import check_user_id, from_text, to_text
from companion.memory.store import Store

#: The most occurrences of one item :func:`between` lists.
MAX_OCCURRENCES = 1000


def _claim(conn: sqlite3.Connection, item_id: int, due: datetime, stamp: str, *,
           shown: bool = False) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO agenda_fires (item_id, due_at, claimed_at, shown_at) "
        "VALUES (?, ?, ?, ?)", (item_id, to_text(due), stamp, stamp if shown else None))


def _move_on(conn: sqlite3.Connection, item: AgendaItem, past: datetime) -> None:
    """Set a recurring item's time to its first occurrence after ``past`` (a rule
    that has ended keeps its last time, already claimed)."""
    following = next_after(item, past)
    if following is not None:
        conn.execute("UPDATE agenda SET when_utc = ? WHERE id = ?",
                     (to_text(following), item.id))


def claim_due(store: Store, user_id: str, now: datetime) -> list[Fire]:
    """Claim every reminder occurrence due at or before ``now``, once; return the fires
    not yet shown (these and any claimed earlier and never marked), oldest first.

    A snoozed reminder fires at its snooze time, then is pending again (the
    occurrences it postponed count as fired). A recurring reminder that missed
    several occurrences while nothing ran fires once, for the latest, and moves
    to its next occurrence after ``now``. A plan never fires; a recurring plan
    just moves on to its next occurrence.
    """
    check_user_id(user_id)
    stamp = to_text(now)
    with store.transaction() as conn:
        for row in conn.execute(
            "SELECT * FROM agenda WHERE user_id = ? AND status = 'snoozed' "
            "AND snoozed_until <= ?", (user_id, stamp)).fetchall():
            item = item_from_row(row)
            assert item.snoozed_until is not None
            _claim(conn, item.id, item.snoozed_until, stamp)
            postponed = latest(item, item.snoozed_until)
            if postponed is not None:
                _claim(conn, item.id, postponed, stamp, shown=True)
                if item.rrule is not None:
                    _move_on(conn, item, item.snoozed_until)
            conn.execute("UPDATE agenda SET status = 'pending', snoozed_until = NULL "
                         "WHERE id = ?", (item.id,))
        for row in conn.execute(
            """SELECT * FROM agenda AS a WHERE user_id = ? AND status = 'pending'
               AND when_utc <= ? AND (kind = 'reminder' OR rrule IS NOT NULL)
               AND NOT EXISTS (SELECT 1 FROM agenda_fires AS f
                               WHERE f.item_id = a.id AND f.due_at = a.when_utc)""",
            (user_id, stamp)).fetchall():
            item = item_from_row(row)
            due = latest(item, now)
            if due is None:
                continue
            if item.kind == "reminder":
                _claim(conn, item.id, due, stamp)
            if item.rrule is not None:
                _move_on(conn, item, now)
        rows = conn.execute(
            """SELECT a.*, f.due_at AS fire_due FROM agenda_fires AS f
               JOIN agenda AS a ON a.id = f.item_id
               WHERE a.user_id = ? AND f.shown_at IS NULL ORDER BY f.due_at, a.id""",
            (user_id,)).fetchall()
    fires = []
    for row in rows:
        item = item_from_row(row)
        fires.append(Fire(item, from_text(row["fire_due"]).astimezone(item.when.tzinfo)))
    return fires


def mark_shown(store: Store, user_id: str, fires: list[Fire], now: datetime) -> None:
    """Record that ``fires`` were delivered: no claim returns them again."""
    check_user_id(user_id)
    with store.transaction() as conn:
        for fire in fires:
            conn.execute(
                """UPDATE agenda_fires SET shown_at = ? WHERE item_id = ? AND due_at = ?
                   AND shown_at IS NULL
                   AND item_id IN (SELECT id FROM agenda WHERE user_id = ?)""",
                (to_text(now), fire.item.id, to_text(fire.due_at), user_id))


def fired(store: Store, user_id: str, item_id: int) -> list[datetime]:
    """When an item fired (the occurrences claimed), oldest first, in its zone."""
    check_user_id(user_id)
    with store.reading() as conn:
        item = item_from_row(row_for(conn, user_id, item_id))
        rows = conn.execute("SELECT due_at FROM agenda_fires WHERE item_id = ? ORDER BY due_at",
                            (item.id,)).fetchall()
    return [from_text(row[0]).astimezone(item.when.tzinfo) for row in rows]


def _over(item: AgendaItem) -> datetime:
    """When an item is over: its time, or the end of its day when it is all-day."""
    if item.all_day:
        return datetime.combine(item.when.date() + timedelta(days=1), time(0), item.when.tzinfo)
    return item.when


def follow_ups_due(store: Store, user_id: str, now: datetime) -> list[AgendaItem]:
    """The user's pending one-off plans that are over (an all-day one when its day
    is) and not yet followed up, oldest first."""
    check_user_id(user_id)
    with store.reading() as conn:
        rows = conn.execute(
            """SELECT * FROM agenda WHERE user_id = ? AND kind = 'plan' AND status = 'pending'
               AND rrule IS NULL AND followed_up_at IS NULL AND when_utc <= ?
               ORDER BY when_utc, id""", (user_id, to_text(now))).fetchall()
    return [item for item in map(item_from_row, rows) if _over(item) <= now]


def mark_followed_up(store: Store, user_id: str, ids: list[int], now: datetime) -> None:
    """Record that she asked how these plans went (she does not ask again)."""
    check_user_id(user_id)
    with store.transaction() as conn:
        conn.executemany(
            "UPDATE agenda SET followed_up_at = ? WHERE user_id = ? AND id = ? "
            "AND followed_up_at IS NULL", [(to_text(now), user_id, i) for i in ids])


def between(store: Store, user_id: str, start: datetime,
            end: datetime) -> list[tuple[AgendaItem, datetime]]:
    """Every occurrence of the user's items still ahead in ``[start, end)`` (a
    recurring one expanded, a snoozed one at its snooze time), in time order."""
    check_user_id(user_id)
    marks = ", ".join("?" * len(ACTIVE))
    with store.reading() as conn:
        rows = conn.execute(f"SELECT * FROM agenda WHERE user_id = ? AND status IN ({marks})",
                            (user_id, *ACTIVE)).fetchall()
    found: list[tuple[AgendaItem, datetime]] = []
    for item in map(item_from_row, rows):
        if item.status == "snoozed" and item.snoozed_until is not None:
            if start <= item.snoozed_until < end:
                found.append((item, item.snoozed_until))
            if item.rrule is None:
                continue
        if item.rrule is None:
            if start <= item.when < end:
                found.append((item, item.when))
            continue
        for when in recur.occurrences(item.when, item.rrule, max(start, item.when), end,
                                      MAX_OCCURRENCES):
            found.append((item, when))
    found.sort(key=lambda pair: (pair[1], pair[0].id))
    return found
