"""Long-term memory: episodes, facts and summaries, recalled by hybrid search.

:class:`LongTermMemory` satisfies :class:`~companion.memory.base.Memory` and is
what the companion uses. Writing needs no language model:

- every turn it is given is an *episode*: it is in the store already (with its
  time and session) and in the ``turns_fts`` index; ``remember`` adds its
  sentence vector;
- the :class:`~companion.memory.base.Extractor` (rules by default) turns user
  turns into *facts*, each linked to the turns it came from; a newer fact of a
  single-valued slot (name, home town) supersedes the old one, which is kept as
  history;
- *summaries* of finished sessions are written between sessions by
  :meth:`consolidate` (see :mod:`.consolidate`).

Recall fuses bm25 and dense rankings (:mod:`.recall`). Without an embedder
(``embedder=None``, or sentence-transformers missing) it is bm25 alone; the
embedder and its vectors are a :class:`~.dense.DenseIndex`. Forgetting cascades
(:mod:`.forget`).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import Literal

from companion.errors import CompanionError, InputError
from companion.memory import recall as hybrid
from companion.memory.base import Extractor
from companion.memory.codec import check_user_id
from companion.memory.consolidate import consolidate
from companion.memory.dense import DenseIndex
from companion.memory.embed import Embedder, MiniLMEmbedder, default_embedder
from companion.memory.facts import looks_like_instructions
from companion.memory.forget import Removed, cascade_forget
from companion.memory.sqlite_memory import SQLiteMemory, fact_key
from companion.memory.store import Store
from companion.memory.timeq import time_range
from companion.memory.vectors import Key, VectorIndex
from companion.types import MemoryItem, Turn

#: Fact kinds whose newest value replaces the older (a person has one name, one home).
SLOTS: dict[str, tuple[str, ...]] = {
    "name": ("User's name is ",),
    "place": ("User lives in ",),
    "work": ("User works as ", "User works at "),
}


class LongTermMemory:
    """:class:`~companion.memory.base.Memory` with episodes, facts, summaries and vectors."""

    def __init__(
        self,
        store: Store,
        extractor: Extractor | None = None,
        embedder: Embedder | None | Literal["default"] = "default",
        *,
        skip_recent_turns: int = 0,
        budget_tokens: int = 600,
        weights: hybrid.Weights | None = None,
    ) -> None:
        self.store = store
        self.facts = SQLiteMemory(store, extractor)
        self.dense = DenseIndex(store, default_embedder() if embedder == "default" else embedder)
        self.skip_recent_turns = skip_recent_turns
        self.budget_tokens = budget_tokens
        self.weights = weights or hybrid.Weights()
        if isinstance(self.embedder, MiniLMEmbedder):  # load the model off the critical path
            threading.Thread(target=self._warm_up, daemon=True).start()

    @property
    def embedder(self) -> Embedder | None:
        """The sentence embedder (None: recall by keywords alone)."""
        return self.dense.embedder

    @embedder.setter
    def embedder(self, embedder: Embedder | None) -> None:
        self.dense.embedder = embedder

    @property
    def index(self) -> VectorIndex | None:
        return self.dense.index

    def _warm_up(self) -> None:
        with contextlib.suppress(CompanionError):
            self.dense.embed(["warm up"])

    # -- writing -------------------------------------------------------------

    def remember(self, turn: Turn) -> list[MemoryItem]:
        """Index a stored turn as an episode and keep the facts of a user turn
        (inside the caller's transaction, if one is open); returns the new facts."""
        with self.store.transaction() as conn:
            items = self.facts.remember(turn)
            for item in items:
                conn.execute(
                    "INSERT OR IGNORE INTO fact_turns (fact_id, turn_id) VALUES (?, ?)",
                    (item.id, turn.id),
                )
                self._supersede(turn.user_id, item)
            keys: list[Key] = [("turn", turn.id)] + [("fact", i.id) for i in items]
            self.dense.add(turn.user_id, keys, [turn.content] + [i.text for i in items])
        return items

    def _supersede(self, user_id: str, item: MemoryItem) -> None:
        prefixes = SLOTS.get(item.kind)
        if not prefixes or not item.text.startswith(prefixes):
            return
        prefix = next(p for p in prefixes if item.text.startswith(p))
        with self.store.transaction() as conn:
            conn.execute(
                """UPDATE facts SET superseded_at = ?, superseded_by = ?
                   WHERE user_id = ? AND kind = ? AND id != ? AND superseded_at IS NULL
                     AND substr(text, 1, ?) = ?""",
                (item.created_at.astimezone(UTC).isoformat(timespec="microseconds"), item.id,
                 user_id, item.kind, item.id, len(prefix), prefix),
            )

    # -- reading -------------------------------------------------------------

    def recall(
        self,
        user_id: str,
        query: str,
        *,
        limit: int = 5,
        now: datetime | None = None,
        roles: tuple[str, ...] = ("user", "assistant"),
        budget_tokens: int | None = None,
    ) -> list[MemoryItem]:
        """The memories most relevant to ``query``, best first, with ``score`` set;
        at most ``limit`` items within ``budget_tokens`` (estimated)."""
        ranked = self.search(user_id, query, depth=max(40, 4 * limit), now=now, roles=roles)
        budget = self.budget_tokens if budget_tokens is None else budget_tokens
        return hybrid.pack(hybrid.prefer_facts(ranked), budget, limit=limit)

    def search(
        self,
        user_id: str,
        query: str,
        *,
        depth: int = 100,
        now: datetime | None = None,
        roles: tuple[str, ...] = ("user", "assistant"),
    ) -> list[MemoryItem]:
        """Every candidate up to ``depth`` per list, fused and boosted, best first."""
        check_user_id(user_id)
        if depth <= 0:
            return []
        now = now or datetime.now(UTC).astimezone()
        dense = self.dense.search(user_id, query, depth)
        with self.store.reading() as conn:
            skip = None
            if self.skip_recent_turns:
                row = conn.execute(
                    "SELECT min(id) FROM (SELECT id FROM turns WHERE user_id = ? "
                    "ORDER BY id DESC LIMIT ?)", (user_id, self.skip_recent_turns),
                ).fetchone()
                skip = row[0]
            q = hybrid.Query(user_id, query, now, time_range(query, now), skip, roles, depth)
            fused = hybrid.fuse(conn, q, dense, self.weights)[:depth]
            items = hybrid.load_items(conn, user_id, [k for k, _ in fused], roles)
        out = []
        for key, score in fused:
            item = items.get(key)
            if item is None or (item.kind == "episode" and (
                skip is not None and item.id >= skip
            )):
                continue
            out.append(replace(item, score=hybrid.boost(item, score, q, self.weights)))
        out.sort(key=lambda i: -i.score)
        return out

    def items(self, user_id: str) -> list[MemoryItem]:
        """Current facts (pinned first, then newest first), then session summaries."""
        check_user_id(user_id)
        with self.store.reading() as conn:
            facts = conn.execute(
                """SELECT f.*, (SELECT group_concat(turn_id) FROM fact_turns
                                 WHERE fact_id = f.id) AS sources
                   FROM facts AS f WHERE user_id = ? AND superseded_at IS NULL
                   ORDER BY pinned DESC, stated_at DESC, id DESC""",
                (user_id,),
            ).fetchall()
            summaries = conn.execute(
                "SELECT * FROM summaries WHERE user_id = ? ORDER BY pinned DESC, id DESC",
                (user_id,),
            ).fetchall()
        return [hybrid.fact_item(r) for r in facts] + [hybrid.summary_item(r) for r in summaries]

    def history(self, user_id: str) -> list[MemoryItem]:
        """Every fact kept, superseded ones included, oldest first."""
        return self.facts.history(user_id)

    # -- controls ------------------------------------------------------------

    def forget(self, user_id: str, target: int | str) -> list[MemoryItem]:
        """Forget a fact by id (``12``), a summary (``"s3"``), a turn (``"t40"``), the
        last thing the user said (``"last"``) or everything matching all the words;
        cascades to source turns, summaries, vectors and the indexes."""
        return self.forget_report(user_id, target).items

    def forget_report(self, user_id: str, target: int | str) -> Removed:
        check_user_id(user_id)
        if isinstance(target, bool) or not isinstance(target, int | str):
            raise TypeError(f"forget takes an id or words, not {target!r}")
        with self.store.transaction() as conn:
            removed = cascade_forget(conn, user_id, target)
        self.dense.drop(user_id)
        return removed

    def pin(self, user_id: str, target: int | str, pinned: bool = True) -> MemoryItem | None:
        """Pin (or unpin) a fact by id, or a summary (``"s3"``); returns it, or None."""
        check_user_id(user_id)
        table, item_id = ("summaries", int(target[1:])) if isinstance(target, str) and \
            target[:1] == "s" and target[1:].isdigit() else ("facts", int(target))
        with self.store.transaction() as conn:
            cur = conn.execute(
                f"UPDATE {table} SET pinned = ? WHERE user_id = ? AND id = ?",
                (int(pinned), user_id, item_id),
            )
        if cur.rowcount == 0:
            return None
        return next(
            (i for i in self.items(user_id)
             if i.id == item_id and (i.kind == "summary") == (table == "summaries")),
            None,
        )

    def edit(self, user_id: str, fact_id: int, text: str) -> MemoryItem | None:
        """Correct a fact's text (the user's own words, as a fact); returns it, or None."""
        check_user_id(user_id)
        text = " ".join(text.split())
        if not text or len(text) > 500:
            raise InputError("a memory must be 1 to 500 characters")
        if looks_like_instructions(text):
            raise InputError("a memory is something about you, not an instruction to her")
        with self.store.transaction() as conn:
            cur = conn.execute(
                "UPDATE facts SET text = ?, key = ?, importance = 1.0 WHERE user_id = ? AND id = ?",
                (text, fact_key(text), user_id, fact_id),
            )
            if cur.rowcount:
                self.dense.add(user_id, [("fact", fact_id)], [text])
        self.dense.drop(user_id)
        return next((i for i in self.items(user_id) if i.kind != "summary" and i.id == fact_id),
                    None)

    def consolidate(self, user_id: str, *, keep_session: int | None = None) -> list[MemoryItem]:
        """Summarize every finished session not yet summarized (each in its own
        transaction) and deduplicate facts; returns the new summaries."""
        return consolidate(self.store, self.dense, user_id, keep_session=keep_session)

    def import_data(self, user_id: str, data: object) -> dict[str, int]:
        """Restore an export (see :mod:`.transfer`) under ``user_id``: all of it or,
        when anything in it is malformed, nothing (InputError). Returns counts."""
        from companion.memory.transfer import import_user

        with self.store.transaction() as conn:
            counts = import_user(conn, data, user_id)
        self.reindex(user_id)
        return counts

    def reindex(self, user_id: str) -> int:
        """Compute the missing vectors of the user's turns, facts and summaries."""
        if self.index is None:
            return 0
        with self.store.reading() as conn:
            rows = conn.execute(
                """SELECT 'turn' AS kind, id, content AS text FROM turns AS t WHERE user_id = ?
                     AND NOT EXISTS (SELECT 1 FROM embeddings
                                     WHERE kind = 'turn' AND item_id = t.id)
                   UNION ALL SELECT 'fact', id, text FROM facts AS f WHERE user_id = ?
                     AND NOT EXISTS (SELECT 1 FROM embeddings
                                     WHERE kind = 'fact' AND item_id = f.id)
                   UNION ALL SELECT 'summary', id, text FROM summaries AS s WHERE user_id = ?
                     AND NOT EXISTS (SELECT 1 FROM embeddings
                                     WHERE kind = 'summary' AND item_id = s.id)""",
                (user_id, user_id, user_id),
            ).fetchall()
        for i in range(0, len(rows), 256):
            chunk = rows[i : i + 256]
            if not self.dense.add(user_id, [(r["kind"], r["id"]) for r in chunk],
                                  [r["text"] for r in chunk]):
                return i
        return len(rows)

    def sources(self, user_id: str, item: MemoryItem) -> list[Turn]:
        """The stored turns a fact or summary came from, oldest first."""
        turns = [self.store.turn(t) for t in item.turn_ids or
                 ((item.source_turn_id,) if item.source_turn_id else ())]
        return [t for t in turns if t is not None and t.user_id == user_id]
