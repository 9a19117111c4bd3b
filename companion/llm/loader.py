"""Turn a model name from the user into a ready backend: :func:`load_llm`.

A spec is tried as, in order:

0. a prefix that picks another backend: ``openai:<url>#<model>``, a remote
   OpenAI-compatible server (vLLM, llama.cpp, Ollama, ``companion serve``), see
   :mod:`companion.llm.openai_backend`; ``llamacpp:<registry name | path/to/file.gguf>``,
   the GGUF file run in-process by llama.cpp (extra ``companion[llamacpp]``; no
   conversion, no torch), see :mod:`companion.llm.llamacpp_backend`;
1. ``fake``: the scripted :class:`~companion.llm.fake.FakeLLM`;
2. a registry name (``companion models``): fetched and converted on first use,
   then loaded from the converted copy;
3. a local folder holding a transformers model (``config.json``);
4. a local ``.gguf`` file: converted once into the model cache, then loaded;
5. a Hugging Face hub id ``org/name``: from the local Hugging Face cache, else
   downloaded from the hub (the only case that goes online).

Prefix a local path with ``./`` to skip the registry. Nothing matching raises
:class:`ModelNotFoundError` with what was tried and the registry's names.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from companion.errors import ModelError, ModelNotFoundError
from companion.llm.base import LLM
from companion.llm.fetch import converted_dir, fetch_model, is_converted
from companion.llm.registry import ModelEntry, Registry, load_registry
from companion.paths import models_dir

if TYPE_CHECKING:
    from companion.llm.gguf.backend import GGUFBackend

Progress = Callable[[str], None]
SourceKind = Literal["fake", "registry", "directory", "gguf", "hub"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where a spec resolved to."""

    kind: SourceKind
    spec: str
    path: Path | None = None
    entry: ModelEntry | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One registry model, for ``companion models``."""

    name: str
    description: str
    #: Download size in bytes (the GGUF file).
    size: int
    #: Whether the converted copy is in the cache (the first use will not download).
    cached: bool
    default: bool
    path: Path


def list_models(*, cache: Path | None = None, registry: Registry | None = None) -> list[ModelInfo]:
    """The registry's models, in registry order, with whether each is cached."""
    registry = registry or load_registry()
    return [
        ModelInfo(
            name=e.name,
            description=e.description,
            size=e.size,
            cached=is_converted(converted_dir(e, cache)),
            default=e.name == registry.default,
            path=converted_dir(e, cache),
        )
        for e in registry.models
    ]


def resolve(spec: str, *, registry: Registry) -> ModelSource:
    """Decide what ``spec`` names, without loading anything; see the module docstring."""
    spec = spec.strip()
    if spec == "fake":
        return ModelSource("fake", spec)
    entry = registry.get(spec)
    if entry is not None:
        return ModelSource("registry", spec, entry=entry)
    path = Path(spec).expanduser()
    tried = [f"registry: no model named {spec!r}"]
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelSource("directory", spec, path=path)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource("gguf", spec, path=ggufs[0])
        tried.append(f"folder {path}: no config.json (and not exactly one .gguf file)")
    elif path.is_file():
        if path.suffix.lower() == ".gguf":
            return ModelSource("gguf", spec, path=path)
        tried.append(f"file {path}: not a .gguf file")
    elif _HUB_ID.match(spec):
        return ModelSource("hub", spec)
    else:
        tried.append(f"path {path}: does not exist")
        tried.append("hub id: not of the form org/name")
    raise ModelNotFoundError(spec, tried=tried, available=registry.names())


