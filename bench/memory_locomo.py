"""LoCoMo retrieval: turn-level recall@5/10/25/50 per category, session recall@5, latency.

    python bench/memory_locomo.py ../shared/benchdata/locomo/locomo_dev.json

Each conversation is ingested in order, with its session timestamps, through
the companion's write path (store.add_turn + LongTermMemory.remember in one
transaction per turn, consolidation between sessions); speaker_a is the user,
speaker_b the companion; a turn's text is "speaker: text" plus the photo
caption. Each question then queries the memory; the ranked items map back to
dia_ids (an episode is its turn, a fact its source turns). Questions without a
valid evidence id are left out. A plain BM25 over the same turns runs beside it.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from memory_bm25 import BM25
from memory_common import CachedEmbedder, load, machine, percentile, query_embedding_note

from companion.memory import Store
from companion.memory.embed import HashEmbedder, MiniLMEmbedder
from companion.memory.longterm import LongTermMemory
from companion.types import MemoryItem

_SESSION = re.compile(r"^session_(\d+)$")


def parse_when(text: str) -> datetime:
    """LoCoMo's "1:56 pm on 8 May, 2023" as an aware datetime (UTC)."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def conversation_turns(
    conv: dict[str, Any],
) -> list[tuple[int, datetime, list[tuple[str, str, str]]]]:
    """Sessions in order: (number, start time, [(speaker, dia_id, content)])."""
    out = []
    for key, value in conv.items():
        m = _SESSION.match(key)
        if m and isinstance(value, list):
            n = int(m.group(1))
            turns = []
            for t in value:
                content = f"{t['speaker']}: {t['text']}"
                if t.get("blip_caption"):
                    content += f" [shares a photo: {t['blip_caption']}]"
                turns.append((t["speaker"], t["dia_id"], content))
            out.append((n, parse_when(conv[f"session_{n}_date_time"]), turns))
    return sorted(out, key=lambda s: s[0])


def evidence_ids(qa: dict[str, Any], known: set[str]) -> list[str]:
    """The question's valid evidence dia_ids (see the data README's quirks)."""
    out: list[str] = []
    for raw in qa.get("evidence") or []:
        for a, b in re.findall(r"D(\d+):(\d+)", str(raw)):
            dia = f"D{int(a)}:{int(b)}"
            if dia in known and dia not in out:
                out.append(dia)
    return out


def ingest(memory: LongTermMemory, user: str, conv: dict[str, Any]) -> dict[int, str]:
    """Every session in order through the real write path; returns turn id -> dia_id."""
    store = memory.store
    speaker_a = conv["speaker_a"]
    dia_of: dict[int, str] = {}
    for _, when, turns in conversation_turns(conv):
        session = store.start_session(user, when)
        for i, (speaker, dia, content) in enumerate(turns):
            role = "user" if speaker == speaker_a else "assistant"
            with store.transaction():
                turn = store.add_turn(
                    user, session.id, role, content, when + timedelta(seconds=30 * i)
                )
                memory.remember(turn)
            dia_of[turn.id] = dia
        store.end_session(session.id, when + timedelta(seconds=30 * len(turns)))
        memory.consolidate(user)  # between sessions, as the companion does
    return dia_of


def ranked_turns(items: list[MemoryItem]) -> list[int]:
    """Turn ids in rank order: an episode is its turn, a fact its source turns."""
    out: list[int] = []
    for item in items:
        if item.kind == "summary":
            continue
        for t in item.turn_ids or ((item.source_turn_id,) if item.source_turn_id else ()):
            if t not in out:
                out.append(t)
    return out


def ranked_sessions(items: list[MemoryItem], session_of: dict[int, int]) -> list[int]:
    out: list[int] = []
    for item in items:
        for t in item.turn_ids or ((item.source_turn_id,) if item.source_turn_id else ()):
            s = session_of.get(t)
            if s is not None and s not in out:
                out.append(s)
    return out


KS = (5, 10, 25, 50)


