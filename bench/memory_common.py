"""Shared helpers of the memory benchmarks: the machine line, timing, an embedding cache.

The cache (an SQLite file keyed by model name and text hash) only saves
recomputing the same sentence vectors between runs: the memory still receives
every vector through its own write path. ``python bench/memory_common.py
precompute FILE...`` fills it for LoCoMo (``.json``) or LongMemEval
(``.json.xz``) files ahead of a run.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import platform
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from companion.memory.embed import Embedder, MiniLMEmbedder, Vectors

CACHE = Path(os.environ.get("COMPANION_BENCH_CACHE", Path.home() / ".cache/companion/bench-emb.db"))


def machine() -> str:
    """CPU model and core count, for the first line of every benchmark."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"machine: {model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


class CachedEmbedder:
    """Wraps an embedder with a persistent cache of its vectors."""

    def __init__(self, inner: Embedder, path: Path = CACHE) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS v (k TEXT PRIMARY KEY, b BLOB)")
        self.computed = 0
        self.memo: dict[str, bytes] = {}

    def prefetch(self, texts: list[str]) -> None:
        """Read the cached vectors of ``texts`` into memory in one go (a run's next batch)."""
        self.memo.clear()
        keys = [self._key(t) for t in texts]
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            self.memo.update(self.db.execute(f"SELECT k, b FROM v WHERE k IN ({marks})", chunk))
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True)
                                     if k not in self.memo))
        if missing:  # one batch is much faster than one text at a time
            self.embed(missing)
            self.memo.update((self._key(t), v.astype("<f4").tobytes())
                             for t, v in zip(missing, self.embed(missing), strict=True))

    def _key(self, text: str) -> str:
        return hashlib.sha1(f"{self.name}\0{text}".encode()).hexdigest()

    def embed(self, texts: list[str]) -> Vectors:
        import numpy as np

        keys = [self._key(t) for t in texts]
        found: dict[str, bytes] = {k: self.memo[k] for k in keys if k in self.memo}
        todo = [k for k in keys if k not in found]
        for i in range(0, len(todo), 500):
            chunk = todo[i : i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"SELECT k, b FROM v WHERE k IN ({marks})", chunk))
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
        if missing:
            vectors = self.inner.embed(missing)
            self.computed += len(missing)
            rows = [(self._key(t), v.astype("<f4").tobytes()) for t, v in zip(missing, vectors,
                                                                             strict=True)]
            self.db.executemany("INSERT OR REPLACE INTO v VALUES (?, ?)", rows)
            self.db.commit()
            found.update(rows)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, k in enumerate(keys):
            out[i] = np.frombuffer(found[k], dtype="<f4")
        return out


def query_embedding_note(embedder: CachedEmbedder, questions: list[str]) -> str:
    """The real model's time per query vector, which the cache hid from the latencies."""
    embedder.inner.embed(questions[:1])
    times = []
    for q in questions:
        t = time.perf_counter()
        embedder.inner.embed([q])
        times.append((time.perf_counter() - t) * 1000)
    return (f"query vectors came from the cache; computing one with {embedder.name} takes "
            f"p50 {percentile(times, 50):.1f} ms, p95 {percentile(times, 95):.1f} ms here "
            f"(n={len(times)}): add it to the recall latency")


def load(path: str) -> Any:
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def _texts(path: str) -> list[str]:
    from memory_locomo import conversation_turns

    data = load(path)
    texts: list[str] = []
    if path.endswith(".xz"):
        for q in data:
            texts.append(q["question"])
            for session in q["haystack_sessions"]:
                texts += [t["content"] for t in session if t["role"] == "user"]
    else:
        for conv in data:
            texts += [qa["question"] for qa in conv["qa"]]
            for _, _, turns in conversation_turns(conv["conversation"]):
                texts += [content for _, _, content in turns]
    return list(dict.fromkeys(texts))


def precompute(paths: list[str]) -> None:
    emb = CachedEmbedder(MiniLMEmbedder())
    for path in paths:
        texts = _texts(path)
        start = time.perf_counter()
        for i in range(0, len(texts), 512):
            emb.embed(texts[i : i + 512])
            rate = emb.computed / max(time.perf_counter() - start, 1e-9)
            print(f"{path}: {i + 512}/{len(texts)} ({rate:.0f} new/s)", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if sys.argv[1:2] == ["precompute"]:
        precompute(sys.argv[2:])