def load_llm(
    spec: str,
    *,
    threads: int | None = None,
    progress: Progress | None = None,
    cache: Path | None = None,
    quantize: str = "auto",
    engine: str = "auto",
    draft: str = "",
) -> LLM:
    """Load the model ``spec`` names (see the module docstring) as an :class:`LLM`.

    ``progress`` receives one-line status messages (fetching, converting,
    loading); when it is ``None``, fetching still reports on standard error.
    ``cache`` overrides :func:`companion.paths.models_dir`. ``quantize`` picks the
    transformers backend's weights ("auto", "none", "int8", "int4"; see
    :mod:`companion.llm.quantize`); "auto" follows the registry's ``cpu_quantize``.
    ``engine`` picks how a registry model or a ``.gguf`` file runs: "auto" (the
    GGUF engine, :mod:`companion.llm.gguf`, on the file's own blocks with no
    conversion; transformers after a one-line notice when it cannot), "gguf" (the
    GGUF engine or an error) or "transformers" (the converted copy). ``draft``
    names a smaller model of the same vocabulary (a registry name or a .gguf file)
    that drafts for the GGUF engine (speculative decoding).
    """
    if spec.strip().startswith("openai:"):
        from companion.llm.openai_backend import open_openai_llm, redact

        if progress is not None:
            progress(f"connecting to {redact(spec.strip())}")
        return open_openai_llm(spec.strip())
    registry = load_registry()
    if spec.strip().startswith("llamacpp:"):
        from companion.llm.llamacpp_backend import open_llamacpp_llm

        target = spec.strip().removeprefix("llamacpp:").strip()
        return open_llamacpp_llm(
            target, registry=registry, threads=threads, progress=progress, cache=cache
        )
    source = resolve(spec, registry=registry)
    if source.kind == "fake":
        from companion.llm.fake import FakeLLM

        return FakeLLM()
    if source.kind in ("registry", "gguf") and engine != "transformers":
        found = _gguf_engine(source, threads, progress, cache, required=engine == "gguf")
        if found is not None:
            if draft.strip():
                found.draft_with(_draft_engine(draft.strip(), registry, threads, progress, cache))
            return found
    if draft.strip():
        (progress or _stderr)(f"a draft model ({draft}) needs the GGUF engine: not used")

    from companion.llm.transformers_backend import TransformersLLM

    def say(line: str) -> None:
        if progress is not None:
            progress(line)

    if source.kind == "registry":
        assert source.entry is not None
        folder = fetch_model(source.entry, cache=cache, progress=progress)
        say(f"loading {source.entry.name}")
        return _load_folder(
            folder, source.entry.name, threads, quantize, cache, source.entry.cpu_quantize
        )
    if source.kind == "directory":
        assert source.path is not None
        say(f"loading {source.path}")
        return _load_folder(source.path, source.path.name, threads, quantize, cache)
    if source.kind == "gguf":
        assert source.path is not None
        folder = _converted_gguf(source.path, cache=cache, progress=progress)
        say(f"loading {source.path.name}")
        return _load_folder(folder, source.path.stem, threads, quantize, cache)

    # A hub id: the local Hugging Face cache first, the hub only if that fails.
    tried = [f"registry: no model named {spec!r}", f"path {spec}: does not exist"]
    try:
        return TransformersLLM.from_pretrained(spec, name=spec, threads=threads, quantize=quantize)
    except OSError:
        tried.append("Hugging Face cache: not there")
    unreachable = _hub_unreachable()
    if unreachable:
        tried.append(f"Hugging Face hub: {unreachable}")
        raise ModelNotFoundError(spec, tried=tried, available=registry.names())
    try:
        say(f"downloading {spec} from the Hugging Face hub")
        return TransformersLLM.from_pretrained(
            spec, name=spec, threads=threads, local_files_only=False, quantize=quantize
        )
    except OSError as exc:
        tried.append(f"Hugging Face hub: {_first_line(exc)}")
    raise ModelNotFoundError(spec, tried=tried, available=registry.names())


def _gguf_engine(
    source: ModelSource,
    threads: int | None,
    progress: Progress | None,
    cache: Path | None,
    *,
    required: bool,
) -> GGUFBackend | None:
    """``source``'s GGUF run by the GGUF engine (downloaded first, never converted), or None."""
    from companion.llm.fetch import assemble, gguf_path, stderr_progress
    from companion.llm.gguf.backend import open_gguf_engine

    if source.entry is not None:
        path = gguf_path(source.entry, cache or models_dir())
        if not (path.is_file() and path.stat().st_size == source.entry.size):
            assemble(source.entry, cache or models_dir(), progress=progress or stderr_progress)
        name = source.entry.name
    else:
        assert source.path is not None
        path, name = source.path, source.path.stem
    if progress is not None:
        progress(f"loading {name}")
    return open_gguf_engine(
        path, name=name, threads=threads, notice=progress or stderr_progress, required=required
    )


def _draft_engine(
    spec: str, registry: Registry, threads: int | None, progress: Progress | None,
    cache: Path | None,
) -> GGUFBackend | None:
    """The GGUF engine of the draft model ``spec`` (a registry name or a .gguf file)."""
    source = resolve(spec, registry=registry)
    if source.kind not in ("registry", "gguf"):
        raise ModelError(f"draft model {spec!r}: a registry model or a .gguf file, please")
    return _gguf_engine(source, threads, progress, cache, required=True)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the hub cannot be reached, or None if it can (saves its client's retries)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # a direct connection test says nothing about the proxy
    url = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or 443
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"{host} is unreachable ({exc})"
    return None


def _load_folder(
    folder: Path,
    name: str,
    threads: int | None,
    quantize: str,
    cache: Path | None,
    cpu_quantize: str | None = None,
) -> LLM:
    from companion.llm.transformers_backend import TransformersLLM

    try:
        return TransformersLLM.from_pretrained(
            folder,
            name=name,
            threads=threads,
            quantize=quantize,
            cpu_quantize=cpu_quantize,
            cache=cache,
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load {name} from {folder}: {_first_line(exc)}") from exc


def _converted_gguf(gguf: Path, *, cache: Path | None, progress: Progress | None) -> Path:
    """Convert a local GGUF once; the copy is keyed on its path, size and modification time."""
    from companion.llm.convert import convert_gguf
    from companion.llm.fetch import stderr_progress

    gguf = gguf.resolve()
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    folder = (cache or models_dir()) / "local" / f"{gguf.stem}-{key}"
    if not is_converted(folder):
        say = progress or stderr_progress
        say(f"converting {gguf.name} to safetensors (once)")
        convert_gguf(gguf, folder, progress=say)
    return folder


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
