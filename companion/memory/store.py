"""The conversation store: one SQLite file holding sessions, turns, persona state and facts.

Durability: WAL journal with ``synchronous=FULL``; every write runs in a
transaction, so a crash at any moment keeps every committed turn and loses
nothing half-written. The file is never overwritten, truncated or deleted by
us: a file that is not a usable database is reported (:class:`StoreCorruptError`)
and left as it is.

Errors: ``sqlite3`` errors are translated at this boundary (see
:mod:`companion.memory.translate`). A bad user id is an :class:`InputError`; a
naive datetime, an unknown session id or an unknown role is a programming error
(``ValueError``).

One ``Store`` may be shared between threads: a re-entrant lock serializes its
use of the connection, and a transaction belongs to the thread that opened it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from companion.errors import StoreError
from companion.memory import crypto, export, migrations
from companion.memory.codec import (
    check_role,
    check_user_id,
    from_text,
    row_to_session,
    row_to_turn,
    to_text,
)
from companion.memory.translate import corrupt_error, db_errors, sqlite_errors, translate
from companion.types import Role, SessionInfo, Turn


def _create_file(path: Path) -> None:
    """Create the folder (private) and an empty file (private) unless they exist."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(f"cannot create the store {path}: {exc.strerror or exc}") from exc
    os.close(fd)


def _connect(path: Path, timeout: float) -> sqlite3.Connection:
    """Open, verify and migrate; reads only until the file is known to be ours and sound."""
    conn = crypto.connect(path, timeout)  # through SQLCipher, with its key, if encrypted
    try:
        conn.execute(f"PRAGMA busy_timeout = {max(0, int(timeout * 1000))}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")  # deleted text is zeroed, not left behind
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # "file is not a database"
        problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise corrupt_error(path, f"quick_check: {problems[0]}")
        pending = migrations.check(conn, path)
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute("PRAGMA synchronous = FULL")
        if pending:
            migrations.migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


