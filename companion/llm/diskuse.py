"""What the model cache holds on disk, and removing the copies older versions left.

Each registry model is a GGUF file in ``<model cache>/gguf/``. Versions of
companion before the GGUF-native engine also converted it: a float32
safetensors folder ``<model cache>/<name>/`` and int8/int4 copies in
``<model cache>/quantized/<name>-<key>/``, several times the GGUF's size.
:func:`usage` measures them; :func:`prune` deletes them (only those: never a GGUF).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from companion.llm.fetch import converted_dir, gguf_path
from companion.llm.registry import ModelEntry
from companion.paths import models_dir


@dataclass(frozen=True, slots=True)
class Usage:
    """One model's files in the cache."""

    name: str
    gguf: Path
    gguf_bytes: int
    #: Converted copies (folders), with their sizes.
    copies: tuple[tuple[Path, int], ...]

    @property
    def copies_bytes(self) -> int:
        return sum(size for _, size in self.copies)


def size_of(path: Path) -> int:
    """Bytes on disk under ``path`` (a file or a folder; links not followed)."""
    if path.is_symlink() or not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def copies_of(entry: ModelEntry, cache: Path | None = None) -> list[Path]:
    """The converted copies of ``entry`` that exist in the cache."""
    cache = cache or models_dir()
    found = [converted_dir(entry, cache)] if converted_dir(entry, cache).is_dir() else []
    quantized = cache / "quantized"
    if quantized.is_dir():
        found += sorted(p for p in quantized.glob(f"{entry.name}-*") if p.is_dir())
    return found


def usage(entry: ModelEntry, cache: Path | None = None) -> Usage:
    path = gguf_path(entry, cache)
    return Usage(
        name=entry.name,
        gguf=path,
        gguf_bytes=size_of(path),
        copies=tuple((p, size_of(p)) for p in copies_of(entry, cache)),
    )


def prune(entries: list[ModelEntry], cache: Path | None = None) -> int:
    """Delete every converted copy of ``entries``; returns the bytes freed."""
    freed = 0
    for entry in entries:
        for path in copies_of(entry, cache):
            size = size_of(path)
            shutil.rmtree(path)
            freed += size
    return freed


def megabytes(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:,.0f} MB"
