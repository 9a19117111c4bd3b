"""Encryption at rest: ``companion encrypt`` / ``decrypt`` on a seeded data directory.

Checked in the bytes on disk: after encrypting, no stored text is in any file of
the data directory (database, -wal, -shm, -journal), also after new turns; a
wrong key is one line and leaves every byte as it was; decrypting gives back a
plain SQLite file with everything in it.
"""

from __future__ import annotations

import getpass
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytest.importorskip("sqlcipher3")
keyring = pytest.importorskip("keyring")

from keyring.backend import KeyringBackend  # noqa: E402
from keyring.backends import fail  # noqa: E402

from companion.cli.main import main  # noqa: E402
from companion.errors import StoreError, StoreKeyError, StoreLockedError  # noqa: E402
from companion.memory import HashEmbedder, LongTermMemory, Store, crypto, keys  # noqa: E402
from companion.testing import open_test_companion  # noqa: E402

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SECRETS = ["Zorbalina", "Quixotic Heron", "Vantablack"]
SAID = ["My sister is called Zorbalina.", "I work at Quixotic Heron.", "I love Vantablack."]


class MemoryKeyring(KeyringBackend):
    """An OS keyring that lives in a dict (for the keyring path, without a desktop)."""

    priority = 5  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("no such entry")


@pytest.fixture(autouse=True)
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No OS keyring unless a test installs one; a fresh process's key cache."""
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    monkeypatch.setattr(keys, "_phrase", None)
    monkeypatch.setattr(keys, "_derived", {})
    yield
    keyring.set_keyring(before)


