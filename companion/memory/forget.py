"""Forgetting for real: requests in plain words, and the cascade through the store.

:func:`parse_forget_request` recognizes "forget that", "forget what I just
said", "forget what I said about my ex", "please forget about Maya"... (and
nothing else: "I always forget my keys" is not a request).

:func:`cascade_forget` deletes what a target names and everything that would
still remember it: a fact's source turns; the turns, facts and summaries that
contain all the words; the facts taken from deleted turns; the summaries of
the sessions that lost turns (consolidation writes them again from what is
left); the agenda items taken from deleted turns or holding all the words.
Vectors go with their items (triggers), and the FTS indexes are merged so
deleted words leave no trace in them (``secure_delete`` zeroes the pages).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

from companion.memory import fts
from companion.memory.codec import from_text, row_to_item
from companion.types import MemoryItem

_POLITE = r"^\W*(?:(?:ok(?:ay)?|hey|so|and|also|actually|oh|please|pls)\W+)*" \
          r"(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?)?(?:please\s+)?"
_VERB = r"(?:forget|erase|delete|remove|wipe|drop)"
_LAST = re.compile(
    _POLITE + _VERB + r"\s+(?:that|this|it|what\s+i\s+(?:just\s+)?(?:said|told\s+you|wrote)"
    r"|my\s+last\s+message|the\s+last\s+(?:thing|message))(?:\s+please)?\W*$",
    re.IGNORECASE,
)
_ABOUT = re.compile(
    _POLITE + _VERB + r"\s+(?:everything\s+|anything\s+|all\s+)?(?:(?:that\s+)?"
    r"(?:what\s+)?i\s+(?:said|told\s+you|mentioned|wrote)\s+)?(?:about|regarding|on)\s+"
    r"(?P<words>[^.!?]{1,80}?)(?:\s+please)?\W*$",
    re.IGNORECASE,
)
_THAT = re.compile(
    _POLITE + _VERB + r"\s+(?:that\s+)?i\s+(?:said|told\s+you|mentioned)\s+(?:that\s+)?"
    r"(?P<words>[^.!?]{1,80}?)\W*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ForgetRequest:
    """What a plain-language request asks to forget: the last message, or some words."""

    last: bool = False
    words: str = ""


def parse_forget_request(text: str) -> ForgetRequest | None:
    """The forget request ``text`` makes, or None when it makes none."""
    text = text.strip()
    if len(text) > 160:
        return None
    if _LAST.match(text):
        return ForgetRequest(last=True)
    for pattern in (_ABOUT, _THAT):
        m = pattern.match(text)
        if m and fts.words(m.group("words")):
            return ForgetRequest(words=m.group("words").strip())
    return None


@dataclass(frozen=True, slots=True)
class Removed:
    """What one forget removed, per kind; ``items`` lists them as memory items."""

    facts: int = 0
    turns: int = 0
    summaries: int = 0
    items: list[MemoryItem] = field(default_factory=list)
    #: Agenda items (reminders, plans) removed with them.
    agenda: int = 0

    def describe(self) -> str:
        if not (self.facts or self.turns or self.summaries or self.agenda):
            return "nothing matched"
        parts = [f"{n} {word}{'' if n == 1 else 's'}" for n, word in (
            (self.facts, "fact"), (self.turns, "message"), (self.summaries, "session summary"),
            (self.agenda, "agenda item")) if n]
        return "removed " + ", ".join(parts)


def _ids(rows: list[sqlite3.Row]) -> list[int]:
    return [int(r[0]) for r in rows]


def _match(conn: sqlite3.Connection, table: str, user_id: str, words: str) -> list[int]:
    match = fts.all_of(words)
    if match is None:
        return []
    base = table.removesuffix("_fts")
    return _ids(conn.execute(
        f"""SELECT b.id FROM {table} JOIN {base} AS b ON b.id = {table}.rowid
            WHERE {table} MATCH ? AND b.user_id = ?""",
        (match, user_id),
    ).fetchall())


def _agenda_with(conn: sqlite3.Connection, user_id: str, words: str) -> list[int]:
    """The user's agenda items whose words include every word of ``words``."""
    wanted = set(fts.words(words))
    if not wanted:
        return []
    rows = conn.execute("SELECT id, what FROM agenda WHERE user_id = ?", (user_id,)).fetchall()
    return [int(r[0]) for r in rows if wanted <= set(fts.words(r[1]))]


