"""Consolidation between sessions: summaries and deduplication, never during a reply.

:func:`consolidate` writes an extractive summary of every finished session that
has none (the sentences that share the most content words with the rest of the
session, in their order, dated), linked to the session's turns, and supersedes
a fact whose text is a near-duplicate of a newer one of the same kind (cosine
above :data:`DUPLICATE`, or the same words). Each session is one transaction:
a crash leaves it either summarized or not, and the next run picks it up.

The hook: the companion runs it when a session begins (``Companion.open`` and
``/new``), for the sessions before.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from datetime import UTC, datetime

from companion.memory import fts
from companion.memory.codec import to_text
from companion.memory.dense import DenseIndex
from companion.memory.embed import Vectors, from_blob
from companion.memory.recall import summary_item
from companion.memory.store import Store
from companion.types import MemoryItem

#: Sentences per summary, and the longest sentence kept.
SUMMARY_SENTENCES, MAX_SENTENCE = 4, 220
#: Cosine above which two facts of one kind say the same thing.
DUPLICATE = 0.95

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def summarize(lines: list[tuple[str, str]], when: datetime) -> str:
    """An extractive summary of ``(speaker, text)`` lines: the most central sentences."""
    sentences: list[tuple[int, str, str, list[str]]] = []
    for speaker, text in lines:
        for part in _SENTENCE.split(text.strip()):
            words = fts.words(part)
            if len(words) >= 3:
                sentences.append((len(sentences), speaker, part.strip(), words))
    if not sentences:
        return ""
    df = Counter(w for *_, words in sentences for w in set(words))
    n = len(sentences)

    def score(words: list[str]) -> float:
        return sum(math.log(1 + df[w]) * math.log(1 + n / df[w]) for w in words) / (
            1 + math.sqrt(len(words)))

    best = sorted(sentences, key=lambda s: -score(s[3]))[:SUMMARY_SENTENCES]
    parts = []
    for _, speaker, text, _ in sorted(best):
        text = text if len(text) <= MAX_SENTENCE else text[: MAX_SENTENCE - 1] + "…"
        parts.append(f"{speaker}: {text}")
    return f"Conversation of {when:%Y-%m-%d}. " + " ".join(parts)


def consolidate(
    store: Store, dense: DenseIndex, user_id: str, *, keep_session: int | None = None
) -> list[MemoryItem]:
    """Summarize the user's finished sessions that have no summary (each summary's
    vector goes into ``dense``); dedupe facts."""
    with store.reading() as conn:
        pending = [int(r[0]) for r in conn.execute(
            """SELECT s.id FROM sessions AS s
               WHERE s.user_id = ? AND s.id IS NOT ?
                 AND NOT EXISTS (SELECT 1 FROM summaries WHERE session_id = s.id)
                 AND EXISTS (SELECT 1 FROM turns WHERE session_id = s.id)
               ORDER BY s.id""",
            (user_id, keep_session),
        ).fetchall()]
    made: list[MemoryItem] = []
    for session_id in pending:
        turns = store.session_turns(session_id)
        lines = [("User" if t.role == "user" else "You", t.content) for t in turns]
        text = summarize(lines, turns[-1].created_at)
        if not text:
            continue
        with store.transaction() as conn:
            cur = conn.execute(
                """INSERT INTO summaries (user_id, session_id, text, turn_ids, created_at)
                   VALUES (?, ?, ?, ?, ?)""",
                (user_id, session_id, text, json.dumps([t.id for t in turns]),
                 to_text(turns[-1].created_at)),
            )
            assert cur.lastrowid is not None
            dense.add(user_id, [("summary", cur.lastrowid)], [text])
            row = conn.execute("SELECT * FROM summaries WHERE id = ?", (cur.lastrowid,)).fetchone()
        made.append(summary_item(row))
    dedupe_facts(store, dense, user_id)
    return made


def _stored_vectors(store: Store, dense: DenseIndex, fact_ids: list[int]) -> dict[int, Vectors]:
    index = dense.index
    if index is None:
        return {}
    with store.reading() as conn:
        rows = conn.execute(
            "SELECT item_id, vector FROM embeddings WHERE kind = 'fact' AND model = ? "
            "AND item_id IN (SELECT value FROM json_each(?))",
            (index.model, json.dumps(fact_ids)),
        ).fetchall()
    return {int(r[0]): from_blob(r[1], index.dim) for r in rows}


def dedupe_facts(store: Store, dense: DenseIndex, user_id: str) -> int:
    """Supersede facts that repeat a newer fact of the same kind; returns how many."""
    with store.reading() as conn:
        rows = conn.execute(
            """SELECT id, kind, text, stated_at FROM facts
               WHERE user_id = ? AND superseded_at IS NULL ORDER BY stated_at DESC, id DESC""",
            (user_id,),
        ).fetchall()
    if len(rows) < 2:
        return 0
    words = [" ".join(sorted(fts.words(r["text"]))) for r in rows]
    vectors = _stored_vectors(store, dense, [int(r["id"]) for r in rows])
    gone: dict[int, int] = {}
    for i, older in enumerate(rows):
        for j in range(i):
            newer = rows[j]
            if newer["id"] in gone or newer["kind"] != older["kind"]:
                continue
            same = words[i] == words[j]
            a, b = vectors.get(older["id"]), vectors.get(newer["id"])
            if not same and a is not None and b is not None:
                same = float(a @ b) > DUPLICATE
            if same:
                gone[older["id"]] = newer["id"]
                break
    if gone:
        now = to_text(datetime.now(UTC))
        with store.transaction() as conn:
            conn.executemany(
                "UPDATE facts SET superseded_at = ?, superseded_by = ? WHERE id = ?",
                [(now, newer, older) for older, newer in gone.items()],
            )
    return len(gone)