class Store:
    """The SQLite store. Open with :meth:`Store.open`; close with :meth:`close` or ``with``."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(cls, path: Path, *, timeout: float = 5.0) -> Store:
        """Open (creating it and its folders if needed) and migrate the store at ``path``.

        ``timeout`` is how long to wait, in seconds, for another process's lock.
        """
        path = Path(path).expanduser().absolute()
        _create_file(path)
        with sqlite_errors(path):
            conn = _connect(path, timeout)
        return cls(path, conn)

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"<Store {str(self.path)!r} {state}>"

    # -- connection and transactions -------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection, for statements run inside :meth:`transaction`."""
        if self._conn is None:
            raise StoreError(f"the store {self.path} is closed")
        return self._conn

    def close(self) -> None:
        """Close the connection (idempotent). Committed data is already on disk."""
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A re-entrant write transaction.

        The outermost takes the write lock (``BEGIN IMMEDIATE``) and commits on
        success; a nested one is a ``SAVEPOINT``. An exception rolls back what its
        block wrote and propagates (``sqlite3`` errors translated).
        """
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self.conn
            outer = self._depth == 0
            savepoint = f"sp{self._depth}"
            with sqlite_errors(self.path):
                conn.execute("BEGIN IMMEDIATE" if outer else f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield conn
            except BaseException as exc:
                self._depth -= 1
                self._undo(conn, outer, savepoint)
                if isinstance(exc, db_errors()):
                    mapped = translate(exc, self.path)
                    if mapped is not None:
                        raise mapped from exc
                raise
            self._depth -= 1
            with sqlite_errors(self.path):
                try:
                    conn.execute("COMMIT" if outer else f"RELEASE {savepoint}")
                except db_errors():
                    self._undo(conn, outer, savepoint)
                    raise

    def _undo(self, conn: sqlite3.Connection, outer: bool, savepoint: str) -> None:
        if not conn.in_transaction:  # SQLite already rolled back (e.g. disk full)
            return
        with sqlite_errors(self.path):
            if outer:
                conn.execute("ROLLBACK")
            else:
                conn.execute(f"ROLLBACK TO {savepoint}")
                conn.execute(f"RELEASE {savepoint}")

    def reading(self) -> AbstractContextManager[sqlite3.Connection]:
        """The connection for reads, with the store's lock held and errors translated.

        Each statement reads one consistent snapshot; use :meth:`transaction` to
        read several as one.
        """
        return self._reading()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock, sqlite_errors(self.path):
            yield self.conn

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self.reading() as conn:
            return conn.execute(sql, params).fetchall()

    # -- users and sessions ------------------------------------------------------------

    def ensure_user(self, user_id: str, now: datetime) -> None:
        """Record ``user_id`` if it is new (every other row of a user references it)."""
        check_user_id(user_id)
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO users (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
                (user_id, to_text(now)),
            )

    def users(self) -> list[str]:
        """Every user id with something stored, sorted."""
        return [row["id"] for row in self._rows("SELECT id FROM users ORDER BY id")]

    def start_session(self, user_id: str, now: datetime) -> SessionInfo:
        """Begin a new session for ``user_id``."""
        started = to_text(now)
        with self.transaction() as conn:
            self.ensure_user(user_id, now)
            cur = conn.execute(
                "INSERT INTO sessions (user_id, started_at) VALUES (?, ?)", (user_id, started)
            )
        assert cur.lastrowid is not None
        return SessionInfo(id=cur.lastrowid, user_id=user_id, started_at=from_text(started))

    def end_session(self, session_id: int, now: datetime) -> None:
        """Mark a session ended at ``now``."""
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE sessions SET ended_at = ? WHERE id = ?", (to_text(now), session_id)
            )
            if cur.rowcount == 0:
                raise ValueError(f"no session {session_id} in {self.path}")

    def session(self, session_id: int) -> SessionInfo | None:
        rows = self._rows("SELECT * FROM sessions WHERE id = ?", (session_id,))
        return row_to_session(rows[0]) if rows else None

    def sessions(self, user_id: str) -> list[SessionInfo]:
        """All of a user's sessions, oldest first."""
        check_user_id(user_id)
        rows = self._rows("SELECT * FROM sessions WHERE user_id = ? ORDER BY id", (user_id,))
        return [row_to_session(row) for row in rows]

    def last_session(self, user_id: str, *, exclude: int | None = None) -> SessionInfo | None:
        """The most recent session with at least one turn, other than ``exclude``."""
        check_user_id(user_id)
        rows = self._rows(
            """SELECT * FROM sessions AS s
               WHERE s.user_id = ? AND s.id IS NOT ?
                 AND EXISTS (SELECT 1 FROM turns AS t WHERE t.session_id = s.id)
               ORDER BY s.id DESC LIMIT 1""",
            (user_id, exclude),
        )
        return row_to_session(rows[0]) if rows else None

    # -- turns -------------------------------------------------------------------------

    def add_turn(
        self,
        user_id: str,
        session_id: int,
        role: Role,
        content: str,
        now: datetime,
        *,
        interrupted: bool = False,
        flagged: bool = False,
    ) -> Turn:
        """Store one utterance; it is on disk when this returns (or when the
        enclosing transaction commits). ``flagged``: a reply the reply guard
        could not fix (see :class:`~companion.types.Turn`)."""
        check_user_id(user_id)
        check_role(role)
        created = to_text(now)
        with self.transaction() as conn:
            owner = conn.execute(
                "SELECT user_id FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if owner is None or owner["user_id"] != user_id:
                raise ValueError(f"session {session_id} is not a session of user {user_id!r}")
            cur = conn.execute(
                """INSERT INTO turns (user_id, session_id, role, content, created_at,
                                      interrupted, flagged)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (user_id, session_id, role, content, created, int(interrupted), int(flagged)),
            )
        assert cur.lastrowid is not None
        return Turn(
            id=cur.lastrowid,
            user_id=user_id,
            session_id=session_id,
            role=role,
            content=content,
            created_at=from_text(created),
            interrupted=interrupted,
            flagged=flagged,
        )

    def amend_turn(self, turn_id: int, content: str, *, interrupted: bool) -> Turn | None:
        """Replace a stored turn's text (e.g. with the part of a reply that was
        actually spoken before the user cut in); its search vector is dropped so
        it is computed again from the new text. Returns the turn, or None if gone."""
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE turns SET content = ?, interrupted = ? WHERE id = ?",
                (content, int(interrupted), turn_id),
            )
            if cur.rowcount:
                conn.execute(
                    "DELETE FROM embeddings WHERE kind = 'turn' AND item_id = ?", (turn_id,)
                )
        return self.turn(turn_id)

    def delete_turn(self, turn_id: int) -> None:
        """Remove one turn and its search vector (a reply cut off before a word was heard)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM embeddings WHERE kind = 'turn' AND item_id = ?", (turn_id,))
            conn.execute("DELETE FROM turns WHERE id = ?", (turn_id,))

    def recent_turns(self, user_id: str, limit: int) -> list[Turn]:
        """The last ``limit`` turns of the user across sessions, oldest first."""
        check_user_id(user_id)
        if limit <= 0:
            return []
        rows = self._rows(
            """SELECT * FROM (SELECT * FROM turns WHERE user_id = ? ORDER BY id DESC LIMIT ?)
               ORDER BY id""",
            (user_id, limit),
        )
        return [row_to_turn(row) for row in rows]

    def session_turns(self, session_id: int) -> list[Turn]:
        """Every turn of one session, oldest first."""
        rows = self._rows("SELECT * FROM turns WHERE session_id = ? ORDER BY id", (session_id,))
        return [row_to_turn(row) for row in rows]

    def turn(self, turn_id: int) -> Turn | None:
        rows = self._rows("SELECT * FROM turns WHERE id = ?", (turn_id,))
        return row_to_turn(rows[0]) if rows else None

    def count_turns(self, user_id: str) -> int:
        check_user_id(user_id)
        rows = self._rows("SELECT count(*) AS n FROM turns WHERE user_id = ?", (user_id,))
        return int(rows[0]["n"])

    # -- persona state -----------------------------------------------------------------

    def load_state(self, user_id: str, persona: str) -> dict[str, Any] | None:
        """The saved state of ``persona`` towards the user, or None."""
        check_user_id(user_id)
        rows = self._rows(
            "SELECT state FROM persona_states WHERE user_id = ? AND persona = ?",
            (user_id, persona),
        )
        if not rows:
            return None
        state = json.loads(rows[0]["state"])
        if not isinstance(state, dict):
            raise corrupt_error(self.path, f"persona state of {persona!r} is not an object")
        return state

    def save_state(self, user_id: str, persona: str, state: dict[str, Any], now: datetime) -> None:
        """Save (replace) the state of ``persona`` towards the user, as JSON."""
        if not persona:
            raise ValueError("persona name must not be empty")
        text = json.dumps(state, ensure_ascii=False, sort_keys=True, allow_nan=False)
        with self.transaction() as conn:
            self.ensure_user(user_id, now)
            conn.execute(
                """INSERT INTO persona_states (user_id, persona, state, updated_at)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT (user_id, persona)
                   DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at""",
                (user_id, persona, text, to_text(now)),
            )

    # -- the user's data ---------------------------------------------------------------

    def migrations(self) -> list[str]:
        """Names of the schema migrations this database has applied, in order."""
        with self._lock, sqlite_errors(self.path):
            return migrations.applied(self.conn)

    def export_user(self, user_id: str) -> dict[str, Any]:
        """Everything stored about ``user_id`` as JSON-ready data (see :mod:`.export`)."""
        check_user_id(user_id)
        with self.transaction() as conn:
            return export.export_user(conn, user_id)

    def erase_user(self, user_id: str) -> dict[str, int]:
        """Delete everything of ``user_id``; return how many rows of each kind went."""
        check_user_id(user_id)
        with self._lock:
            with self.transaction() as conn:
                counts = export.erase_user(conn, user_id)
            if self._depth == 0:
                self.checkpoint()
        return counts

    def checkpoint(self) -> None:
        """Move committed pages from the WAL into the database file and truncate the WAL
        (best effort: a reader in another process may keep part of it for now)."""
        with self._lock, sqlite_errors(self.path):
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
