"""Translate ``sqlite3`` errors into the store's errors, at the boundary.

Locked or busy past the timeout becomes :class:`StoreLockedError`; a file that
is not a database or is damaged becomes :class:`StoreCorruptError`; other
operational failures (disk full, read-only, cannot open) become
:class:`StoreError`. Integrity and programming errors are bugs and pass through.
An encrypted store's connection (``sqlcipher3``, see :mod:`.crypto`) raises its
own twins of the ``sqlite3`` errors; :func:`db_errors` covers both.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from companion.errors import StoreCorruptError, StoreError, StoreLockedError

# Primary result codes (the low byte of an extended code).
_BUSY, _LOCKED, _CORRUPT, _NOTADB = 5, 6, 11, 26

_LOCKED_WORDS = ("database is locked", "database is busy", "database table is locked")
_CORRUPT_WORDS = ("file is not a database", "database disk image is malformed")


def locked_error(path: Path) -> StoreLockedError:
    return StoreLockedError(
        f"{path} is locked by another companion process (close it and retry)"
    )


def corrupt_error(path: Path, detail: str) -> StoreCorruptError:
    return StoreCorruptError(
        f"{path} is not a usable companion database ({detail}); it was left untouched: "
        "move it aside to start afresh, or restore it from a backup"
    )


def db_errors(name: str = "Error") -> tuple[type[Exception], ...]:
    """``sqlite3``'s error class ``name``, and ``sqlcipher3``'s once it is loaded."""
    cipher = sys.modules.get("sqlcipher3.dbapi2")
    own: type[Exception] = getattr(sqlite3, name)
    return (own,) if cipher is None else (own, getattr(cipher, name))


def translate(exc: Exception, path: Path) -> StoreError | None:
    """The store error ``exc`` stands for, or None when it is a bug to let through."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc).lower()
    if primary in (_BUSY, _LOCKED) or any(w in text for w in _LOCKED_WORDS):
        return locked_error(path)
    if primary in (_CORRUPT, _NOTADB) or any(w in text for w in _CORRUPT_WORDS):
        return corrupt_error(path, str(exc))
    if isinstance(exc, db_errors("OperationalError")):
        return StoreError(f"{path}: {exc}")
    return None


@contextmanager
def sqlite_errors(path: Path) -> Iterator[None]:
    """Re-raise the ``sqlite3`` errors of the block as store errors (``raise ... from``)."""
    try:
        yield
    except db_errors() as exc:
        mapped = translate(exc, path)
        if mapped is None:
            raise
        raise mapped from exc
