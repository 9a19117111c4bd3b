"""LongMemEval retrieval: session-level recall_all@5/@10 and NDCG@10 per question type.

    python bench/memory_longmemeval.py \
        ../shared/benchdata/longmemeval/longmemeval_s_cleaned_dev.json.xz

Follows the official src/retrieval protocol: per question a fresh memory; the
haystack sessions are ingested in order with their dates through the
companion's write path (store.add_turn + LongTermMemory.remember, one
transaction per session); keys are user-side text (recall is asked for user turns
only; assistant turns are stored but not searched); abstention questions and
questions without a gold user turn are skipped. A session is gold if its id
contains "answer" and one of its user turns has has_answer. Sessions are ranked
by their best-ranked memory. Consolidation (session summaries) is not run
here: summaries mix in assistant text, which the protocol's keys exclude.
A plain BM25 over sessions (their user turns joined) runs beside it.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memory_bm25 import BM25
from memory_common import CachedEmbedder, load, machine, percentile, query_embedding_note

from companion.memory import Store
from companion.memory.embed import HashEmbedder, MiniLMEmbedder
from companion.memory.longterm import LongTermMemory


def parse_date(text: str) -> datetime:
    """LongMemEval's "2023/05/20 (Sat) 03:29" as an aware datetime (UTC)."""
    day, _, clock = text.split(" ")
    return datetime.strptime(f"{day} {clock}", "%Y/%m/%d %H:%M").replace(tzinfo=UTC)


def gold_sessions(q: dict[str, Any]) -> set[str]:
    return {
        sid for sid, session in zip(q["haystack_session_ids"], q["haystack_sessions"], strict=True)
        if "answer" in sid and any(t["role"] == "user" and t.get("has_answer") for t in session)
    }


def metrics(ranked: list[str], gold: set[str]) -> dict[str, float]:
    dcg = sum(1 / math.log2(i + 2) for i, s in enumerate(ranked[:10]) if s in gold)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(len(gold), 10)))
    return {
        "recall_all@5": float(gold <= set(ranked[:5])),
        "recall_all@10": float(gold <= set(ranked[:10])),
        "ndcg_any@10": dcg / idcg,
    }


def run_ours(memory: LongTermMemory, q: dict[str, Any], user: str) -> tuple[list[str], float]:
    store = memory.store
    session_name: dict[int, str] = {}
    for sid, date, session in zip(q["haystack_session_ids"], q["haystack_dates"],
                                  q["haystack_sessions"], strict=True):
        when = parse_date(date)
        info = store.start_session(user, when)
        session_name[info.id] = sid
        with store.transaction():  # one per session: a haystack is an import, not a chat
            for turn in session:
                stored = store.add_turn(user, info.id, turn["role"], turn["content"], when)
                if turn["role"] == "user":
                    memory.remember(stored)
        store.end_session(info.id, when)
    t0 = time.perf_counter()
    items = memory.search(user, q["question"], depth=200, now=parse_date(q["question_date"]),
                          roles=("user",))
    latency = (time.perf_counter() - t0) * 1000
    ranked: list[str] = []
    with store.reading() as conn:
        for item in items:
            for turn_id in item.turn_ids:
                row = conn.execute("SELECT session_id FROM turns WHERE id = ?",
                                   (turn_id,)).fetchone()
                name = session_name.get(row[0]) if row else None
                if name is not None and name not in ranked:
                    ranked.append(name)
    return ranked, latency


def run_bm25(q: dict[str, Any]) -> list[str]:
    docs = [" ".join(t["content"] for t in s if t["role"] == "user")
            for s in q["haystack_sessions"]]
    return [q["haystack_session_ids"][i] for i in BM25(docs).top(q["question"], 10)]


def print_table(name: str, rows: dict[str, list[dict[str, float]]]) -> None:
    print(f"\n{name}")
    keys = ["recall_all@5", "recall_all@10", "ndcg_any@10"]
    print(f"  {'question type':28}{'n':>5}" + "".join(f"{k:>15}" for k in keys))
    every = [m for ms in rows.values() for m in ms]
    for qtype, ms in [*sorted(rows.items()), ("overall", every)]:
        print(f"  {qtype:28}{len(ms):5d}"
              + "".join(f"{statistics.mean(m[k] for m in ms):15.3f}" for k in keys))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", help="a LongMemEval-format .json or .json.xz file")
    parser.add_argument("--embedder", choices=["minilm", "hash", "none"], default="minilm")
    parser.add_argument("--limit", type=int, help="only the first N scored questions")
    parser.add_argument("--offset", type=int, default=0, help="skip the first N scored questions")
    parser.add_argument("--every", type=int, default=1, help="take every Nth scored question")
    args = parser.parse_args(argv)
    print(machine())
    print(f"data: {args.path} (offset {args.offset}, every {args.every}, limit {args.limit})")
    scored = [q for q in load(args.path)
              if not q["question_id"].endswith("_abs") and gold_sessions(q)]
    data = scored[args.offset :: args.every][: args.limit]
    embedder: Any = None
    if args.embedder == "minilm":
        embedder = CachedEmbedder(MiniLMEmbedder())
    elif args.embedder == "hash":
        embedder = HashEmbedder()
    ours: dict[str, list[dict[str, float]]] = {}
    base: dict[str, list[dict[str, float]]] = {}
    latencies: list[float] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for n, q in enumerate(data):
            if isinstance(embedder, CachedEmbedder):
                embedder.prefetch([q["question"]] + [t["content"] for s in q["haystack_sessions"]
                                                     for t in s if t["role"] == "user"])
            with Store.open(Path(tmp) / f"q{n}.db") as store:
                memory = LongTermMemory(store, embedder=embedder)
                ranked, latency = run_ours(memory, q, "user")
            (Path(tmp) / f"q{n}.db").unlink()
            latencies.append(latency)
            gold = gold_sessions(q)
            ours.setdefault(q["question_type"], []).append(metrics(ranked, gold))
            base.setdefault(q["question_type"], []).append(metrics(run_bm25(q), gold))
            if (n + 1) % 25 == 0:
                print(f"  ... {n + 1}/{len(data)} questions, {time.perf_counter() - start:.0f} s",
                      file=sys.stderr, flush=True)
    print(f"questions scored: {len(data)}, embedder: {args.embedder}, "
          f"wall time {time.perf_counter() - start:.0f} s")
    print_table("companion memory (hybrid: FTS5 bm25 + dense + fusion), session level", ours)
    print_table("plain BM25 baseline (k1=1.2, b=0.75, sessions of user turns)", base)
    print(f"\nrecall latency (memory.search, ms): p50 {percentile(latencies, 50):.1f}, "
          f"p95 {percentile(latencies, 95):.1f}")
    if isinstance(embedder, CachedEmbedder):
        print(query_embedding_note(embedder, [q["question"] for q in data[:50]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
