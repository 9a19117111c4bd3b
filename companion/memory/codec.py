"""Conversions between the store's rows and the value types, and input checks.

Times are stored as ISO-8601 text in UTC with microseconds
(``2026-11-29T18:05:00.000000+00:00``), so they sort as text and read back as
aware datetimes.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from datetime import UTC, datetime
from typing import cast

from companion.errors import InputError
from companion.types import MemoryItem, Role, SessionInfo, Turn

#: The longest user id the store accepts.
MAX_USER_ID = 64

ROLES: frozenset[str] = frozenset({"system", "user", "assistant"})


def to_text(when: datetime) -> str:
    """An aware datetime as UTC ISO-8601 text; a naive one is a programming error."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when!r}: pass an aware one, e.g. datetime.now(UTC)")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(text: str) -> datetime:
    """Stored text back to an aware UTC datetime."""
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def maybe_from_text(text: str | None) -> datetime | None:
    return None if text is None else from_text(text)


def check_user_id(user_id: str) -> str:
    """``user_id`` itself if usable: non-empty, at most 64 characters, no control characters."""
    if not isinstance(user_id, str) or not user_id.strip():
        raise InputError("user id must not be empty")
    if len(user_id) > MAX_USER_ID:
        raise InputError(f"user id is too long ({len(user_id)} characters; at most {MAX_USER_ID})")
    if user_id != user_id.strip():
        raise InputError(f"user id {user_id!r} must not start or end with whitespace")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in user_id):
        raise InputError(f"user id {user_id!r} must not contain control characters")
    return user_id


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {sorted(ROLES)}")
    return cast(Role, role)


def row_to_session(row: sqlite3.Row) -> SessionInfo:
    return SessionInfo(
        id=row["id"],
        user_id=row["user_id"],
        started_at=from_text(row["started_at"]),
        ended_at=maybe_from_text(row["ended_at"]),
    )


def row_to_turn(row: sqlite3.Row) -> Turn:
    return Turn(
        id=row["id"],
        user_id=row["user_id"],
        session_id=row["session_id"],
        role=check_role(row["role"]),
        content=row["content"],
        created_at=from_text(row["created_at"]),
        interrupted=bool(row["interrupted"]),
        flagged=bool(row["flagged"]),
    )


def row_to_item(row: sqlite3.Row, score: float = 0.0) -> MemoryItem:
    """A ``facts`` row as a MemoryItem; ``created_at`` is when the fact was last stated."""
    return MemoryItem(
        id=row["id"],
        user_id=row["user_id"],
        kind=row["kind"],
        text=row["text"],
        source_turn_id=row["source_turn_id"],
        created_at=from_text(row["stated_at"]),
        score=score,
    )
