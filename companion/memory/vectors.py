"""The dense index: sentence vectors in the ``embeddings`` table, searched in memory.

Vectors live in SQLite (float32 BLOBs, one per turn, fact or summary) so that
forgetting an item deletes its vector in the same transaction (triggers do it).
For search, each user's vectors are loaded once into one numpy matrix and
scanned exactly (a matrix-vector product). Past :data:`ANN_THRESHOLD` vectors
that scan reads hundreds of megabytes per query, so a background thread builds
an HNSW index with usearch (when installed); exact search serves until it is
ready, and new vectors go into both. The cache (and its index) is dropped when
another connection commits (``PRAGMA data_version``) or when this process
forgets something.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from companion.memory.embed import Vectors, from_blob, to_blob
from companion.memory.store import Store

if TYPE_CHECKING:
    import numpy as np

Key = tuple[str, int]  # (kind, item id): kind is turn, fact or summary

#: From this many vectors of one user on, search goes through an HNSW index.
ANN_THRESHOLD = 20_000


@dataclass
class _Matrix:
    keys: list[Key] = field(default_factory=list)
    rows: Any = None  # np.ndarray, capacity >= len(keys)
    version: int = -1
    ann: Any = None  # usearch Index over row positions, once built
    building: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, keys: list[Key], vectors: Vectors) -> None:
        with self.lock:
            self._append(keys, vectors)

    def _append(self, keys: list[Key], vectors: Vectors) -> None:
        import numpy as np

        n, need = len(self.keys), len(self.keys) + len(keys)
        if self.rows is None or need > self.rows.shape[0]:
            grown = np.zeros((max(need, 2 * n, 256), vectors.shape[1]), dtype=np.float32)
            if self.rows is not None:
                grown[:n] = self.rows[:n]
            self.rows = grown
        self.rows[n:need] = vectors
        self.keys.extend(keys)
        if self.ann is not None:
            self.ann.add(np.arange(n, need, dtype=np.uint64), self.rows[n:need])

    def build(self) -> None:
        """Build the HNSW index over the rows (in a background thread)."""
        import numpy as np
        from usearch.index import Index

        with self.lock:
            n = len(self.keys)
            rows = self.rows[:n].copy()
        index = Index(ndim=rows.shape[1], metric="ip", dtype="f32")
        index.add(np.arange(n, dtype=np.uint64), rows)
        with self.lock:
            m = len(self.keys)
            if m > n:
                index.add(np.arange(n, m, dtype=np.uint64), self.rows[n:m])
            self.ann = index


class VectorIndex:
    """Per-user exact cosine search over the stored vectors of one embedding model."""

    def __init__(self, store: Store, model: str, dim: int) -> None:
        self.store, self.model, self.dim = store, model, dim
        self._cache: dict[str, _Matrix] = {}

    def _version(self) -> int:
        with self.store.reading() as conn:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def add(self, user_id: str, keys: list[Key], vectors: Vectors) -> None:
        """Store vectors (inside the caller's transaction, if any)."""
        if not keys:
            return
        with self.store.transaction() as conn:
            conn.executemany(
                """INSERT OR REPLACE INTO embeddings (kind, item_id, user_id, model, vector)
                   VALUES (?, ?, ?, ?, ?)""",
                [(k, i, user_id, self.model, to_blob(v))
                 for (k, i), v in zip(keys, vectors, strict=True)],
            )
        cached = self._cache.get(user_id)
        if cached is not None:
            cached.append(keys, vectors)

    def drop(self, user_id: str | None = None) -> None:
        """Forget the cached matrix of ``user_id`` (of everyone when None)."""
        if user_id is None:
            self._cache.clear()
        else:
            self._cache.pop(user_id, None)

    def _matrix(self, user_id: str) -> _Matrix:
        import numpy as np

        version = self._version()
        cached = self._cache.get(user_id)
        if cached is not None and cached.version == version:
            return cached
        with self.store.reading() as conn:
            rows = conn.execute(
                "SELECT kind, item_id, vector FROM embeddings WHERE user_id = ? AND model = ?",
                (user_id, self.model),
            ).fetchall()
        matrix = _Matrix(version=version)
        if rows:
            vectors = np.stack([from_blob(r["vector"], self.dim) for r in rows])
            matrix.append([(r["kind"], r["item_id"]) for r in rows], vectors)
        self._cache[user_id] = matrix
        return matrix

    def ready(self, user_id: str, timeout: float | None = None) -> bool:
        """Wait for the user's HNSW index if one is being built; whether one is in use."""
        matrix = self._matrix(user_id)
        thread = matrix.building
        if thread is not None:
            thread.join(timeout)
        return matrix.ann is not None

    def search(self, user_id: str, query: Vectors, k: int) -> list[tuple[Key, float]]:
        """The ``k`` nearest stored items of ``user_id``, best first, with cosine scores."""
        import numpy as np

        matrix = self._matrix(user_id)
        n = len(matrix.keys)
        if n == 0 or k <= 0:
            return []
        if matrix.ann is not None:
            with matrix.lock:
                found = matrix.ann.search(np.asarray(query, dtype=np.float32), min(k, n))
                return [(matrix.keys[int(pos)], 1.0 - float(dist))
                        for pos, dist in zip(found.keys, found.distances, strict=True)]
        if n >= ANN_THRESHOLD and matrix.building is None and _usearch_available():
            matrix.building = threading.Thread(target=matrix.build, daemon=True)
            matrix.building.start()
        scores: np.ndarray[Any, Any] = matrix.rows[:n] @ np.asarray(query, dtype=np.float32)
        top = min(k, n)
        best = np.argpartition(-scores, top - 1)[:top]
        best = best[np.argsort(-scores[best])]
        return [(matrix.keys[i], float(scores[i])) for i in best]


def _usearch_available() -> bool:
    from importlib.util import find_spec

    return find_spec("usearch") is not None
