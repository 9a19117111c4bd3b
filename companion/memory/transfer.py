"""Importing an export file (``companion memory import FILE``): check everything, then write.

The file is the JSON that ``companion memory export`` writes (see
:mod:`.export`). It is refused with a clear :class:`InputError`, and nothing is
written, when it is not that format, comes from a newer schema (a migration
this version does not know), or has a malformed record. A valid file is
written in one transaction under the chosen user, with new ids (old ids are
mapped); facts the user already has are kept once. Vectors are recomputed by
:meth:`LongTermMemory.reindex`.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from companion.errors import InputError
from companion.memory.codec import ROLES, check_user_id, from_text
from companion.memory.export import EXPORT_FORMAT
from companion.memory.migrations import MIGRATIONS
from companion.memory.sqlite_memory import KIND_KEYWORDS, fact_key


def _need(record: Any, key: str, kinds: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(record, dict) or key not in record:
        raise InputError(f"import file: {where} has no {key!r}")
    value = record[key]
    if not isinstance(value, kinds) or isinstance(value, bool) and kinds is int:
        raise InputError(f"import file: {where}.{key} has the wrong type")
    return value


def _time(record: Any, key: str, where: str, optional: bool = False) -> str | None:
    value = record.get(key) if isinstance(record, dict) else None
    if value is None and optional:
        return None
    text = _need(record, key, str, where)
    try:
        from_text(text)
    except ValueError as exc:
        raise InputError(f"import file: {where}.{key} is not a time: {text!r}") from exc
    return str(text)


def check_export(data: Any) -> None:
    """Raise InputError unless ``data`` is an export this version can import."""
    if not isinstance(data, dict):
        raise InputError("import file: not a companion export (expected a JSON object)")
    fmt = data.get("format")
    if not isinstance(fmt, str) or not fmt.startswith("companion-user-export/"):
        raise InputError("import file: not a companion export (no 'format')")
    if fmt != EXPORT_FORMAT:
        raise InputError(f"import file: format {fmt!r} is not supported (this version reads "
                         f"{EXPORT_FORMAT!r}); upgrade companion")
    names = _need(data, "migrations", list, "file")
    known = {name for name, _ in MIGRATIONS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"import file was written by a newer companion (schema migrations "
                         f"{', '.join(map(str, unknown))}); upgrade companion to import it")
    sessions = {_need(s, "id", int, f"sessions[{i}]")
                for i, s in enumerate(_need(data, "sessions", list, "file"))}
    for i, s in enumerate(data["sessions"]):
        _time(s, "started_at", f"sessions[{i}]")
        _time(s, "ended_at", f"sessions[{i}]", optional=True)
    for i, t in enumerate(_need(data, "turns", list, "file")):
        where = f"turns[{i}]"
        _need(t, "id", int, where)
        if _need(t, "session_id", int, where) not in sessions:
            raise InputError(f"import file: {where} refers to an unknown session")
        if _need(t, "role", str, where) not in ROLES:
            raise InputError(f"import file: {where}.role is not one of {sorted(ROLES)}")
        _need(t, "content", str, where)
        _time(t, "created_at", where)
    for i, f in enumerate(_need(data, "facts", list, "file")):
        where = f"facts[{i}]"
        _need(f, "kind", str, where)
        if not _need(f, "text", str, where).strip():
            raise InputError(f"import file: {where}.text is empty")
        _time(f, "stated_at", where)
    for i, s in enumerate(data.get("summaries", [])):
        where = f"summaries[{i}]"
        if _need(s, "session_id", int, where) not in sessions:
            raise InputError(f"import file: {where} refers to an unknown session")
        _need(s, "text", str, where)
        _need(s, "turn_ids", list, where)
        _time(s, "created_at", where)
    if not isinstance(data.get("states", {}), dict):
        raise InputError("import file: 'states' must be an object")


def import_user(conn: sqlite3.Connection, data: Any, user_id: str) -> dict[str, int]:
    """Write a checked export under ``user_id`` (in the caller's transaction); counts."""
    check_user_id(user_id)
    check_export(data)
    first = min([s["started_at"] for s in data["sessions"]], default=None)
    conn.execute("INSERT INTO users (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
                 (user_id, first or "1970-01-01T00:00:00.000000+00:00"))
    session_ids: dict[int, int] = {}
    for s in data["sessions"]:
        cur = conn.execute("INSERT INTO sessions (user_id, started_at, ended_at) VALUES (?, ?, ?)",
                           (user_id, s["started_at"], s.get("ended_at")))
        session_ids[s["id"]] = int(cur.lastrowid or 0)
    turn_ids: dict[int, int] = {}
    for t in data["turns"]:
        cur = conn.execute(
            """INSERT INTO turns (user_id, session_id, role, content, created_at, interrupted)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (user_id, session_ids[t["session_id"]], t["role"], t["content"], t["created_at"],
             int(bool(t.get("interrupted")))),
        )
        turn_ids[t["id"]] = int(cur.lastrowid or 0)
    facts = 0
    for f in data["facts"]:
        sources = [turn_ids[i] for i in f.get("turn_ids") or [f.get("source_turn_id")]
                   if isinstance(i, int) and i in turn_ids]
        cur = conn.execute(
            """INSERT INTO facts (user_id, kind, text, key, keywords, source_turn_id,
                                  first_stated_at, stated_at, superseded_at, pinned, importance)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, key) DO NOTHING""",
            (user_id, f["kind"], f["text"], fact_key(f["text"]), KIND_KEYWORDS.get(f["kind"], ""),
             sources[0] if sources else None, f.get("first_stated_at") or f["stated_at"],
             f["stated_at"], f.get("superseded_at"), int(bool(f.get("pinned"))),
             float(f.get("importance", 0.5))),
        )
        if cur.rowcount:
            facts += 1
            conn.executemany("INSERT OR IGNORE INTO fact_turns (fact_id, turn_id) VALUES (?, ?)",
                             [(cur.lastrowid, t) for t in sources])
    summaries = 0
    for s in data.get("summaries", []):
        conn.execute(
            """INSERT INTO summaries (user_id, session_id, text, turn_ids, created_at, pinned)
               VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_id) DO NOTHING""",
            (user_id, session_ids[s["session_id"]], s["text"],
             json.dumps([turn_ids[i] for i in s["turn_ids"] if i in turn_ids]),
             s["created_at"], int(bool(s.get("pinned")))),
        )
        summaries += 1
    for persona, st in data.get("states", {}).items():
        if isinstance(st, dict) and isinstance(st.get("state"), dict):
            conn.execute(
                """INSERT INTO persona_states (user_id, persona, state, updated_at)
                   VALUES (?, ?, ?, ?) ON CONFLICT (user_id, persona) DO NOTHING""",
                (user_id, persona, json.dumps(st["state"]), st.get("updated_at") or first),
            )
    return {"sessions": len(session_ids), "turns": len(turn_ids), "facts": facts,
            "summaries": summaries}
