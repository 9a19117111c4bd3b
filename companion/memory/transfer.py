"""Importing an export file (``companion memory import FILE``): check everything, then write.

The file is the JSON that ``companion memory export`` writes (see
:mod:`.export`). It is refused with a clear :class:`InputError`, and nothing is
written, when it is not that format, comes from a newer schema (a migration
this version does not know), has a malformed record (a wrong type, an id out
of range, text that is not valid Unicode) or nests deeper than any export. A valid file is
written in one transaction under the chosen user, with new ids (old ids are
mapped); facts the user already has are kept once, and so are agenda items
(by UID; an export from before the agenda existed imports too). Vectors are
recomputed by :meth:`LongTermMemory.reindex`.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from companion.errors import InputError
from companion.memory.codec import ROLES, check_user_id, from_text
from companion.memory.export import EXPORT_FORMAT
from companion.memory.migrations import MIGRATIONS
from companion.memory.sqlite_memory import KIND_KEYWORDS, fact_key

#: The largest id SQLite stores; larger ones in a file are refused, not overflowed.
_MAX_ID = 2**63 - 1
#: Export files are a few levels deep; anything deeper is not one of ours.
MAX_DEPTH = 32


def read_export(path: Path) -> Any:
    """The parsed JSON of an export file; :class:`InputError` when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InputError(f"cannot read {path}: {reason}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"cannot read {path}: not JSON ({exc})") from exc
    except RecursionError as exc:
        raise InputError(f"cannot read {path}: the JSON is nested too deeply") from exc
    if _depth(data) > MAX_DEPTH:
        raise InputError(f"cannot read {path}: the JSON is nested too deeply "
                         f"(more than {MAX_DEPTH} levels)")
    return data


def _depth(value: Any) -> int:
    """How deeply ``value`` nests (iteratively, so a deep value cannot overflow the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        if isinstance(node, dict):
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, level + 1) for v in node)
    return deepest


def _encodable(value: Any, where: str) -> None:
    """Every string in ``value`` can be stored (no lone surrogate, no NUL)."""
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                raise InputError(f"import file: {where} holds a NUL character")
            try:
                node.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InputError(f"import file: {where} holds text that is not valid "
                                 "Unicode (a lone surrogate)") from exc
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _need(record: Any, key: str, kinds: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(record, dict) or key not in record:
        raise InputError(f"import file: {where} has no {key!r}")
    value = record[key]
    if not isinstance(value, kinds) or isinstance(value, bool) and kinds is int:
        raise InputError(f"import file: {where}.{key} has the wrong type")
    if isinstance(value, int) and not -_MAX_ID <= value <= _MAX_ID:
        raise InputError(f"import file: {where}.{key} is out of range")
    return value


def _ids(record: dict[str, Any], key: str, where: str) -> None:
    """``record[key]``, when present, is a list of ids (integers)."""
    value = record.get(key)
    if value is None:
        return
    if not isinstance(value, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and -_MAX_ID <= i <= _MAX_ID
        for i in value
    ):
        raise InputError(f"import file: {where}.{key} must be a list of ids (integers)")


def _optional(record: dict[str, Any], key: str, kinds: type | tuple[type, ...],
              where: str) -> None:
    if record.get(key) is not None:
        _need(record, key, kinds, where)


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
    _encodable(data, "a text")
    names = _need(data, "migrations", list, "file")
    if not all(isinstance(n, str) for n in names):
        raise InputError("import file: 'migrations' must be a list of names")
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
        _time(f, "first_stated_at", where, optional=True)
        _time(f, "superseded_at", where, optional=True)
        _ids(f, "turn_ids", where)
        _optional(f, "source_turn_id", int, where)
        importance = f.get("importance")
        if importance is not None and (
            not isinstance(importance, int | float) or isinstance(importance, bool)
            or not 0.0 <= importance <= 1.0
        ):
            raise InputError(f"import file: {where}.importance must be a number from 0 to 1")
    summaries = data.get("summaries", [])
    if not isinstance(summaries, list):
        raise InputError("import file: 'summaries' must be a list")
    for i, s in enumerate(summaries):
        where = f"summaries[{i}]"
        if _need(s, "session_id", int, where) not in sessions:
            raise InputError(f"import file: {where} refers to an unknown session")
        _need(s, "text", str, where)
        _need(s, "turn_ids", list, where)
        _ids(s, "turn_ids", where)
        _time(s, "created_at", where)
    _check_agenda(data.get("agenda", []))
    states = data.get("states", {})
    if not isinstance(states, dict):
        raise InputError("import file: 'states' must be an object")
    for persona, st in states.items():
        if isinstance(st, dict) and isinstance(st.get("state"), dict):
            _time(st, "updated_at", f"states[{persona!r}]", optional=True)


def _check_agenda(agenda: Any) -> None:
    """The export's agenda items (absent in older exports) are storable as they are."""
    from companion.agenda.model import STATUSES
    from companion.agenda.rows import check_rule, check_what
    from companion.agenda.zone import zone

    if not isinstance(agenda, list):
        raise InputError("import file: 'agenda' must be a list")
    for i, a in enumerate(agenda):
        where = f"agenda[{i}]"
        try:
            check_what(_need(a, "what", str, where))
            if _need(a, "kind", str, where) not in ("reminder", "plan"):
                raise InputError("kind is not 'reminder' or 'plan'")
            if _need(a, "status", str, where) not in STATUSES:
                raise InputError(f"status is not one of {list(STATUSES)}")
            when = from_text(str(_time(a, "when_utc", where))).astimezone(
                zone(_need(a, "tz", str, where)))
            _optional(a, "rrule", str, where)
            check_rule(when, a.get("rrule"))
            _optional(a, "uid", str, where)
            if a.get("uid") is not None and not 0 < len(a["uid"].strip()) <= 255:
                raise InputError("uid must be 1 to 255 characters")
            _optional(a, "source_turn_id", int, where)
            for key in ("snoozed_until", "created_at", "followed_up_at"):
                _time(a, key, where, optional=True)
            for j, f in enumerate(_need(a, "fires", list, where) if "fires" in a else []):
                _time(f, "due_at", f"{where}.fires[{j}]")
                for key in ("claimed_at", "shown_at", "done_at"):
                    _time(f, key, f"{where}.fires[{j}]", optional=True)
        except InputError as exc:
            message = str(exc)
            if not message.startswith("import file:"):
                message = f"import file: {where}: {message}"
            raise InputError(message) from exc


def _import_agenda(conn: sqlite3.Connection, agenda: list[dict[str, Any]], user_id: str,
                   turn_ids: dict[int, int], now: str) -> int:
    """Insert the checked agenda items (an item whose UID the user has is kept once)."""
    import uuid

    from companion.agenda.rows import check_what

    added = 0
    for a in agenda:
        source = turn_ids.get(a["source_turn_id"]) if a.get("source_turn_id") is not None \
            else None
        cur = conn.execute(
            """INSERT INTO agenda (user_id, what, kind, when_utc, tz, all_day, rrule, status,
                                   snoozed_until, source_turn_id, created_at, followed_up_at,
                                   uid)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (user_id, uid) DO NOTHING""",
            (user_id, check_what(a["what"]), a["kind"], a["when_utc"], a["tz"].strip(),
             int(bool(a.get("all_day"))), a.get("rrule") or None, a["status"],
             a.get("snoozed_until") if a["status"] == "snoozed" else None, source,
             a.get("created_at") or now, a.get("followed_up_at"),
             a.get("uid") or f"{uuid.uuid4()}@companion"),
        )
        if not cur.rowcount:
            continue
        added += 1
        conn.executemany(
            "INSERT OR IGNORE INTO agenda_fires (item_id, due_at, claimed_at, shown_at, done_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(cur.lastrowid, f["due_at"], f.get("claimed_at") or f["due_at"],
              f.get("shown_at") or f.get("claimed_at") or f["due_at"], f.get("done_at"))
             for f in a.get("fires") or []])
    return added


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
            """INSERT INTO turns (user_id, session_id, role, content, created_at, interrupted,
                                  flagged)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (user_id, session_ids[t["session_id"]], t["role"], t["content"], t["created_at"],
             int(bool(t.get("interrupted"))), int(t.get("flagged") is True)),
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
             float(f["importance"] if f.get("importance") is not None else 0.5)),
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
    agenda = _import_agenda(conn, data.get("agenda", []), user_id, turn_ids,
                            first or "1970-01-01T00:00:00.000000+00:00")
    counts = {"sessions": len(session_ids), "turns": len(turn_ids), "facts": facts,
              "summaries": summaries}
    if agenda:
        counts["agenda items"] = agenda
    return counts
