"""Encryption at rest (opt-in): the store as a SQLCipher database, through ``sqlcipher3``.

``sqlcipher3`` is a DB-API twin of Python's ``sqlite3`` (same connection, cursor
and row types, same SQL, FTS5 included), so an encrypted store runs the same
code as a plain one: :func:`connect` hands the store either connection.

How a store is known to be encrypted: its marker file (``companion.db.encrypted``,
JSON, no secret in it) says which kind of key locks it (see :mod:`.keys`), and
the database file does not begin with SQLite's plain header. A plain header
wins over the marker, so a conversion cut short at any point leaves a store
that opens. Without the marker an encrypted file reads as "not a database".

Conversion (:func:`encrypt`, :func:`decrypt`) writes a new file next to the
store (0600) with ``sqlcipher_export``, checks it (every table's row count,
``quick_check``, every FTS5 index), fsyncs it and renames it over the store;
it refuses while another process has the store open. A wrong key raises
:class:`~companion.errors.StoreKeyError` before anything is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from companion.errors import InputError, StoreError, StoreKeyError, StoreLockedError
from companion.memory import keys
from companion.memory.keys import NewKey

#: The first bytes of every plain SQLite database.
HEADER = b"SQLite format 3\x00"
#: What a user runs to get the cipher library.
INSTALL = "pip install 'companion[encrypt]' (SQLCipher and keyring)"

_RAW_KEY = re.compile(r"x'[0-9a-f]{64,96}'")
_NOTADB = 26


def marker_path(path: Path) -> Path:
    """The file that records how the store at ``path`` is encrypted."""
    return path.with_name(path.name + ".encrypted")


def encryption(path: Path) -> dict[str, str] | None:
    """How the store at ``path`` is encrypted (its marker), or None when it is plain."""
    try:
        with path.open("rb") as f:
            head = f.read(len(HEADER))
    except OSError:
        return None  # missing or unreadable: the plain path reports it
    marker = marker_path(path)
    if not head or head == HEADER or not marker.exists():
        return None
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreKeyError(f"cannot read {marker}: {exc}; {path} was left untouched") from exc
    if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
        raise StoreKeyError(f"{marker} is damaged; {path} was left untouched")
    return cast(dict[str, str], info)


def connect(path: Path, timeout: float) -> sqlite3.Connection:
    """A connection to the store at ``path`` with rows as ``Row``: through ``sqlite3``
    when it is plain, through ``sqlcipher3`` with its key when it is encrypted."""
    info = encryption(path)
    if info is None:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        return conn
    driver = _driver()
    key = keys.store_key(path, info)
    conn = driver.connect(str(path), timeout=timeout, isolation_level=None,
                          check_same_thread=False)
    try:
        conn.row_factory = driver.Row
        _unlock(driver, conn, path, info, key)
    except BaseException:
        conn.close()
        raise
    keys.remember(path, info, key)
    return cast(sqlite3.Connection, conn)


def encrypt(path: Path, *, passphrase: bool = False) -> NewKey:
    """Convert the plain store at ``path`` into an encrypted one; return its new key."""
    if encryption(path) is not None:
        raise InputError(f"{path} is already encrypted")
    driver = _driver()
    new = keys.new_key(passphrase=passphrase)
    marker = marker_path(path)
    try:
        _convert(driver, path, None, new.sql, before_rename=lambda: _write_marker(marker, new.info))
    except BaseException:
        if encryption(path) is None:
            marker.unlink(missing_ok=True)
            keys.drop_key(new.info)
        raise
    return new


def decrypt(path: Path) -> None:
    """Convert the encrypted store at ``path`` back into a plain SQLite file."""
    info = encryption(path)
    if info is None:
        raise InputError(f"{path} is not encrypted")
    driver = _driver()
    _convert(driver, path, (info, keys.store_key(path, info)), "", before_rename=lambda: None)
    marker_path(path).unlink(missing_ok=True)
    _fsync_dir(path.parent)
    keys.drop_key(info)


# -- the pieces -------------------------------------------------------------------------


def require() -> None:
    """Raise a :class:`StoreError` saying how to install SQLCipher when it is missing."""
    _driver()


def _driver() -> Any:
    try:
        import sqlcipher3
    except ImportError as exc:
        raise StoreError(f"encryption needs the SQLCipher library: {INSTALL}") from exc
    return sqlcipher3


def _unlock(driver: Any, conn: Any, path: Path, info: dict[str, str], key: str) -> None:
    """Give ``conn`` its key and read the schema with it; a wrong key is a StoreKeyError."""
    if not _RAW_KEY.fullmatch(key):
        raise ValueError("only raw keys go into PRAGMA key")
    conn.execute("PRAGMA cipher_log_level = NONE")  # else a wrong key logs to stderr
    conn.execute(f"PRAGMA key = \"{key}\"")
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except driver.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) != _NOTADB:
            raise
        if info.get("key") == "keyring":
            raise StoreKeyError(
                f"the key in the OS keyring does not open {path} (or the file is damaged); "
                "it was left untouched"
            ) from exc
        keys.forget_typed()
        raise StoreKeyError(
            f"wrong passphrase for {path} (or the file is damaged); it was left untouched"
        ) from exc


def _convert(
    driver: Any,
    path: Path,
    source: tuple[dict[str, str], str] | None,
    target_key: str,
    *,
    before_rename: Callable[[], None],
) -> None:
    """Write the store at ``path`` again under ``target_key`` ('' for plain), check
    the copy, and put it in the store's place. ``source`` is the store's
    (marker, key) when it is encrypted."""
    src = driver.connect(str(path), timeout=2.0, isolation_level=None)
    tmp: Path | None = None
    try:
        if source is not None:
            _unlock(driver, src, path, *source)
        _take_alone(driver, src, path)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".converting",
                                    dir=path.parent)  # 0600
        os.close(fd)
        tmp = Path(name)
        src.execute("ATTACH DATABASE ? AS dst KEY ?", (str(tmp), target_key))
        src.execute("SELECT sqlcipher_export('dst')")
        version = int(src.execute("PRAGMA main.user_version").fetchone()[0])
        src.execute(f"PRAGMA dst.user_version = {version}")
        src.execute("DETACH DATABASE dst")
        _check_copy(src, path, tmp, target_key)
        _fsync(tmp)
        before_rename()
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except driver.Error as exc:
        raise StoreError(f"cannot convert {path}: {exc}; it was left as it was") from exc
    except OSError as exc:
        raise StoreError(f"cannot convert {path}: {exc.strerror or exc}; "
                         "it was left as it was") from exc
    finally:
        src.close()
        if tmp is not None:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}-journal").unlink(missing_ok=True)


def _take_alone(driver: Any, conn: Any, path: Path) -> None:
    """Hold the store exclusively; refused while any other process has it open."""
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        if str(mode).lower() != "delete":
            raise driver.OperationalError("database is locked")
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("COMMIT")
    except driver.OperationalError as exc:
        raise StoreLockedError(
            f"{path} is open in another companion process (close the chat, voice and "
            "server first, then retry)"
        ) from exc


def _check_copy(conn: Any, path: Path, copy: Path, key: str) -> None:
    """The copy opens with ``key``, passes quick_check and every FTS5 integrity check,
    and has as many rows in every table as the store."""
    conn.execute("ATTACH DATABASE ? AS chk KEY ?", (str(copy), key))
    try:
        problems = [r[0] for r in conn.execute("PRAGMA chk.quick_check").fetchall()]
        if problems != ["ok"]:
            raise StoreError(f"the converted copy of {path} is damaged ({problems[0]}); "
                             "the store was left as it was")
        tables = conn.execute(
            "SELECT name, coalesce(sql, '') FROM main.sqlite_master WHERE type = 'table'"
        ).fetchall()
        for name, sql in tables:
            quoted = '"' + str(name).replace('"', '""') + '"'
            if str(sql).upper().startswith("CREATE VIRTUAL TABLE"):
                if "FTS5" in str(sql).upper():
                    conn.execute(f"INSERT INTO chk.{quoted}({quoted}) VALUES ('integrity-check')")
                continue
            (a,) = conn.execute(f"SELECT count(*) FROM main.{quoted}").fetchone()
            (b,) = conn.execute(f"SELECT count(*) FROM chk.{quoted}").fetchone()
            if a != b:
                raise StoreError(f"the converted copy of {path} lost rows of {name} "
                                 f"({a} -> {b}); the store was left as it was")
    finally:
        conn.execute("DETACH DATABASE chk")


def _write_marker(marker: Path, info: dict[str, str]) -> None:
    data = json.dumps({"format": "sqlcipher4", **info}, indent=1) + "\n"
    tmp = marker.with_name(marker.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            os.write(fd, data.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, marker)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(marker.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems cannot fsync a folder
        _fsync(path)
