"""The agenda in the store: reminders and plans, and firing each reminder once.

Every function takes the :class:`~companion.memory.store.Store` and a user id
and runs in one ``store.transaction()`` (writes) or ``store.reading()``; one
user never sees another's items (another user's id is "no agenda item N").

Rows (migration ``m005_agenda``): ``when_utc`` is the item's next occurrence
in UTC and ``tz`` the IANA zone it lives in; items come back with ``when`` in
that zone, and a recurrence is expanded there as wall time (see
:mod:`companion.agenda.recur`), so "every Monday at 9" stays at 9 across a
daylight-saving change. A rule's ``COUNT`` is stored as the ``UNTIL`` it
implies, since ``when_utc`` (the rule's start) moves forward as it fires.

Exactly once: :func:`claim_due` inserts one ``agenda_fires`` row per
occurrence (``INSERT OR IGNORE`` on the key ``(item_id, due_at)``) and moves a
recurring item to its next occurrence, in one transaction; the caller delivers
the fire, then :func:`mark_shown` records it. A fire claimed but never marked
shown (a crash in between) is returned again by the next claim, never claimed
twice.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

from companion.agenda.due import (
    between,
    claim_due,
    fired,
    follow_ups_due,
    mark_followed_up,
    mark_shown,
)
from companion.agenda.model import STATUSES, AgendaItem, Draft, Status
from companion.agenda.rows import (
    ACTIVE,
    MAX_WHAT,
    check_rule,
    check_what,
    item_from_row,
    local_time,
    next_after,
    row_for,
)
from companion.errors import InputError
from companion.memory.codec import check_user_id, to_text
from companion.memory.store import Store

__all__ = [
    "ACTIVE", "MAX_WHAT", "add_item", "between", "claim_due", "delete_item", "fired",
    "follow_ups_due", "get_item", "import_items", "list_items", "mark_followed_up",
    "mark_shown", "reschedule", "set_status", "snooze",
]

_KEEP = object()
_NEXT_KEY = ("CASE WHEN status = 'snoozed' AND snoozed_until IS NOT NULL "
             "THEN snoozed_until ELSE when_utc END")


# -- items -------------------------------------------------------------------------


def _insert(conn: sqlite3.Connection, user_id: str, draft: Draft, *, tz: str, now: datetime,
            source_turn_id: int | None, uid: str | None,
            status: Status = "pending") -> tuple[AgendaItem, bool]:
    if draft.question is not None:
        raise InputError(f"not set, it needs an answer first: {draft.question}")
    if draft.when is None:
        raise InputError("an agenda item needs a time")
    if draft.kind not in ("reminder", "plan"):
        raise ValueError(f"unknown agenda kind {draft.kind!r}")
    what = check_what(draft.what)
    rule, when = check_rule(local_time(draft.when, tz, draft.all_day), draft.rrule)
    uid = uid if uid is not None else f"{uuid.uuid4()}@companion"
    if not uid.strip() or len(uid) > 255:
        raise InputError("an agenda item's UID must be 1 to 255 characters")
    stamp = to_text(when)
    for row in conn.execute(
        "SELECT * FROM agenda WHERE user_id = ? AND (uid = ? OR when_utc = ? AND status IN "
        "('pending', 'snoozed'))", (user_id, uid, stamp),
    ).fetchall():
        if row["uid"] == uid or row["what"].casefold() == what.casefold():
            return item_from_row(row), False
    if source_turn_id is not None:
        owner = conn.execute("SELECT user_id FROM turns WHERE id = ?",
                             (source_turn_id,)).fetchone()
        if owner is None or owner["user_id"] != user_id:
            raise ValueError(f"turn {source_turn_id} is not a turn of user {user_id!r}")
    conn.execute("INSERT INTO users (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
                 (user_id, to_text(now)))
    cur = conn.execute(
        """INSERT INTO agenda (user_id, what, kind, when_utc, tz, all_day, rrule, status,
                               source_turn_id, created_at, uid)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (user_id, what, draft.kind, stamp, tz, int(draft.all_day), rule, status,
         source_turn_id, to_text(now), uid),
    )
    return item_from_row(row_for(conn, user_id, int(cur.lastrowid or 0))), True


def add_item(store: Store, user_id: str, draft: Draft, *, tz: str, now: datetime,
             source_turn_id: int | None = None, uid: str | None = None) -> AgendaItem:
    """Store ``draft`` (its ``when`` aware) as the user's item in zone ``tz``.

    A draft that still asks a question, has no time, or whose words are empty or
    over 500 characters is an :class:`InputError`. The same words (case aside)
    at the same time as an item still ahead, or the same ``uid``, return that
    item instead of a copy.
    """
    check_user_id(user_id)
    with store.transaction() as conn:
        return _insert(conn, user_id, draft, tz=tz, now=now, source_turn_id=source_turn_id,
                       uid=uid)[0]


def import_items(store: Store, user_id: str, items: Sequence[tuple[Draft, str, Status]], *,
                 tz: str, now: datetime) -> int:
    """Add ``(draft, uid, status)`` items, all of them or (on any error) none; an item
    whose UID the user already has is skipped. Returns how many were added."""
    check_user_id(user_id)
    added = 0
    with store.transaction() as conn:
        for draft, uid, status in items:
            zone_name = getattr(draft.when.tzinfo if draft.when else None, "key", None) or tz
            added += _insert(conn, user_id, draft, tz=zone_name, now=now, source_turn_id=None,
                             uid=uid, status=status if status != "snoozed" else "pending")[1]
    return added


