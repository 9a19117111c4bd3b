"""The store's schema, as an ordered list of migrations (after simonw/llm's migrations.py).

Each migration is a function that runs its statements on the connection; the
store applies the pending ones at open, each in its own transaction, and records
its name in ``_migrations``. Never edit or reorder a released migration: add a
new one at the end. A database that has applied a migration this version does
not know was written by a newer companion and is refused, untouched.

Schema (after every migration here):

``users(id, created_at)``
    one row per user id; everything below references it.
``sessions(id, user_id, started_at, ended_at)``
    a run of turns from one sitting.
``turns(id, user_id, session_id, role, content, created_at, interrupted, flagged)``
    every stored utterance; ``interrupted`` marks a reply cut short, ``flagged``
    a reply the reply guard could not fix: kept as said, not shown to the model
    again (m004).
``persona_states(user_id, persona, state, updated_at)``
    the persona's evolving state towards a user, as JSON text.
``facts(id, user_id, kind, text, key, keywords, source_turn_id, first_stated_at,
stated_at, superseded_at, superseded_by)``
    what the companion knows about a user; ``key`` is the normalized text (one
    row per user and key); a superseded fact is kept as history, not recalled.
``facts_fts(text, keywords)``
    FTS5 index over ``facts`` (external content, kept in sync by triggers).
``facts.pinned``, ``facts.importance``; ``fact_turns(fact_id, turn_id)``
    pins, importance (0..1) and every turn a fact was taken from (m003).
``turns_fts(content)``
    FTS5 index over every turn: the episodic memory (m003).
``summaries(id, user_id, session_id, text, turn_ids, created_at, pinned)``, ``summaries_fts``
    one condensed text per finished session, with the ids of its turns (m003).
``embeddings(kind, item_id, user_id, model, vector)``
    a float32 sentence vector per turn, fact or summary; deleted with its item (m003).
``agenda(id, user_id, what, kind, when_utc, tz, all_day, rrule, status, snoozed_until,
source_turn_id, created_at, followed_up_at, uid)``
    reminders and plans (m005): ``when_utc`` is the next occurrence in UTC, ``tz``
    the IANA zone its recurrence is expanded in, ``uid`` its stable iCalendar UID.
``agenda_fires(item_id, due_at, claimed_at, shown_at, done_at)``
    one row per reminder occurrence claimed; the primary key (item_id, due_at) is
    what makes an occurrence fire once (m005).
``agenda_notices(id, user_id, kind, given_at, turn_id)``
    every notice she gave on her own (reminder, briefing, follow_up, check_in) and
    the turn it was stored as: what the daily limit and the once-a-day briefing
    count (m006).

Ids are AUTOINCREMENT so an erased user's ids are never handed out again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from companion.errors import StoreError

Migration = Callable[[sqlite3.Connection], None]

#: Every migration, in the order it is applied.
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration, named after the function."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def _run(conn: sqlite3.Connection, *statements: str) -> None:
    # Not executescript(): it commits first, and a migration is one transaction.
    for sql in statements:
        conn.execute(sql)


@migration
def m001_initial(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """CREATE TABLE users (
            id TEXT PRIMARY KEY NOT NULL,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE sessions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            started_at TEXT NOT NULL,
            ended_at TEXT
        )""",
        "CREATE INDEX sessions_by_user ON sessions(user_id, id)",
        """CREATE TABLE turns (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL,
            created_at TEXT NOT NULL,
            interrupted INTEGER NOT NULL DEFAULT 0 CHECK (interrupted IN (0, 1))
        )""",
        "CREATE INDEX turns_by_user ON turns(user_id, id)",
        "CREATE INDEX turns_by_session ON turns(session_id, id)",
        """CREATE TABLE persona_states (
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            persona TEXT NOT NULL,
            state TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (user_id, persona)
        )""",
    )


@migration
def m002_facts(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """CREATE TABLE facts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            text TEXT NOT NULL,
            key TEXT NOT NULL,
            keywords TEXT NOT NULL DEFAULT '',
            source_turn_id INTEGER REFERENCES turns(id) ON DELETE SET NULL,
            first_stated_at TEXT NOT NULL,
            stated_at TEXT NOT NULL,
            superseded_at TEXT,
            superseded_by INTEGER REFERENCES facts(id) ON DELETE SET NULL,
            UNIQUE (user_id, key)
        )""",
        "CREATE INDEX facts_by_user ON facts(user_id, superseded_at, stated_at)",
        "CREATE INDEX facts_by_source ON facts(source_turn_id)",
        "CREATE INDEX facts_by_superseder ON facts(superseded_by)",
        """CREATE VIRTUAL TABLE facts_fts USING fts5(
            text, keywords,
            content='facts', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        )""",
        """CREATE TRIGGER facts_ai AFTER INSERT ON facts BEGIN
            INSERT INTO facts_fts(rowid, text, keywords)
            VALUES (new.id, new.text, new.keywords);
        END""",
        """CREATE TRIGGER facts_ad AFTER DELETE ON facts BEGIN
            INSERT INTO facts_fts(facts_fts, rowid, text, keywords)
            VALUES ('delete', old.id, old.text, old.keywords);
        END""",
        """CREATE TRIGGER facts_au AFTER UPDATE OF text, keywords ON facts BEGIN
            INSERT INTO facts_fts(facts_fts, rowid, text, keywords)
            VALUES ('delete', old.id, old.text, old.keywords);
            INSERT INTO facts_fts(rowid, text, keywords)
            VALUES (new.id, new.text, new.keywords);
        END""",
    )


@migration
def m003_long_term(conn: sqlite3.Connection) -> None:
    fts = "tokenize='porter unicode61 remove_diacritics 2'"
    _run(
        conn,
        "ALTER TABLE facts ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE facts ADD COLUMN importance REAL NOT NULL DEFAULT 0.5",
        """CREATE TABLE fact_turns (
            fact_id INTEGER NOT NULL REFERENCES facts(id) ON DELETE CASCADE,
            turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
            PRIMARY KEY (fact_id, turn_id)
        )""",
        "CREATE INDEX fact_turns_by_turn ON fact_turns(turn_id)",
        """INSERT INTO fact_turns (fact_id, turn_id)
           SELECT id, source_turn_id FROM facts WHERE source_turn_id IS NOT NULL""",
        f"CREATE VIRTUAL TABLE turns_fts USING fts5(content, content='turns', "
        f"content_rowid='id', {fts})",
        "INSERT INTO turns_fts (turns_fts) VALUES ('rebuild')",
        """CREATE TRIGGER turns_ai AFTER INSERT ON turns BEGIN
            INSERT INTO turns_fts(rowid, content) VALUES (new.id, new.content);
        END""",
        """CREATE TRIGGER turns_ad AFTER DELETE ON turns BEGIN
            INSERT INTO turns_fts(turns_fts, rowid, content) VALUES ('delete', old.id, old.content);
            DELETE FROM embeddings WHERE kind = 'turn' AND item_id = old.id;
        END""",
        """CREATE TRIGGER turns_au AFTER UPDATE OF content ON turns BEGIN
            INSERT INTO turns_fts(turns_fts, rowid, content) VALUES ('delete', old.id, old.content);
            INSERT INTO turns_fts(rowid, content) VALUES (new.id, new.content);
            DELETE FROM embeddings WHERE kind = 'turn' AND item_id = old.id;
        END""",
        """CREATE TABLE summaries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            session_id INTEGER NOT NULL UNIQUE REFERENCES sessions(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            turn_ids TEXT NOT NULL,
            created_at TEXT NOT NULL,
            pinned INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX summaries_by_user ON summaries(user_id, created_at)",
        f"CREATE VIRTUAL TABLE summaries_fts USING fts5(text, content='summaries', "
        f"content_rowid='id', {fts})",
        """CREATE TRIGGER summaries_ai AFTER INSERT ON summaries BEGIN
            INSERT INTO summaries_fts(rowid, text) VALUES (new.id, new.text);
        END""",
        """CREATE TRIGGER summaries_ad AFTER DELETE ON summaries BEGIN
            INSERT INTO summaries_fts(summaries_fts, rowid, text)
            VALUES ('delete', old.id, old.text);
            DELETE FROM embeddings WHERE kind = 'summary' AND item_id = old.id;
        END""",
        """CREATE TRIGGER summaries_au AFTER UPDATE OF text ON summaries BEGIN
            INSERT INTO summaries_fts(summaries_fts, rowid, text)
            VALUES ('delete', old.id, old.text);
            INSERT INTO summaries_fts(rowid, text) VALUES (new.id, new.text);
            DELETE FROM embeddings WHERE kind = 'summary' AND item_id = old.id;
        END""",
        """CREATE TABLE embeddings (
            kind TEXT NOT NULL CHECK (kind IN ('turn', 'fact', 'summary')),
            item_id INTEGER NOT NULL,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (kind, item_id)
        )""",
        "CREATE INDEX embeddings_by_user ON embeddings(user_id, model)",
        """CREATE TRIGGER facts_ad_embeddings AFTER DELETE ON facts BEGIN
            DELETE FROM embeddings WHERE kind = 'fact' AND item_id = old.id;
        END""",
        """CREATE TRIGGER facts_au_embeddings AFTER UPDATE OF text ON facts BEGIN
            DELETE FROM embeddings WHERE kind = 'fact' AND item_id = old.id;
        END""",
    )