def cascade_forget(conn: sqlite3.Connection, user_id: str, target: int | str) -> Removed:
    """Delete what ``target`` names and what derives from it (in the caller's transaction)."""
    facts: set[int] = set()
    turns: set[int] = set()
    summaries: set[int] = set()
    by_words: set[int] = set()
    agenda: set[int] = set()
    if isinstance(target, int):
        facts.update(_ids(conn.execute(
            "SELECT id FROM facts WHERE user_id = ? AND id = ?", (user_id, target)).fetchall()))
    elif re.fullmatch(r"[st]\d+", target.strip()):
        table = "summaries" if target.strip()[0] == "s" else "turns"
        found = _ids(conn.execute(f"SELECT id FROM {table} WHERE user_id = ? AND id = ?",
                                  (user_id, int(target.strip()[1:]))).fetchall())
        (summaries if table == "summaries" else turns).update(found)
    elif target.strip().lower() == "last":
        turns.update(_ids(conn.execute(
            "SELECT id FROM turns WHERE user_id = ? AND role = 'user' ORDER BY id DESC LIMIT 1",
            (user_id,)).fetchall()))
    else:
        facts.update(_match(conn, "facts_fts", user_id, target))
        summaries.update(_match(conn, "summaries_fts", user_id, target))
        by_words = set(_match(conn, "turns_fts", user_id, target))
        agenda.update(_agenda_with(conn, user_id, target))
    # A message forgotten as such takes its facts with it; facts only found in a
    # message forgotten for its words stay (they lose their source).
    for turn_id in list(turns):
        facts.update(_ids(conn.execute(
            """SELECT id FROM facts WHERE user_id = ? AND (source_turn_id = ?
               OR id IN (SELECT fact_id FROM fact_turns WHERE turn_id = ?))""",
            (user_id, turn_id, turn_id)).fetchall()))
    turns |= by_words
    # A fact's source turns remember it.
    for fact_id in list(facts):
        turns.update(_ids(conn.execute(
            "SELECT turn_id FROM fact_turns WHERE fact_id = ?", (fact_id,)).fetchall()))
        turns.update(_ids(conn.execute(
            "SELECT source_turn_id FROM facts WHERE id = ? AND source_turn_id IS NOT NULL",
            (fact_id,)).fetchall()))
    # Summaries of the sessions that lose turns are written again by consolidation.
    for turn_id in turns:
        summaries.update(_ids(conn.execute(
            """SELECT s.id FROM summaries AS s JOIN turns AS t ON t.session_id = s.session_id
               WHERE t.id = ?""", (turn_id,)).fetchall()))
    items: list[MemoryItem] = []
    for fact_id in sorted(facts):
        row = conn.execute("SELECT * FROM facts WHERE id = ?", (fact_id,)).fetchone()
        items.append(row_to_item(row))
    for turn_id in sorted(turns):
        row = conn.execute("SELECT * FROM turns WHERE id = ?", (turn_id,)).fetchone()
        items.append(MemoryItem(
            id=turn_id, user_id=user_id, kind="episode", text=row["content"],
            source_turn_id=turn_id, created_at=from_text(row["created_at"]),
            turn_ids=(turn_id,), session_id=row["session_id"]))
    for summary_id in sorted(summaries):
        row = conn.execute("SELECT * FROM summaries WHERE id = ?", (summary_id,)).fetchone()
        items.append(MemoryItem(
            id=summary_id, user_id=user_id, kind="summary", text=row["text"],
            source_turn_id=None, created_at=from_text(row["created_at"]),
            session_id=row["session_id"]))
    # A reminder or plan taken from a forgotten message goes with it.
    for turn_id in turns:
        agenda.update(_ids(conn.execute(
            "SELECT id FROM agenda WHERE user_id = ? AND source_turn_id = ?",
            (user_id, turn_id)).fetchall()))
    conn.executemany("DELETE FROM agenda WHERE id = ?", [(i,) for i in agenda])
    conn.executemany("DELETE FROM facts WHERE id = ?", [(i,) for i in facts])
    conn.executemany("DELETE FROM summaries WHERE id = ?", [(i,) for i in summaries])
    conn.executemany("DELETE FROM turns WHERE id = ?", [(i,) for i in turns])
    if facts or turns or summaries:
        for table in ("facts_fts", "turns_fts", "summaries_fts"):
            conn.execute(f"INSERT INTO {table} ({table}) VALUES ('optimize')")
    return Removed(len(facts), len(turns), len(summaries), items, len(agenda))
