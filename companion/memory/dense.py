"""Dense recall's moving parts in one place: the embedder and its vector index.

:class:`DenseIndex` is what :class:`~companion.memory.longterm.LongTermMemory`
and :mod:`~companion.memory.consolidate` both use to embed and store vectors.
When the embedder fails once (a missing package, a broken model file) dense
recall is turned off for good and recall goes on with keywords alone, after one
warning on the ``companion`` logger (the CLI prints it as one line).

The last text embedded alone (a recall query) is remembered with its vector: a
turn embeds the user's message to recall with it, then again to store it, and
the second time costs nothing.
"""

from __future__ import annotations

import logging

from companion.errors import CompanionError
from companion.memory.embed import Embedder, Vectors
from companion.memory.store import Store
from companion.memory.vectors import Key, VectorIndex

log = logging.getLogger("companion.memory")


class DenseIndex:
    """An embedder and the vector index of its space; both None once dense recall is off."""

    def __init__(self, store: Store, embedder: Embedder | None) -> None:
        self.embedder = embedder
        self.index = VectorIndex(store, embedder.name, embedder.dim) if embedder else None
        #: (embedder, text, its vector): the last text embedded alone.
        self._last: tuple[Embedder, str, Vectors] | None = None

    @property
    def on(self) -> bool:
        return self.embedder is not None and self.index is not None

    def embed(self, texts: list[str]) -> Vectors | None:
        """One unit vector per text, or None when dense recall is (or just went) off."""
        embedder = self.embedder
        if embedder is None:
            return None
        last = self._last
        try:
            if last is not None and last[0] is embedder and texts and texts[0] == last[1]:
                if len(texts) == 1:
                    return last[2][None, :]
                import numpy as np

                rest = embedder.embed(texts[1:])
                joined: Vectors = np.concatenate([last[2][None, :], rest])
                return joined
            vectors = embedder.embed(texts)
        except (CompanionError, OSError, RuntimeError) as exc:
            log.warning("dense recall is off (%s); using keywords only", exc)
            self.embedder, self.index, self._last = None, None, None
            return None
        if len(texts) == 1:
            self._last = (embedder, texts[0], vectors[0])
        return vectors

    def add(self, user_id: str, keys: list[Key], texts: list[str]) -> bool:
        """Embed ``texts`` and store them under ``keys``; False when dense recall is off."""
        if self.index is None or not keys:
            return False
        vectors = self.embed(texts)
        if vectors is None or self.index is None:
            return False
        self.index.add(user_id, keys, vectors)
        return True

    def search(self, user_id: str, query: str, depth: int) -> list[tuple[Key, float]]:
        """The ``depth`` nearest items to ``query``, ``(key, cosine)``, best first."""
        if self.index is None or not query.strip():
            return []
        vectors = self.embed([query])
        if vectors is None or self.index is None:
            return []
        return self.index.search(user_id, vectors[0], depth)

    def drop(self, user_id: str) -> None:
        """Forget the user's cached vectors (after the store changed under them)."""
        if self.index is not None:
            self.index.drop(user_id)