@migration
def m004_flagged_replies(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        "ALTER TABLE turns ADD COLUMN flagged INTEGER NOT NULL DEFAULT 0 "
        "CHECK (flagged IN (0, 1))",
    )



@migration
def m005_agenda(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """CREATE TABLE agenda (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            what TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('reminder', 'plan')),
            when_utc TEXT NOT NULL,
            tz TEXT NOT NULL,
            all_day INTEGER NOT NULL DEFAULT 0 CHECK (all_day IN (0, 1)),
            rrule TEXT,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'done', 'snoozed', 'cancelled')),
            snoozed_until TEXT,
            source_turn_id INTEGER REFERENCES turns(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            followed_up_at TEXT,
            uid TEXT NOT NULL,
            UNIQUE (user_id, uid)
        )""",
        "CREATE INDEX agenda_by_user ON agenda(user_id, status, when_utc)",
        "CREATE INDEX agenda_by_source ON agenda(source_turn_id)",
        """CREATE TABLE agenda_fires (
            item_id INTEGER NOT NULL REFERENCES agenda(id) ON DELETE CASCADE,
            due_at TEXT NOT NULL,
            claimed_at TEXT NOT NULL,
            shown_at TEXT,
            done_at TEXT,
            PRIMARY KEY (item_id, due_at)
        )""",
        "CREATE INDEX agenda_fires_unshown ON agenda_fires(shown_at, item_id)",
    )


