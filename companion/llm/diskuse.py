"""What the model cache holds on disk, and removing the copies older versions left.

Each registry model is a GGUF file in ``<model cache>/gguf/``, and nothing else:
it runs as it is. Versions of companion before the GGUF-native engine also
converted every GGUF they loaded, into folders several times its size (the
legacy layout, below). :func:`usage` and :func:`local_copies` measure them;
:func:`prune` deletes them (only those: never a GGUF).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from companion.llm.fetch import gguf_path
from companion.llm.registry import ModelEntry
from companion.paths import models_dir


@dataclass(frozen=True, slots=True)
class Usage:
    """One model's files in the cache."""

    name: str
    gguf: Path
    gguf_bytes: int
    #: Copies older versions converted (folders), with their sizes.
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


def usage(entry: ModelEntry, cache: Path | None = None) -> Usage:
    """The GGUF of ``entry`` and the copies older versions made of it."""
    cache = cache or models_dir()
    path = gguf_path(entry, cache)
    return Usage(
        name=entry.name,
        gguf=path,
        gguf_bytes=size_of(path),
        copies=_sized(_legacy_copies(cache / entry.name, cache)),
    )


def local_copies(cache: Path | None = None) -> tuple[tuple[Path, int], ...]:
    """The copies older versions made of ``.gguf`` files given by path, with their sizes."""
    cache = cache or models_dir()
    return _sized([p for folder in _legacy_local(cache) for p in _legacy_copies(folder, cache)])


def prune(entries: Sequence[ModelEntry], cache: Path | None = None) -> int:
    """Delete every copy older versions made: of ``entries`` and of ``.gguf`` files
    given by path. The GGUF files stay. Returns the bytes freed."""
    cache = cache or models_dir()
    paths = [p for e in entries for p in _legacy_copies(cache / e.name, cache)]
    paths += [p for p, _ in local_copies(cache)]
    freed = 0
    for path in paths:
        freed += size_of(path)
        shutil.rmtree(path)
    return freed


def megabytes(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:,.0f} MB"


# -- the legacy layout ------------------------------------------------------------
#
# What versions before the GGUF-native engine wrote; nothing writes it any more:
#
#   <cache>/<name>/                   a registry model converted to float32 safetensors
#   <cache>/local/<stem>-<key>/       a .gguf file given by path, converted the same way
#   <cache>/quantized/<folder>-<key>/ the int8/int4 copy made from either (<folder> is
#                                     the converted folder's name)
#
# <key> is 12 hex digits. <cache>/quantized/ still holds the int8/int4 copies of
# the user's own safetensors folders: only those named after a converted folder
# are counted here.

_KEY = "-[0-9a-f]{12}"


def _legacy_copies(converted: Path, cache: Path) -> list[Path]:
    """``converted``, an older version's converted folder, when it is there, and the
    int8/int4 copies made from it (those may outlive it)."""
    found = [converted] if converted.is_dir() and not converted.is_symlink() else []
    quantized = cache / "quantized"
    if quantized.is_dir():
        made = re.compile(re.escape(converted.name) + _KEY)
        found += sorted(p for p in quantized.iterdir() if p.is_dir() and made.fullmatch(p.name))
    return found


def _legacy_local(cache: Path) -> list[Path]:
    """The folders older versions converted ``.gguf`` files given by path into."""
    local = cache / "local"
    if not local.is_dir():
        return []
    return sorted(p for p in local.iterdir() if p.is_dir() and re.fullmatch(f".+{_KEY}", p.name))


def _sized(paths: Sequence[Path]) -> tuple[tuple[Path, int], ...]:
    return tuple((p, size_of(p)) for p in paths)
