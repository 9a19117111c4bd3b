"""Turn a model name from the user into a ready backend: :func:`load_llm`.

A spec is tried as, in order:

0. a prefix that picks another backend: ``openai:<url>#<model>``, a remote
   OpenAI-compatible server (vLLM, llama.cpp, Ollama, ``companion serve``), see
   :mod:`companion.llm.openai_backend`; ``llamacpp:<registry name | path/to/file.gguf>``,
   the GGUF file run in-process by llama.cpp (extra ``companion[llamacpp]``; no
   conversion, no torch), see :mod:`companion.llm.llamacpp_backend`;
1. ``fake``: the scripted :class:`~companion.llm.fake.FakeLLM`;
2. a registry name (``companion models``): its GGUF file, downloaded and
   verified on first use (:mod:`companion.llm.fetch`);
3. a local folder holding a transformers model (``config.json``);
4. a local ``.gguf`` file;
5. a Hugging Face hub id ``org/name``: from the local Hugging Face cache, else
   downloaded from the hub (the only case that goes online).

A GGUF file (2 and 4) runs on the GGUF engine (:mod:`companion.llm.gguf`) as it
is. When the engine cannot run it, or ``engine="transformers"`` asks for it,
transformers reads it and dequantizes it in memory: slow, and nothing is
written beside the file. Folders and hub ids (3 and 5) run on transformers.

Prefix a local path with ``./`` to skip the registry. Nothing matching raises
:class:`ModelNotFoundError` with what was tried and the registry's names.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from companion.errors import ModelError, ModelNotFoundError
from companion.llm.base import LLM
from companion.llm.fetch import fetch_gguf, gguf_path, has_gguf, stderr_progress
from companion.llm.registry import ModelEntry, Registry, load_registry

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
    #: Whether the verified GGUF is in the cache (the first use will not download).
    cached: bool
    default: bool
    #: Where the GGUF is (or will be once fetched).
    path: Path


def list_models(*, cache: Path | None = None, registry: Registry | None = None) -> list[ModelInfo]:
    """The registry's models, in registry order, with whether each is cached."""
    registry = registry or load_registry()
    return [
        ModelInfo(
            name=e.name,
            description=e.description,
            size=e.size,
            cached=has_gguf(e, cache),
            default=e.name == registry.default,
            path=gguf_path(e, cache),
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


def resolve_draft(draft: str, source: ModelSource) -> str:
    """The draft model to load for ``source``, from the ``draft`` setting.

    "" is none; "auto" is the registry entry's ``draft`` (none when the entry
    has none, or ``source`` is not a registry model); any other value is a
    model spec, as given.
    """
    draft = draft.strip()
    if draft != "auto":
        return draft
    return (source.entry.draft or "") if source.entry is not None else ""


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

    ``progress`` receives one-line status messages (fetching, loading); when it
    is ``None``, fetching and the slow in-memory load of a GGUF by transformers
    still report on standard error. ``cache`` overrides
    :func:`companion.paths.models_dir`. ``quantize`` picks the transformers
    backend's weights for a local folder of safetensors ("auto", "none", "int8",
    "int4"; see :mod:`companion.llm.quantize`). ``engine`` picks how a registry
    model or a ``.gguf`` file runs: "auto" (the GGUF engine, on the file's own
    blocks; transformers after a one-line notice when it cannot), "gguf" (the
    GGUF engine or an error) or "transformers" (the file dequantized in memory).
    ``draft`` names a smaller model of the same vocabulary (a registry name or a
    .gguf file) that drafts for the GGUF engine (speculative decoding); "auto"
    takes the registry's choice for ``spec`` (:func:`resolve_draft`), "" none.
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
    draft = resolve_draft(draft, source)
    if source.kind in ("registry", "gguf") and engine != "transformers":
        found = _gguf_engine(source, threads, progress, cache, required=engine == "gguf")
        if found is not None:
            if draft:
                found.draft_with(_draft_engine(draft, registry, threads, progress, cache))
            return found
    if draft:
        (progress or stderr_progress)(f"a draft model ({draft}) needs the GGUF engine: not used")

    from companion.llm.transformers_backend import TransformersLLM

    def say(line: str) -> None:
        if progress is not None:
            progress(line)

    if source.kind == "registry":
        assert source.entry is not None
        path = fetch_gguf(source.entry, cache=cache, progress=progress)
        return _gguf_in_memory(path, source.entry.name, threads, quantize, progress)
    if source.kind == "gguf":
        assert source.path is not None
        return _gguf_in_memory(source.path, source.path.stem, threads, quantize, progress)
    if source.kind == "directory":
        assert source.path is not None
        say(f"loading {source.path}")
        return _load_folder(source.path, source.path.name, threads, quantize, cache)

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
    """``source``'s GGUF run by the GGUF engine (fetched first if need be), or None."""
    from companion.llm.gguf.backend import open_gguf_engine

    if source.entry is not None:
        path = fetch_gguf(source.entry, cache=cache, progress=progress)
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


def _gguf_in_memory(
    path: Path, name: str, threads: int | None, quantize: str, progress: Progress | None
) -> LLM:
    """The GGUF file at ``path`` on transformers, dequantized in memory (nothing is
    written); the chat template comes from the file when the tokenizer has none."""
    from companion.llm.transformers_backend import TransformersLLM

    (progress or stderr_progress)(
        f"loading {name} with transformers: it dequantizes the GGUF in memory, "
        "which is slow (tens of seconds) and takes several times the file's size"
    )
    try:
        return TransformersLLM.from_pretrained(
            path.parent, gguf_file=path.name, name=name, threads=threads, quantize=quantize
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load {name} from {path}: {_first_line(exc)}") from exc


def _load_folder(
    folder: Path, name: str, threads: int | None, quantize: str, cache: Path | None
) -> LLM:
    from companion.llm.transformers_backend import TransformersLLM

    try:
        return TransformersLLM.from_pretrained(
            folder, name=name, threads=threads, quantize=quantize, cache=cache
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load {name} from {folder}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