@migration
def m006_agenda_notices(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """CREATE TABLE agenda_notices (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            kind TEXT NOT NULL
                CHECK (kind IN ('reminder', 'briefing', 'follow_up', 'check_in')),
            given_at TEXT NOT NULL,
            turn_id INTEGER REFERENCES turns(id) ON DELETE SET NULL
        )""",
        "CREATE INDEX agenda_notices_by_user ON agenda_notices(user_id, kind, given_at)",
    )


def _table_names(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows}


def applied(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations recorded in the database, in the order applied."""
    if "_migrations" not in _table_names(conn):
        return []
    rows = conn.execute("SELECT name FROM _migrations ORDER BY rowid").fetchall()
    return [row[0] for row in rows]


def check(conn: sqlite3.Connection, path: Path) -> list[str]:
    """Refuse a database this version cannot use; return the pending migration names.

    Reads only: a refused database is left exactly as it was.
    """
    tables = _table_names(conn)
    if "_migrations" not in tables and tables - {"sqlite_sequence"}:
        raise StoreError(
            f"{path} is an SQLite database but not a companion store; it was left untouched "
            "(choose another data directory or move the file aside)"
        )
    done = applied(conn)
    known = {name for name, _ in MIGRATIONS}
    unknown = [name for name in done if name not in known]
    if unknown:
        raise StoreError(
            f"{path} was written by a newer version of companion (unknown schema "
            f"migrations: {', '.join(unknown)}); upgrade companion to open it. "
            "The file was left untouched."
        )
    return [name for name, _ in MIGRATIONS if name not in done]


def migrate(conn: sqlite3.Connection, path: Path) -> list[str]:
    """Apply the pending migrations, each in its own transaction; return their names.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Another process
    may migrate at the same time: each step re-reads what is applied under the
    write lock, so nothing is applied twice.
    """
    ran: list[str] = []
    for name, fn in MIGRATIONS:
        if name in applied(conn):
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS _migrations ("
                "name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            if name not in applied(conn):
                fn(conn)
                conn.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                    (name, datetime.now(UTC).isoformat(timespec="microseconds")),
                )
                ran.append(name)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return ran


def schema_version(conn: sqlite3.Connection) -> int:
    """How many migrations the database has applied."""
    return len(applied(conn))