def report(name: str, hits: dict[int, dict[int, list[float]]], sess: list[float]) -> None:
    print(f"\n{name}: turn-level recall@k (%) per category id; n = questions scored")
    print("  k  " + "".join(f"{'cat ' + str(c):>9}" for c in sorted(hits)) + "      all  all-but-5")
    for k in KS:
        cells = [statistics.mean(hits[c][k]) * 100 for c in sorted(hits)]
        every = [v for c in hits for v in hits[c][k]]
        no5 = [v for c in hits if c != 5 for v in hits[c][k]]
        print(f"{k:>3}  " + "".join(f"{v:9.1f}" for v in cells)
              + f"{statistics.mean(every) * 100:9.1f}{statistics.mean(no5) * 100:11.1f}")
    print("  n  " + "".join(f"{len(hits[c][5]):9d}" for c in sorted(hits)))
    print(f"  session-level recall@5 (all categories): {statistics.mean(sess) * 100:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", help="a LoCoMo-format JSON file")
    parser.add_argument("--embedder", choices=["minilm", "hash", "none"], default="minilm")
    parser.add_argument("--limit", type=int, help="only the first N conversations")
    args = parser.parse_args(argv)
    print(machine())
    print(f"data: {args.path}")
    data = load(args.path)[: args.limit]
    embedder: Any = None
    if args.embedder == "minilm":
        embedder = CachedEmbedder(MiniLMEmbedder())
    elif args.embedder == "hash":
        embedder = HashEmbedder()
    ours: dict[int, dict[int, list[float]]] = {}
    base: dict[int, dict[int, list[float]]] = {}
    ours_sess: list[float] = []
    base_sess: list[float] = []
    latencies: list[float] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.db")
        memory = LongTermMemory(store, embedder=embedder)
        for conv in data:
            user = conv["sample_id"]
            dia_of = ingest(memory, user, conv["conversation"])
            known = set(dia_of.values())
            session_of = {t: int(d[1:].split(":")[0]) for t, d in dia_of.items()}
            bm25 = BM25([content for _, _, turns in conversation_turns(conv["conversation"])
                         for *_, content in turns])
            dias = [dia for _, _, turns in conversation_turns(conv["conversation"])
                    for _, dia, _ in turns]
            last = max(s.started_at for s in store.sessions(user)) + timedelta(days=1)
            for qa in conv["qa"]:
                gold = evidence_ids(qa, known)
                if not gold:
                    continue
                cat = int(qa["category"])
                t0 = time.perf_counter()
                items = memory.search(user, qa["question"], depth=100, now=last)
                latencies.append((time.perf_counter() - t0) * 1000)
                got = [dia_of[t] for t in ranked_turns(items) if t in dia_of]
                b_got = [dias[i] for i in bm25.top(qa["question"], 50)]
                gold_sess = {int(g[1:].split(":")[0]) for g in gold}
                for table, ranked in ((ours, got), (base, b_got)):
                    row = table.setdefault(cat, {k: [] for k in KS})
                    for k in KS:
                        row[k].append(len(set(ranked[:k]) & set(gold)) / len(gold))
                top_sessions = ranked_sessions(items, session_of)[:5]
                ours_sess.append(len(gold_sess & set(top_sessions)) / len(gold_sess))
                b_sessions = list(dict.fromkeys(int(d[1:].split(":")[0]) for d in b_got))[:5]
                base_sess.append(len(gold_sess & set(b_sessions)) / len(gold_sess))
        store.close()
    print(f"conversations: {len(data)}, embedder: {args.embedder}, "
          f"wall time {time.perf_counter() - start:.0f} s")
    report("companion memory (hybrid: FTS5 bm25 + dense + fusion)", ours, ours_sess)
    report("plain BM25 baseline (k1=1.2, b=0.75, turns as documents)", base, base_sess)
    print(f"\nrecall latency (memory.search, ms): p50 {percentile(latencies, 50):.1f}, "
          f"p95 {percentile(latencies, 95):.1f} over {len(latencies)} queries")
    if isinstance(embedder, CachedEmbedder):
        print(query_embedding_note(embedder, [qa["question"] for qa in data[0]["qa"][:50]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
