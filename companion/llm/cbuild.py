"""Compiling our C kernels once, into the model cache, on first use.

The library's name carries a hash of its sources, the compiler, the flags and
anything else the build depends on, so a new version (or another CPU, for
``-march=native``) builds anew and never loads a stale file. Builds are
serialised in the process and written atomically (compiled in a temporary
folder, then renamed), so a half-written library is never loaded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

_build_lock = threading.Lock()


def compile_library(
    sources: Mapping[str, bytes],
    flags: Sequence[str],
    folder: Path,
    prefix: str,
    *,
    depends: str = "",
    timeout: float = 300,
) -> Path:
    """The shared library built from ``sources`` (name -> text) with ``flags``, in
    ``folder`` as ``<prefix>-<hash>.so``; built only when it is not there yet.
    ``depends``: more that the build depends on (e.g. the CPU). Raises OSError
    without a compiler, CalledProcessError when compiling fails."""
    compiler = os.environ.get("CC") or "cc"
    key = hashlib.sha256()
    for name, text in sources.items():
        key.update(name.encode() + b"\0" + text)
    key.update(" ".join((compiler, *flags, depends)).encode())
    target = folder / f"{prefix}-{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    if shutil.which(compiler) is None:
        raise OSError(f"no C compiler ({compiler}) to build the native kernels; install one "
                      "(e.g. gcc) or set $CC")
    with _build_lock:
        if target.exists():
            return target
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            paths = []
            for name, text in sources.items():
                (Path(tmp) / name).write_bytes(text)
                paths.append(str(Path(tmp) / name))
            out = Path(tmp) / target.name
            subprocess.run(
                [compiler, *flags, *paths, "-o", str(out), "-lm"],
                check=True, capture_output=True, timeout=timeout,
            )  # fmt: skip
            os.replace(out, target)
    return target