def list_items(store: Store, user_id: str, *,
               statuses: tuple[Status, ...] = ACTIVE) -> list[AgendaItem]:
    """The user's items with one of ``statuses``, soonest first."""
    check_user_id(user_id)
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        raise InputError(f"unknown agenda status {bad[0]!r}; expected one of {list(STATUSES)}")
    marks = ", ".join("?" * len(statuses))
    with store.reading() as conn:
        rows = conn.execute(
            f"SELECT * FROM agenda WHERE user_id = ? AND status IN ({marks}) "
            f"ORDER BY {_NEXT_KEY}, id", (user_id, *statuses)).fetchall()
    return [item_from_row(row) for row in rows]


def get_item(store: Store, user_id: str, item_id: int) -> AgendaItem:
    """One of the user's items; :class:`InputError` "no agenda item N" when there is none."""
    check_user_id(user_id)
    with store.reading() as conn:
        return item_from_row(row_for(conn, user_id, item_id))


def set_status(store: Store, user_id: str, item_id: int, status: Status,
               now: datetime) -> AgendaItem:
    """Mark an item ``done``, ``cancelled`` or ``pending`` again.

    ``done`` on a recurring item is this occurrence done: the one that fired and
    was not yet marked done, else the next one (which then never fires); the
    item moves on and stays pending until its rule ends. ``cancelled`` ends a
    series. Use :func:`snooze` to snooze.
    """
    check_user_id(user_id)
    if status not in STATUSES:
        raise InputError(f"unknown agenda status {status!r}; expected one of {list(STATUSES)}")
    if status == "snoozed":
        raise InputError("give a time to snooze an item until (see snooze)")
    stamp = to_text(now)
    with store.transaction() as conn:
        item = item_from_row(row_for(conn, user_id, item_id))
        new: Status = status
        when = item.when
        if status == "done" and item.rrule is not None and item.status in ACTIVE:
            open_fires = conn.execute(
                "UPDATE agenda_fires SET done_at = ? WHERE item_id = ? AND done_at IS NULL",
                (stamp, item.id)).rowcount
            new = "pending"
            if not open_fires:  # done ahead of time: this occurrence will not fire
                conn.execute(
                    "INSERT OR IGNORE INTO agenda_fires (item_id, due_at, claimed_at, shown_at, "
                    "done_at) VALUES (?, ?, ?, ?, ?)",
                    (item.id, to_text(item.when), stamp, stamp, stamp))
                following = next_after(item, item.when)
                if following is None:
                    new = "done"
                else:
                    when = following
        elif status == "done":
            conn.execute("UPDATE agenda_fires SET done_at = ? WHERE item_id = ? "
                         "AND done_at IS NULL", (stamp, item.id))
        conn.execute("UPDATE agenda SET status = ?, when_utc = ?, snoozed_until = NULL "
                     "WHERE id = ?", (new, to_text(when), item.id))
        return item_from_row(row_for(conn, user_id, item.id))


def snooze(store: Store, user_id: str, item_id: int, until: datetime) -> AgendaItem:
    """Fire a reminder again at ``until`` (then it is pending again)."""
    check_user_id(user_id)
    stamp = to_text(until)
    with store.transaction() as conn:
        item = item_from_row(row_for(conn, user_id, item_id))
        if item.kind != "reminder":
            raise InputError(f"agenda item {item.id} is a plan; only a reminder can be "
                             "snoozed (move the plan instead)")
        if item.status not in ACTIVE:
            raise InputError(f"agenda item {item.id} is {item.status}; it cannot be snoozed")
        conn.execute("UPDATE agenda SET status = 'snoozed', snoozed_until = ? WHERE id = ?",
                     (stamp, item.id))
        return item_from_row(row_for(conn, user_id, item.id))


def snooze_by(
    store: Store, user_id: str, item_id: int, duration: timedelta, now: datetime
) -> AgendaItem:
    """"Remind me again in 10 minutes": from now when the reminder is due or has
    fired, else from its coming time (snoozing never brings a reminder earlier)."""
    item = get_item(store, user_id, item_id)
    start = item.next_time if item.next_time > now else now
    return snooze(store, user_id, item_id, start + duration)


def reschedule(store: Store, user_id: str, item_id: int, when: datetime, *,
               rrule: str | None | object = _KEEP, all_day: bool | None = None) -> AgendaItem:
    """Move an item to ``when`` (in its own zone), optionally with a new rule (None:
    no longer recurring); it is pending again, and a plan will be followed up again."""
    check_user_id(user_id)
    with store.transaction() as conn:
        row = row_for(conn, user_id, item_id)
        item = item_from_row(row)
        day = item.all_day if all_day is None else all_day
        local = local_time(when, row["tz"], day)
        rule, local = check_rule(local, item.rrule if rrule is _KEEP
                                 else cast("str | None", rrule))
        conn.execute(
            "UPDATE agenda SET when_utc = ?, rrule = ?, all_day = ?, status = 'pending', "
            "snoozed_until = NULL, followed_up_at = NULL WHERE id = ?",
            (to_text(local), rule, int(day), item.id))
        return item_from_row(row_for(conn, user_id, item.id))


def delete_item(store: Store, user_id: str, item_id: int) -> None:
    """Remove an item and its fires for good."""
    check_user_id(user_id)
    with store.transaction() as conn:
        conn.execute("DELETE FROM agenda WHERE id = ?", (row_for(conn, user_id, item_id)["id"],))