@pytest.fixture
def db(companion_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store holding three facts of user theo, before any encryption."""
    monkeypatch.setenv("COMPANION_PASSPHRASE", "correct horse")
    path = companion_home / "companion.db"
    with Store.open(path) as store:
        memory = LongTermMemory(store, embedder=HashEmbedder())
        session = store.start_session("theo", NOW)
        for text in SAID:
            with store.transaction():
                memory.remember(store.add_turn("theo", session.id, "user", text, NOW))
    return path


def files(home: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(home.iterdir()) if p.is_file()}


def leaks(home: Path) -> list[str]:
    """``file: secret`` for every stored secret readable in a file of the data directory."""
    return [f"{name}: {s}" for name, data in files(home).items() for s in SECRETS
            if s.encode() in data or s.encode("utf-16-le") in data]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_encrypted_store_holds_no_fact_and_decrypt_restores(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = db.parent
    assert leaks(home)  # the check can see them before
    rc, out, err = cli(capsys, "encrypt")
    assert rc == 0, err
    assert "passphrase" in out
    assert not leaks(home)
    assert not db.read_bytes().startswith(crypto.HEADER)
    assert db.stat().st_mode & 0o777 == 0o600
    assert crypto.marker_path(db).stat().st_mode & 0o777 == 0o600
    assert sorted(files(home)) == ["companion.db", "companion.db.encrypted"]  # no leftovers
    # Every open uses the key: memory CLI (FTS5 and vector recall), then a chat turn.
    rc, out, err = cli(capsys, "memory", "list", "--user", "theo")
    assert rc == 0, err
    assert "Zorbalina" in out
    rc, out, err = cli(capsys, "memory", "search", "sister", "--user", "theo")
    assert rc == 0, err
    assert "Zorbalina" in out.splitlines()[0]
    with Store.open(db) as store:  # the vector index reads its float32 blobs back
        memory = LongTermMemory(store, embedder=HashEmbedder())
        assert memory.index is not None
        query = HashEmbedder().embed(["I love Vantablack."])[0]
        ((kind, _), score), *_ = memory.index.search("theo", query, 1)
        assert kind == "turn" and score > 0.99
    with open_test_companion(home, user="theo") as companion:
        companion.say("My brother is called Vantablack Junior.").text()
        assert not leaks(home)  # new turn, written through the WAL: encrypted too
    assert not leaks(home)
    # And back.
    rc, out, err = cli(capsys, "decrypt")
    assert rc == 0, err
    assert db.read_bytes().startswith(crypto.HEADER)
    assert sorted(files(home)) == ["companion.db"]
    assert db.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(db) as conn:
        texts = [r[0] for r in conn.execute("SELECT text FROM facts ORDER BY id")]
        found = conn.execute("SELECT count(*) FROM facts_fts WHERE facts_fts MATCH 'zorbalina'")
        assert found.fetchone() == (1,)
    assert any("Vantablack Junior" in t for t in texts)
    assert any("Zorbalina" in t for t in texts)


def test_a_wrong_passphrase_is_one_line_and_leaves_every_byte(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli(capsys, "encrypt")[0] == 0
    before = files(db.parent)
    monkeypatch.setenv("COMPANION_PASSPHRASE", "wrong horse")
    for command in (["memory", "list", "--user", "theo"], ["decrypt"], ["encrypt"]):
        rc, out, err = cli(capsys, *command)
        assert rc == 2
        assert len(err.strip().splitlines()) == 1, err
        assert ("wrong passphrase" in err) or ("already encrypted" in err)
        assert files(db.parent) == before
    with pytest.raises(StoreKeyError, match="wrong passphrase"):
        Store.open(db)
    assert files(db.parent) == before
    monkeypatch.setenv("COMPANION_PASSPHRASE", "correct horse")
    with Store.open(db) as store:
        assert store.count_turns("theo") == 3


def test_the_file_opens_with_the_stock_sqlcipher_passphrase(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Our own key derivation is SQLCipher's: any SQLCipher tool opens the file."""
    import sqlcipher3

    assert cli(capsys, "encrypt")[0] == 0
    conn = sqlcipher3.connect(str(db))
    try:
        conn.execute("PRAGMA key = 'correct horse'")
        assert conn.execute("SELECT count(*) FROM facts").fetchone() == (3,)
    finally:
        conn.close()


def test_the_key_lives_in_the_os_keyring_when_there_is_one(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    monkeypatch.delenv("COMPANION_PASSPHRASE")
    rc, out, err = cli(capsys, "encrypt")
    assert rc == 0, err
    assert "OS keyring" in out
    assert crypto.encryption(db) is not None and not leaks(db.parent)
    (entry,) = ring.entries.values()
    assert len(entry) == 64  # a random 256-bit key, not derived from anything
    rc, out, err = cli(capsys, "memory", "list", "--user", "theo")
    assert rc == 0 and "Zorbalina" in out
    saved = dict(ring.entries)
    ring.entries.clear()
    before = files(db.parent)
    rc, out, err = cli(capsys, "memory", "list", "--user", "theo")
    assert rc == 2 and "not in the OS keyring" in err and len(err.splitlines()) == 1
    assert files(db.parent) == before
    ring.entries.update(saved)
    assert cli(capsys, "decrypt")[0] == 0
    assert ring.entries == {}  # the key locks nothing any more
    assert "Zorbalina" in cli(capsys, "memory", "list", "--user", "theo")[1]


def test_a_typed_passphrase_is_asked_once_per_process(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def ask(prompt: str = "") -> str:
        asked.append(prompt)
        return "typed words"

    monkeypatch.delenv("COMPANION_PASSPHRASE")
    monkeypatch.setattr(getpass, "getpass", ask)
    assert cli(capsys, "encrypt", "--passphrase")[0] == 0
    assert len(asked) == 2  # the new passphrase, then again to confirm
    keys.forget_typed()  # as a new process would start
    for _ in range(3):
        with Store.open(db) as store:
            assert store.count_turns("theo") == 3
    assert len(asked) == 3


def test_without_a_terminal_or_variable_it_says_what_to_do(
    db: Path, capsys: pytest.CaptureFixture[str], companion_home: Path
) -> None:
    assert cli(capsys, "encrypt")[0] == 0
    env = {k: v for k, v in os.environ.items() if k != "COMPANION_PASSPHRASE"}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    done = subprocess.run(
        [sys.executable, "-m", "companion", "memory", "list", "--user", "theo"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60,
        start_new_session=True,  # no controlling terminal: getpass cannot ask
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "companion: error: the store is encrypted: set COMPANION_PASSPHRASE, or run from a "
        "terminal to type the passphrase"
    ]


def test_without_the_library_encrypt_says_how_to_install(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = files(db.parent)
    monkeypatch.setitem(sys.modules, "sqlcipher3", None)  # as if not installed
    rc, out, err = cli(capsys, "encrypt")
    assert rc == 2
    assert err.strip().splitlines() == [
        "companion: error: encryption needs the SQLCipher library: "
        "pip install 'companion[encrypt]' (SQLCipher and keyring)"
    ]
    assert files(db.parent) == before


def test_encrypt_refuses_while_a_chat_has_the_store_open(db: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from companion.memory import Store; s = Store.open(sys.argv[1]); "
         "s.count_turns('theo'); print('open', flush=True); sys.stdin.read()", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        with pytest.raises(StoreLockedError, match="close the chat"):
            crypto.encrypt(db)
    finally:
        holder.communicate("", timeout=30)
    assert crypto.encryption(db) is None and not crypto.marker_path(db).exists()
    assert leaks(db.parent)  # still the plain store, untouched by the refusal
    with Store.open(db) as store:
        assert store.count_turns("theo") == 3


def test_a_conversion_cut_short_leaves_the_plain_store(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replace = os.replace

    def fail_at(target: Path) -> None:
        def fail(src: object, dst: object) -> None:
            if Path(str(dst)) == target:
                raise OSError(28, "No space left on device")
            replace(src, dst)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "replace", fail)

    for target in (crypto.marker_path(db), db):  # before the marker is in place, then after
        fail_at(target)
        with pytest.raises(StoreError, match="No space left on device"):
            crypto.encrypt(db)
        monkeypatch.setattr(os, "replace", replace)
        assert sorted(files(db.parent)) == ["companion.db"]  # no marker, no half-made copy
    with Store.open(db) as store:
        assert store.count_turns("theo") == 3


def test_the_server_opens_the_encrypted_store(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    httpx = pytest.importorskip("httpx")
    from companion.server.testing import open_test_server, serving

    assert cli(capsys, "encrypt")[0] == 0
    server = open_test_server(db.parent, user="theo")
    with serving(server) as base:
        reply = httpx.post(f"{base}/v1/chat/completions", json={
            "model": "Samantha", "user": "theo",
            "messages": [{"role": "user", "content": "What is my sister called?"}],
        }, timeout=30)
    assert reply.status_code == 200, reply.text
    assert not leaks(db.parent)
    with Store.open(db) as store:
        assert store.count_turns("theo") == 5  # three stored before, then this turn


def test_recall_on_an_encrypted_store_starts_from_the_fts5_index(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLCipher bundles a newer SQLite (3.53) whose planner would run each MATCH once
    per turn of the user (255 ms instead of 2 ms at 2,000 turns): every bm25 query of
    recall must scan its FTS5 index first."""
    assert cli(capsys, "encrypt")[0] == 0
    with Store.open(db) as store:
        memory = LongTermMemory(store, embedder=HashEmbedder())
        seen: list[str] = []
        store.conn.set_trace_callback(seen.append)
        assert memory.recall("theo", "what does my sister love")
        store.conn.set_trace_callback(None)
        searches = [sql for sql in seen if "MATCH" in sql and "bm25" in sql]
        assert len(searches) == 3
        for sql in searches:
            plan = store.conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
            assert plan[0][3].startswith("SCAN") and "_fts VIRTUAL TABLE" in plan[0][3], plan


def test_the_chat_keeps_no_file_of_typed_lines_beside_an_encrypted_store(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from companion.cli import chat

    history = db.parent / "history"
    history.write_text("+My sister is called Zorbalina.\n")
    rc, out, err = cli(capsys, "encrypt")
    assert rc == 0, err
    assert f"Note: {history} hold" in out  # the user is told what stays in clear
    history.unlink()

    class Terminal:  # make_reader takes the prompt_toolkit path on a terminal
        def isatty(self) -> bool:
            return True

        def __getattr__(self, name: str) -> object:
            return getattr(sys.__stdout__, name)

    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(sys, "stdout", Terminal())
    chat.make_reader(db.parent)
    assert not history.exists()
