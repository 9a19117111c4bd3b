"""Facts about the user in the store's ``facts`` table, searched with FTS5 and bm25.

:class:`SQLiteMemory` keeps what an :class:`Extractor` finds in the user's
turns: one row per user and fact text (a restated fact is refreshed, not
duplicated), a newer fact of a single-valued kind (``name``) supersedes the
older one, and recall ranks the current facts with ``bm25()``. Each fact also
carries a few keywords of its kind (``name``, ``job``, ``family``...) so that
"what's my sister's name?" finds ``User's sister is called Maya.``
"""

from __future__ import annotations

import re
from datetime import datetime

from companion.memory import fts
from companion.memory.base import Extractor, Fact
from companion.memory.codec import check_user_id, row_to_item, to_text
from companion.memory.export import optimize_index
from companion.memory.facts import RuleExtractor
from companion.memory.store import Store
from companion.types import MemoryItem, Turn

#: Kinds where a user has one current fact: a new one supersedes the old.
SINGLE_VALUED: frozenset[str] = frozenset({"name"})

#: Words indexed with each kind, so questions about the kind find its facts.
KIND_KEYWORDS: dict[str, str] = {
    "name": "name called",
    "work": "work job career occupation",
    "person": "name family friend person relationship",
    "place": "place live home city town from",
    "like": "like love enjoy favorite favourite",
    "dislike": "dislike hate",
    "plan": "plan plans schedule date when upcoming",
    "fact": "",
}

# bm25 weights of the indexed columns: the fact's own words count more.
_WEIGHT_TEXT, _WEIGHT_KEYWORDS = 1.0, 0.4

_SPACE = re.compile(r"\s+")


def fact_key(text: str) -> str:
    """The identity of a fact's text: case-folded, spaces collapsed, final stop dropped."""
    return _SPACE.sub(" ", text.casefold()).strip().rstrip(".!").strip()


class SQLiteMemory:
    """:class:`~companion.memory.base.Memory` over a :class:`Store`."""

    def __init__(self, store: Store, extractor: Extractor | None = None) -> None:
        self.store = store
        self.extractor: Extractor = extractor if extractor is not None else RuleExtractor()

    def remember(self, turn: Turn) -> list[MemoryItem]:
        """Store the facts of a stored user turn (other roles teach nothing)."""
        if turn.role != "user":
            return []
        # Relative dates ("tomorrow") mean the user's calendar: the machine's local time.
        facts = self.extractor.extract(turn.content, turn.created_at.astimezone())
        if not facts:
            return []
        stored: dict[int, MemoryItem] = {}
        with self.store.transaction():
            for fact in facts:
                item = self.add(turn.user_id, fact, turn.created_at, source_turn_id=turn.id)
                stored[item.id] = item
        return list(stored.values())

    def add(
        self, user_id: str, fact: Fact, now: datetime, *, source_turn_id: int | None = None
    ) -> MemoryItem:
        """Store one fact (or refresh it if the user already has it); return it."""
        check_user_id(user_id)
        when = to_text(now)
        key = fact_key(fact.text)
        with self.store.transaction() as conn:
            self.store.ensure_user(user_id, now)
            row = conn.execute(
                "SELECT id FROM facts WHERE user_id = ? AND key = ?", (user_id, key)
            ).fetchone()
            if row is None:
                cur = conn.execute(
                    """INSERT INTO facts (user_id, kind, text, key, keywords, source_turn_id,
                                          first_stated_at, stated_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                    (user_id, fact.kind, fact.text, key, KIND_KEYWORDS.get(fact.kind, ""),
                     source_turn_id, when, when),
                )
                fact_id = cur.lastrowid
            else:
                fact_id = row["id"]
                conn.execute(
                    """UPDATE facts SET stated_at = ?, source_turn_id = ?,
                                        superseded_at = NULL, superseded_by = NULL
                       WHERE id = ?""",
                    (when, source_turn_id, fact_id),
                )
            if fact.kind in SINGLE_VALUED:
                conn.execute(
                    """UPDATE facts SET superseded_at = ?, superseded_by = ?
                       WHERE user_id = ? AND kind = ? AND id != ? AND superseded_at IS NULL""",
                    (when, fact_id, user_id, fact.kind, fact_id),
                )
            stored = conn.execute("SELECT * FROM facts WHERE id = ?", (fact_id,)).fetchone()
        return row_to_item(stored)

    def recall(self, user_id: str, query: str, *, limit: int = 5) -> list[MemoryItem]:
        """Current facts matching any word of ``query``, best bm25 first (score > 0)."""
        check_user_id(user_id)
        match = fts.any_of(query)
        if match is None or limit <= 0:
            return []
        with self.store.reading() as conn:
            rows = conn.execute(
                f"""SELECT f.*, -bm25(facts_fts, {_WEIGHT_TEXT}, {_WEIGHT_KEYWORDS}) AS score
                    FROM facts_fts JOIN facts AS f ON f.id = facts_fts.rowid
                    WHERE facts_fts MATCH ? AND f.user_id = ? AND f.superseded_at IS NULL
                    ORDER BY score DESC, f.stated_at DESC, f.id DESC
                    LIMIT ?""",
                (match, user_id, limit),
            ).fetchall()
        return [row_to_item(row, score=float(row["score"])) for row in rows]

    def items(self, user_id: str) -> list[MemoryItem]:
        """Every current (not superseded) fact, most recently stated first."""
        check_user_id(user_id)
        with self.store.reading() as conn:
            rows = conn.execute(
                """SELECT * FROM facts WHERE user_id = ? AND superseded_at IS NULL
                   ORDER BY stated_at DESC, id DESC""",
                (user_id,),
            ).fetchall()
        return [row_to_item(row) for row in rows]

    def history(self, user_id: str) -> list[MemoryItem]:
        """Every fact kept, superseded ones included, oldest first."""
        check_user_id(user_id)
        with self.store.reading() as conn:
            rows = conn.execute(
                "SELECT * FROM facts WHERE user_id = ? ORDER BY id", (user_id,)
            ).fetchall()
        return [row_to_item(row) for row in rows]

    def forget(self, user_id: str, target: int | str) -> list[MemoryItem]:
        """Delete the fact with id ``target``, or every fact (superseded ones too)
        whose text has all the words of ``target``; return what was deleted."""
        check_user_id(user_id)
        if isinstance(target, bool) or not isinstance(target, int | str):
            raise TypeError(f"forget takes a fact id or words, not {target!r}")
        with self.store.transaction() as conn:
            if isinstance(target, int):
                rows = conn.execute(
                    "SELECT * FROM facts WHERE user_id = ? AND id = ?", (user_id, target)
                ).fetchall()
            else:
                match = fts.all_of(target, column="text")
                if match is None:
                    return []
                rows = conn.execute(
                    """SELECT f.* FROM facts_fts JOIN facts AS f ON f.id = facts_fts.rowid
                       WHERE facts_fts MATCH ? AND f.user_id = ?
                       ORDER BY f.stated_at DESC, f.id DESC""",
                    (match, user_id),
                ).fetchall()
            removed = [row_to_item(row) for row in rows]
            conn.executemany("DELETE FROM facts WHERE id = ?", [(item.id,) for item in removed])
            if removed:
                optimize_index(conn)
        return removed
