"""Hybrid recall: BM25 (FTS5) and dense vectors, fused, boosted, deduplicated, packed.

Candidates come from five ranked lists: bm25 over turns, facts and session
summaries, the nearest vectors (any kind), and, when the query names a period
("last week"), the turns from that period. They are fused by reciprocal rank
fusion (each list adds ``weight / (K + rank)``), then boosted: pinned items,
important facts, recent items (a small bonus with a 30-day half-life) and items
inside the asked-about period. Near-duplicates (the same text) are dropped and
the result is cut to ``limit`` items and a token budget (:func:`pack`).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from companion.memory import fts
from companion.memory.codec import from_text, row_to_item, to_text
from companion.memory.timeq import TimeRange
from companion.types import MemoryItem

#: Reciprocal rank fusion's constant.
RRF_K = 60


@dataclass(frozen=True, slots=True)
class Weights:
    """How much each ranked list and each boost counts (tuned on the dev files only)."""

    bm25_turns: float = 1.0
    bm25_facts: float = 0.5
    bm25_summaries: float = 0.3
    dense_turns: float = 0.6
    dense_facts: float = 0.5
    dense_summaries: float = 0.3
    period: float = 0.5
    pinned: float = 0.3
    importance: float = 0.1
    recency: float = 0.02
    in_period: float = 1.5
    #: "rrf" (reciprocal rank fusion) or "score" (scores scaled by each list's best).
    fusion: str = "score"
    #: Scale each list's scores to [0, 1] from its worst to its best (else from 0).
    minmax: bool = True
    #: Share of a turn's score given to the turns one and two places before and after
    #: it: the answer to a question is often the next message.
    neighbors: float = 0.5
    neighbors2: float = 0.25


@dataclass(frozen=True, slots=True)
class Query:
    user_id: str
    text: str
    now: datetime
    period: TimeRange | None = None
    #: Turn ids that are already in the prompt (the latest ones): never recalled.
    skip_turns_from: int | None = None
    roles: tuple[str, ...] = ("user", "assistant")
    depth: int = 100


Key = tuple[str, int]


Ranked = list[tuple[int, float]]  # (item id, score), best first


def _bm25(conn: sqlite3.Connection, q: Query) -> dict[str, Ranked]:
    # CROSS JOIN keeps the FTS5 index as the outer loop: newer SQLite planners
    # (3.53, as in sqlcipher3) otherwise run the MATCH once per turn of the user.
    match = fts.any_of(q.text)
    if match is None:
        return {}
    marks = ",".join("?" * len(q.roles))
    turns = conn.execute(
        f"""SELECT t.id, -bm25(turns_fts)
            FROM turns_fts CROSS JOIN turns AS t ON t.id = turns_fts.rowid
            WHERE turns_fts MATCH ? AND t.user_id = ? AND t.role IN ({marks})
              AND t.id < ?
            ORDER BY bm25(turns_fts) LIMIT ?""",
        (match, q.user_id, *q.roles, q.skip_turns_from or 2**62, q.depth),
    ).fetchall()
    facts = conn.execute(
        """SELECT f.id, -bm25(facts_fts, 1.0, 0.4)
           FROM facts_fts CROSS JOIN facts AS f ON f.id = facts_fts.rowid
           WHERE facts_fts MATCH ? AND f.user_id = ? AND f.superseded_at IS NULL
           ORDER BY bm25(facts_fts, 1.0, 0.4) LIMIT ?""",
        (match, q.user_id, q.depth),
    ).fetchall()
    summaries = conn.execute(
        """SELECT s.id, -bm25(summaries_fts)
           FROM summaries_fts CROSS JOIN summaries AS s ON s.id = summaries_fts.rowid
           WHERE summaries_fts MATCH ? AND s.user_id = ?
           ORDER BY bm25(summaries_fts) LIMIT ?""",
        (match, q.user_id, q.depth),
    ).fetchall()
    return {
        "turn": [(r[0], r[1]) for r in turns],
        "fact": [(r[0], r[1]) for r in facts],
        "summary": [(r[0], r[1]) for r in summaries],
    }


def _in_period(conn: sqlite3.Connection, q: Query) -> Ranked:
    if q.period is None:
        return []
    marks = ",".join("?" * len(q.roles))
    rows = conn.execute(
        f"""SELECT id FROM turns WHERE user_id = ? AND role IN ({marks})
              AND created_at >= ? AND created_at < ? AND id < ?
            ORDER BY id DESC LIMIT ?""",
        (q.user_id, *q.roles, to_text(q.period.start), to_text(q.period.end),
         q.skip_turns_from or 2**62, q.depth),
    ).fetchall()
    return [(r[0], 1.0) for r in rows]


def fuse(
    conn: sqlite3.Connection,
    q: Query,
    dense: Sequence[tuple[Key, float]],
    weights: Weights = Weights(),  # noqa: B008 - frozen
) -> list[tuple[Key, float]]:
    """Every candidate with its fused score, best first (before boosts)."""
    scores: dict[Key, float] = {}

    def add(kind: str, ranked: Ranked, weight: float) -> None:
        top = max((score for _, score in ranked), default=0.0)
        low = min((score for _, score in ranked), default=0.0) if weights.minmax else 0.0
        for rank, (item_id, score) in enumerate(ranked):
            key = (kind, item_id)
            if weights.fusion == "rrf":
                part = weight / (RRF_K + rank + 1)
            else:  # each list's scores scaled to [0, 1]
                part = weight * max(0.0, score - low) / (top - low) if top > low else 0.0
            scores[key] = scores.get(key, 0.0) + part

    lists = _bm25(conn, q)
    add("turn", lists.get("turn", []), weights.bm25_turns)
    add("fact", lists.get("fact", []), weights.bm25_facts)
    add("summary", lists.get("summary", []), weights.bm25_summaries)
    add("turn", _in_period(conn, q), weights.period)
    dense_weight = {"turn": weights.dense_turns, "fact": weights.dense_facts,
                    "summary": weights.dense_summaries}
    for kind, weight in dense_weight.items():
        add(kind, [(item_id, cos) for (k, item_id), cos in dense if k == kind], weight)
    if weights.neighbors:  # a turn next to a strong match shares some of its score
        base = {k: v for k, v in scores.items() if k[0] == "turn"}
        for (kind, item_id), score in base.items():
            for other, share in ((item_id - 1, weights.neighbors),
                                 (item_id + 1, weights.neighbors),
                                 (item_id - 2, weights.neighbors2),
                                 (item_id + 2, weights.neighbors2)):
                if share:
                    key = (kind, other)
                    scores[key] = scores.get(key, 0.0) + share * score
    return sorted(scores.items(), key=lambda kv: -kv[1])


def episode_text(role: str, content: str, when: datetime, max_chars: int = 300) -> str:
    """A past turn as a memory line: dated, attributed and quoted (never an instruction)."""
    said = content if len(content) <= max_chars else content[: max_chars - 1].rstrip() + "…"
    who = "the user" if role == "user" else "you"
    return f"On {when:%Y-%m-%d}, {who} said: \"{said}\""


def load_items(
    conn: sqlite3.Connection,
    user_id: str,
    keys: Sequence[Key],
    roles: Sequence[str] = ("user", "assistant"),
) -> dict[Key, MemoryItem]:
    """The MemoryItems of ``keys`` that exist and belong to ``user_id``."""
    out: dict[Key, MemoryItem] = {}
    by_kind: dict[str, list[int]] = {}
    for kind, item_id in keys:
        by_kind.setdefault(kind, []).append(item_id)
    for kind, ids in by_kind.items():
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            if kind == "turn":
                rows = conn.execute(
                    f"SELECT * FROM turns WHERE user_id = ? AND id IN ({marks})",
                    (user_id, *chunk),
                ).fetchall()
                # a reply the reply guard could not fix is never brought back
                rows = [r for r in rows if r["role"] in roles and not r["flagged"]]
                for r in rows:
                    when = from_text(r["created_at"])
                    out[(kind, r["id"])] = MemoryItem(
                        id=r["id"], user_id=user_id, kind="episode",
                        text=episode_text(r["role"], r["content"], when),
                        source_turn_id=r["id"], created_at=when, turn_ids=(r["id"],),
                        session_id=r["session_id"],
                    )
            elif kind == "fact":
                rows = conn.execute(
                    f"""SELECT f.*, (SELECT group_concat(turn_id) FROM fact_turns
                                     WHERE fact_id = f.id) AS sources
                        FROM facts AS f
                        WHERE f.user_id = ? AND f.superseded_at IS NULL AND f.id IN ({marks})""",
                    (user_id, *chunk),
                ).fetchall()
                for r in rows:
                    out[(kind, r["id"])] = fact_item(r)
            else:
                rows = conn.execute(
                    f"SELECT * FROM summaries WHERE user_id = ? AND id IN ({marks})",
                    (user_id, *chunk),
                ).fetchall()
                for r in rows:
                    out[(kind, r["id"])] = summary_item(r)
    return out


def fact_item(row: sqlite3.Row, score: float = 0.0) -> MemoryItem:
    sources = row["sources"] if "sources" in row.keys() else None  # noqa: SIM118
    turn_ids = tuple(sorted(int(t) for t in sources.split(","))) if sources else ()
    return replace(
        row_to_item(row, score), pinned=bool(row["pinned"]), importance=float(row["importance"]),
        turn_ids=turn_ids,
    )


def summary_item(row: sqlite3.Row, score: float = 0.0) -> MemoryItem:
    turn_ids = tuple(json.loads(row["turn_ids"]))
    return MemoryItem(
        id=row["id"], user_id=row["user_id"], kind="summary", text=row["text"],
        source_turn_id=turn_ids[0] if turn_ids else None,
        created_at=from_text(row["created_at"]), score=score, pinned=bool(row["pinned"]),
        turn_ids=turn_ids, session_id=row["session_id"],
    )


def boost(
    item: MemoryItem, score: float, q: Query, weights: Weights = Weights()  # noqa: B008
) -> float:
    age_days = max(0.0, (q.now - item.created_at).total_seconds() / 86400)
    score += weights.recency * math.exp(-age_days * math.log(2) / 30)
    score += weights.pinned * item.pinned
    if item.kind not in ("episode", "summary"):
        score += weights.importance * item.importance
    if q.period is not None and item.created_at in q.period:
        score *= weights.in_period
    return score


def prefer_facts(items: Sequence[MemoryItem]) -> list[MemoryItem]:
    """A fact stands for the message it was taken from: it takes the message's rank
    when that is better, and the message is dropped (the fact says it in fewer words)."""
    episode_score = {i.id: i.score for i in items if i.kind == "episode"}
    covered: set[int] = set()
    out: list[MemoryItem] = []
    for item in items:
        if item.kind not in ("episode", "summary") and item.turn_ids:
            best = max([item.score] + [episode_score.get(t, 0.0) for t in item.turn_ids])
            covered.update(item.turn_ids)
            item = replace(item, score=best)
        out.append(item)
    out = [i for i in out if not (i.kind == "episode" and i.id in covered)]
    return sorted(out, key=lambda i: -i.score)


def pack(
    items: Sequence[MemoryItem],
    budget: int,
    count: Callable[[str], int] = lambda s: len(s) // 4,
    *,
    limit: int | None = None,
) -> list[MemoryItem]:
    """The items, best first, that fit ``budget`` tokens together (texts seen once),
    at most ``limit`` of them."""
    out: list[MemoryItem] = []
    seen: set[str] = set()
    used = 0
    for item in items:
        if limit is not None and len(out) >= limit:
            break
        key = " ".join(fts.words(item.text))
        cost = count(item.text) + 2
        if key in seen or used + cost > budget:
            continue
        seen.add(key)
        used += cost
        out.append(item)
    return out
