"""A user's data out of the store: export everything as JSON-ready data, or erase it.

Both run on a connection inside the caller's transaction (see :class:`Store`).
The export is meant to be read by a person as much as by a program: plain keys,
ISO-8601 UTC times, the persona states as the objects they are.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from companion.memory import migrations

#: Identifies the export's shape; bump the number when the shape changes.
EXPORT_FORMAT = "companion-user-export/1"


def _dicts(conn: sqlite3.Connection, sql: str, user_id: str) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(sql, (user_id,)).fetchall()]


def export_user(conn: sqlite3.Connection, user_id: str) -> dict[str, Any]:
    """Everything stored about ``user_id``: sessions, turns, facts, persona states,
    the agenda (with the occurrences fired)."""
    names = migrations.applied(conn)
    turns = _dicts(
        conn,
        """SELECT id, session_id, role, content, created_at, interrupted, flagged
           FROM turns WHERE user_id = ? ORDER BY id""",
        user_id,
    )
    for turn in turns:
        turn["interrupted"] = bool(turn["interrupted"])
        turn["flagged"] = bool(turn["flagged"])
    states = {
        row["persona"]: {"state": json.loads(row["state"]), "updated_at": row["updated_at"]}
        for row in conn.execute(
            "SELECT persona, state, updated_at FROM persona_states WHERE user_id = ? "
            "ORDER BY persona",
            (user_id,),
        ).fetchall()
    }
    facts = _dicts(
        conn,
        """SELECT id, kind, text, source_turn_id, first_stated_at, stated_at,
                  superseded_at, superseded_by, pinned, importance,
                  (SELECT json_group_array(turn_id) FROM fact_turns WHERE fact_id = facts.id)
                  AS turn_ids
           FROM facts WHERE user_id = ? ORDER BY id""",
        user_id,
    )
    for fact in facts:
        fact["pinned"] = bool(fact["pinned"])
        fact["turn_ids"] = json.loads(fact["turn_ids"])
    summaries = _dicts(
        conn,
        "SELECT id, session_id, text, turn_ids, created_at, pinned FROM summaries "
        "WHERE user_id = ? ORDER BY id",
        user_id,
    )
    for summary in summaries:
        summary["turn_ids"] = json.loads(summary["turn_ids"])
        summary["pinned"] = bool(summary["pinned"])
    agenda = _dicts(
        conn,
        """SELECT id, what, kind, when_utc, tz, all_day, rrule, status, snoozed_until,
                  source_turn_id, created_at, followed_up_at, uid,
                  (SELECT json_group_array(json_object('due_at', due_at, 'claimed_at',
                          claimed_at, 'shown_at', shown_at, 'done_at', done_at))
                   FROM agenda_fires WHERE item_id = agenda.id) AS fires
           FROM agenda WHERE user_id = ? ORDER BY id""",
        user_id,
    )
    for item in agenda:
        item["all_day"] = bool(item["all_day"])
        item["fires"] = json.loads(item["fires"])
    return {
        "format": EXPORT_FORMAT,
        "schema_version": len(names),
        "migrations": names,
        "user_id": user_id,
        "sessions": _dicts(
            conn,
            "SELECT id, started_at, ended_at FROM sessions WHERE user_id = ? ORDER BY id",
            user_id,
        ),
        "turns": turns,
        "facts": facts,
        "summaries": summaries,
        "states": states,
        "agenda": agenda,
    }


def erase_user(conn: sqlite3.Connection, user_id: str) -> dict[str, int]:
    """Delete every row of ``user_id`` (facts and their index entries first).

    Returns the number of rows deleted per kind: facts, states, turns, sessions
    (the agenda and its fires go too).
    The full-text index is merged afterwards so deleted words do not linger in
    it, and ``secure_delete`` (set by the store) zeroes the freed pages.
    """

    def delete(table: str) -> int:
        return conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,)).rowcount

    delete("agenda")  # its fires go with it (foreign key cascade)
    counts = {
        "facts": delete("facts"),
        "states": delete("persona_states"),
        "turns": delete("turns"),
        "sessions": delete("sessions"),
    }
    conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
    optimize_index(conn)
    return counts


def optimize_index(conn: sqlite3.Connection) -> None:
    """Merge the full-text indexes, physically dropping the entries of deleted rows."""
    for table in ("facts_fts", "turns_fts", "summaries_fts"):
        conn.execute(f"INSERT INTO {table} ({table}) VALUES ('optimize')")
