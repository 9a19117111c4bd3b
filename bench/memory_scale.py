"""Memory at scale: recall p50/p95 and ingest rate at 1k, 10k and 100k memories, and the DB size.

    python bench/memory_scale.py [--sizes 1000 10000 100000] [--embedder hash|minilm]

Synthetic turns (template sentences over a random vocabulary, 90% user, 10%
assistant, one session per 20 turns, one turn a minute) go through the real
write path, LongTermMemory.remember, 500 turns per transaction; the rule
extractor runs on each user turn as in a chat. With ``--embedder hash``
(default: the fake, so that 100k turns ingest in minutes on 2 cores) the
figures are the store, FTS5 and vector-index costs; the real model's own cost
per query embedding is measured separately and printed, to be added to p50.
Past 20k vectors recall goes through an HNSW index (usearch) built in the
background after loading; the build time is printed and recall is timed once
it is ready.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from memory_common import machine, percentile

from companion.memory import Store
from companion.memory.embed import Embedder, HashEmbedder, MiniLMEmbedder, embedder_available
from companion.memory.longterm import LongTermMemory

TEMPLATES = [
    "I went to the {a} with my {b} and we talked about {c}.",
    "My {b} {n} loves {a} and {c}.",
    "I live in {n} now, near the {a}.",
    "Yesterday I had a {a} meeting about {c} at work.",
    "I love {a}.",
    "We should plan a trip to {n} to see the {a} in {c}.",
]


def vocabulary(rng: random.Random, n: int = 5000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(n)]


def run(size: int, embedder: Embedder, rng: random.Random, words: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.db"
        store = Store.open(path)
        memory = LongTermMemory(store, embedder=embedder)
        start_time = datetime(2025, 1, 1, tzinfo=UTC)
        t0 = time.perf_counter()
        session = None
        for start in range(0, size, 500):
            with store.transaction():
                for i in range(start, min(size, start + 500)):
                    when = start_time + timedelta(minutes=i)
                    if i % 20 == 0:
                        session = store.start_session("u", when)
                    assert session is not None
                    text = rng.choice(TEMPLATES).format(
                        a=rng.choice(words), b=rng.choice(words), c=rng.choice(words),
                        n=rng.choice(words).capitalize())
                    role = "assistant" if i % 10 == 9 else "user"
                    memory.remember(store.add_turn("u", session.id, role, text, when))
        ingest = time.perf_counter() - t0
        now = start_time + timedelta(minutes=size)
        t1 = time.perf_counter()
        memory.search("u", "warm the cache", now=now)  # loads vectors; may start an index build
        ann = memory.index is not None and memory.index.ready("u", timeout=1200)
        index_note = f", HNSW index built in {time.perf_counter() - t1:.0f} s" if ann else ""
        latencies = []
        for _ in range(200):
            query = f"what about the {rng.choice(words)} and {rng.choice(words)}?"
            t1 = time.perf_counter()
            memory.recall("u", query, limit=8, now=now)
            latencies.append((time.perf_counter() - t1) * 1000)
        store.checkpoint()
        store.close()
        size_mb = path.stat().st_size / 1e6
    print(f"{size:>8} memories: ingest {size / ingest:8.0f} turns/s ({ingest:6.1f} s), "
          f"recall p50 {percentile(latencies, 50):6.1f} ms, "
          f"p95 {percentile(latencies, 95):6.1f} ms, "
          f"database {size_mb:7.1f} MB{index_note}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--embedder", choices=["hash", "minilm"], default="hash")
    args = parser.parse_args(argv)
    print(machine())
    embedder: Embedder = MiniLMEmbedder() if args.embedder == "minilm" else HashEmbedder(384)
    print(f"embedder: {embedder.name} ({embedder.dim} dimensions)")
    rng = random.Random(7)
    words = vocabulary(rng)
    for size in args.sizes:
        run(size, embedder, rng, words)
    if args.embedder == "hash" and embedder_available():
        real = MiniLMEmbedder()
        real.embed(["load the model"])
        times = []
        for i in range(30):
            t = time.perf_counter()
            real.embed([f"what did I tell you about my sister's trip number {i}?"])
            times.append((time.perf_counter() - t) * 1000)
        print(f"all-MiniLM-L6-v2 query embedding (add to recall latency): "
              f"p50 {percentile(times, 50):.1f} ms, p95 {percentile(times, 95):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
