"""The SQLite store: migrations, transactions, sessions, turns, state, errors."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from companion.errors import InputError, StoreCorruptError, StoreError, StoreLockedError
from companion.memory import SQLiteMemory, Store
from companion.memory.migrations import MIGRATIONS

NOW = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "companion.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    with Store.open(path) as s:
        yield s


def at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


# -- opening and migrations ------------------------------------------------------------


def test_open_creates_folders_and_file_and_records_migrations(store: Store, path: Path) -> None:
    assert path.is_file()
    assert store.path == path
    assert store.migrations() == [name for name, _ in MIGRATIONS]
    rows = store.conn.execute("SELECT name, applied_at FROM _migrations").fetchall()
    for row in rows:
        assert datetime.fromisoformat(row["applied_at"]).tzinfo is not None


def test_wal_foreign_keys_and_busy_timeout_are_on(store: Store) -> None:
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000


def test_reopen_keeps_data_and_does_not_migrate_again(path: Path) -> None:
    with Store.open(path) as s:
        session = s.start_session("theo", at(0))
        s.add_turn("theo", session.id, "user", "hello", at(1))
        s.save_state("theo", "Samantha", {"mood": 0.5}, at(1))
        applied = s.conn.execute("SELECT name, applied_at FROM _migrations").fetchall()
    with Store.open(path) as s:
        assert [t.content for t in s.recent_turns("theo", 10)] == ["hello"]
        assert s.load_state("theo", "Samantha") == {"mood": 0.5}
        again = s.conn.execute("SELECT name, applied_at FROM _migrations").fetchall()
        assert [tuple(r) for r in again] == [tuple(r) for r in applied]


def test_a_newer_schema_is_refused_untouched(path: Path) -> None:
    Store.open(path).close()
    with closing(sqlite3.connect(path)) as other:
        other.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', '2030-01-01')")
        other.commit()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer version.*m999_from_the_future.*upgrade"):
        Store.open(path)
    assert path.read_bytes() == before


def test_another_programs_database_is_refused_untouched(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as other:
        other.execute("CREATE TABLE notes (body TEXT)")
        other.commit()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a companion store"):
        Store.open(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "garbage",
    [b"this is not a database at all\n" * 200, bytes(range(256)) * 16, b"\x00\xff" * 3000],
)
def test_garbage_file_is_corrupt_and_left_untouched(path: Path, garbage: bytes) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(garbage)
    with pytest.raises(StoreCorruptError) as info:
        Store.open(path)
    message = str(info.value)
    assert str(path) in message and "untouched" in message and "move it aside" in message
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert path.read_bytes() == garbage


def test_damaged_pages_are_corrupt_and_left_untouched(path: Path) -> None:
    with Store.open(path) as s:
        session = s.start_session("theo", at(0))
        for i in range(300):
            s.add_turn("theo", session.id, "user", f"message {i} " + "x" * 100, at(i))
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for offset in range(page * 2, min(len(data), page * 6)):  # pages 3 to 6: schema/content
        data[offset] = 0xA5
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError, match=re.escape(str(path))):
        Store.open(path)
    assert path.read_bytes() == bytes(data)


def test_locked_database_at_open(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreLockedError, match=re.escape(str(path)) + ".*another companion"):
            Store.open(path, timeout=0.2)
        other.execute("ROLLBACK")


def test_locked_database_on_write_then_usable_again(path: Path) -> None:
    with Store.open(path, timeout=0.2) as s:
        session = s.start_session("theo", at(0))
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StoreLockedError, match=re.escape(str(path))) as info:
                s.add_turn("theo", session.id, "user", "hello", at(1))
            assert isinstance(info.value.__cause__, sqlite3.OperationalError)
            other.execute("ROLLBACK")
        assert s.count_turns("theo") == 0
        s.add_turn("theo", session.id, "user", "hello again", at(2))
        assert s.count_turns("theo") == 1


def test_unwritable_location_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create"):
        Store.open(blocker / "sub" / "companion.db")


def test_closed_store_refuses_work(path: Path) -> None:
    s = Store.open(path)
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.users()


# -- transactions ----------------------------------------------------------------------


def test_exception_rolls_back_everything_in_the_transaction(store: Store) -> None:
    session = store.start_session("theo", at(0))
    with pytest.raises(RuntimeError), store.transaction():
        store.add_turn("theo", session.id, "user", "one", at(1))
        store.save_state("theo", "Samantha", {"x": 1}, at(1))
        raise RuntimeError("crash between writes")
    assert store.count_turns("theo") == 0
    assert store.load_state("theo", "Samantha") is None
    assert not store.conn.in_transaction
    store.add_turn("theo", session.id, "user", "two", at(2))
    assert store.count_turns("theo") == 1


def test_nested_transaction_rolls_back_only_the_inner_block(store: Store) -> None:
    session = store.start_session("theo", at(0))
    with store.transaction():
        store.add_turn("theo", session.id, "user", "kept", at(1))
        with pytest.raises(ValueError), store.transaction():
            store.add_turn("theo", session.id, "user", "undone", at(2))
            raise ValueError("inner failure")
        with store.transaction():
            store.add_turn("theo", session.id, "user", "also kept", at(3))
    assert [t.content for t in store.session_turns(session.id)] == ["kept", "also kept"]


def test_outer_failure_undoes_committed_inner_blocks(store: Store) -> None:
    session = store.start_session("theo", at(0))
    with pytest.raises(KeyError), store.transaction():
        with store.transaction():
            store.add_turn("theo", session.id, "user", "inner", at(1))
        raise KeyError("outer")
    assert store.count_turns("theo") == 0


def test_integrity_errors_are_not_disguised(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as conn:
        conn.execute("INSERT INTO users (id, created_at) VALUES (NULL, 'x')")


# -- sessions and turns ----------------------------------------------------------------


def test_turns_round_trip(store: Store) -> None:
    session = store.start_session("theo", at(0))
    assert session.started_at == at(0) and session.ended_at is None
    user = store.add_turn("theo", session.id, "user", "Hi ✨ — \"quotes\"", at(1))
    reply = store.add_turn("theo", session.id, "assistant", "Hey", at(2), interrupted=True)
    assert store.turn(user.id) == user
    assert store.turn(reply.id) == reply and reply.interrupted
    assert store.turn(10_000) is None
    assert store.session_turns(session.id) == [user, reply]
    assert user.created_at.tzinfo is not None
    store.end_session(session.id, at(3))
    ended = store.session(session.id)
    assert ended is not None and ended.ended_at == at(3)


def test_times_are_stored_as_utc_text(store: Store) -> None:
    plus_two = datetime(2026, 11, 29, 22, 0, tzinfo=timezone(timedelta(hours=2)))
    session = store.start_session("theo", plus_two)
    raw = store.conn.execute("SELECT started_at FROM sessions").fetchone()[0]
    assert raw == "2026-11-29T20:00:00.000000+00:00"
    assert session.started_at == plus_two and session.started_at.utcoffset() == timedelta(0)


def test_recent_turns_cross_sessions_oldest_first(store: Store) -> None:
    first = store.start_session("theo", at(0))
    for i in range(3):
        store.add_turn("theo", first.id, "user", f"a{i}", at(i))
    second = store.start_session("theo", at(10))
    for i in range(3):
        store.add_turn("theo", second.id, "assistant", f"b{i}", at(10 + i))
    assert [t.content for t in store.recent_turns("theo", 4)] == ["a2", "b0", "b1", "b2"]
    assert store.recent_turns("theo", 0) == []
    assert store.count_turns("theo") == 6


def test_last_session_skips_empty_and_excluded(store: Store) -> None:
    assert store.last_session("theo") is None
    talked = store.start_session("theo", at(0))
    store.add_turn("theo", talked.id, "user", "hi", at(1))
    store.start_session("theo", at(5))  # opened, nothing said
    current = store.start_session("theo", at(10))
    store.add_turn("theo", current.id, "user", "back", at(11))
    last = store.last_session("theo", exclude=current.id)
    assert last is not None and last.id == talked.id
    latest = store.last_session("theo")
    assert latest is not None and latest.id == current.id


def test_turns_belong_to_their_users_session(store: Store) -> None:
    session = store.start_session("theo", at(0))
    with pytest.raises(ValueError, match="not a session of user"):
        store.add_turn("amy", session.id, "user", "hi", at(1))
    with pytest.raises(ValueError, match="not a session"):
        store.add_turn("theo", 999, "user", "hi", at(1))
    with pytest.raises(ValueError, match="no session"):
        store.end_session(999, at(1))
    with pytest.raises(ValueError, match="role"):
        store.add_turn("theo", session.id, "narrator", "hi", at(1))  # type: ignore[arg-type]


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.start_session("theo", datetime(2026, 1, 1))


@pytest.mark.parametrize("bad", ["", "   ", "x" * 65, "a\nb", "tab\there", "nul\x00", " lead"])
def test_bad_user_ids_are_input_errors(store: Store, bad: str) -> None:
    with pytest.raises(InputError):
        store.start_session(bad, at(0))
    with pytest.raises(InputError):
        store.recent_turns(bad, 5)


@pytest.mark.parametrize("good", ["theo", "x" * 64, "Zoë 🎧", "user@example.com", "a b"])
def test_good_user_ids(store: Store, good: str) -> None:
    session = store.start_session(good, at(0))
    store.add_turn(good, session.id, "user", "hi", at(1))
    assert store.users() == [good]


# -- persona state ---------------------------------------------------------------------


def test_state_round_trip_and_replace(store: Store) -> None:
    assert store.load_state("theo", "Samantha") is None
    store.save_state("theo", "Samantha", {"mood": {"valence": 0.2}, "note": "café"}, at(0))
    store.save_state("theo", "Samantha", {"mood": {"valence": 0.4}}, at(1))
    store.save_state("theo", "Other", {"x": 1}, at(1))
    assert store.load_state("theo", "Samantha") == {"mood": {"valence": 0.4}}
    assert store.load_state("theo", "Other") == {"x": 1}
    assert store.load_state("amy", "Samantha") is None


# -- export and erase ------------------------------------------------------------------


def _fill(store: Store, user: str) -> None:
    memory = SQLiteMemory(store)
    session = store.start_session(user, at(0))
    with store.transaction():
        turn = store.add_turn(user, session.id, "user", "My sister Maya loves jazz.", at(1))
        memory.remember(turn)
        turn = store.add_turn(user, session.id, "user", "I live in Boston", at(2))
        memory.remember(turn)
    store.add_turn(user, session.id, "assistant", "Lovely!", at(3), interrupted=True)
    store.end_session(session.id, at(4))
    store.save_state(user, "Samantha", {"mood": {"valence": 0.3}}, at(4))


def test_export_user_is_json_and_complete(store: Store) -> None:
    _fill(store, "theo")
    _fill(store, "amy")
    data = store.export_user("theo")
    again = json.loads(json.dumps(data))
    assert again == data
    assert data["user_id"] == "theo"
    assert data["schema_version"] == len(MIGRATIONS)
    assert len(data["sessions"]) == 1 and data["sessions"][0]["ended_at"]
    assert [t["content"] for t in data["turns"]] == [
        "My sister Maya loves jazz.", "I live in Boston", "Lovely!"
    ]
    assert data["turns"][2]["interrupted"] is True
    assert {f["text"] for f in data["facts"]} == {
        "User's sister is called Maya.", "User's sister Maya loves jazz.", "User lives in Boston."
    }
    assert [t["flagged"] for t in data["turns"]] == [False, False, False]
    assert data["states"]["Samantha"]["state"] == {"mood": {"valence": 0.3}}
    other_ids = {t["id"] for t in store.export_user("amy")["turns"]}
    assert other_ids.isdisjoint(t["id"] for t in data["turns"])


def test_erase_user_removes_everything_including_the_index(store: Store) -> None:
    _fill(store, "theo")
    _fill(store, "amy")
    counts = store.erase_user("theo")
    assert counts == {"facts": 3, "states": 1, "turns": 3, "sessions": 1}
    assert store.users() == ["amy"]
    assert store.export_user("theo")["turns"] == []
    conn = store.conn
    rows = conn.execute(
        "SELECT rowid FROM facts_fts WHERE facts_fts MATCH 'maya'"
    ).fetchall()
    amy_fact_ids = {
        r[0] for r in conn.execute("SELECT id FROM facts WHERE user_id = 'amy'").fetchall()
    }
    assert {r[0] for r in rows} <= amy_fact_ids and len(rows) == 2  # her two facts on Maya
    conn.execute("INSERT INTO facts_fts (facts_fts) VALUES ('integrity-check')")
    assert store.erase_user("nobody") == {"facts": 0, "states": 0, "turns": 0, "sessions": 0}
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
