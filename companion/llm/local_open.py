"""Opening a local model for the transformers backend: the lean pass or transformers.

:meth:`TransformersLLM.from_pretrained` (:mod:`companion.llm.transformers_backend`)
tries :func:`open_lean` first (a quantized Llama/Qwen2 copy already built, the
native kernels available: no transformers import at all, see
:mod:`companion.llm.lean`) and otherwise :func:`open_transformers`, which loads
the transformers model (building the quantized copy on the first start), from a
folder, a hub id or a GGUF file read in memory.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from companion.errors import ModelError
from companion.llm.torchenv import import_torch

if TYPE_CHECKING:
    from companion.llm.lean import LeanModel
    from companion.llm.quantize import Method

#: What the caller builds from the opened pieces: the backend class (this module does
#: not import it, so that the backend may import this one).
LLMT = TypeVar("LLMT")


def open_lean(
    cls: Callable[..., LLMT],
    folder: Path,
    method: Method,
    cache: Path | None,
    *,
    name: str,
    threads: int | None,
    reuse_prefix: bool,
) -> LLMT | None:
    """The model on the lean pass, from its cached quantized copy, without
    importing transformers (see :mod:`companion.llm.lean`); None when the
    copy is not built yet or the model or CPU does not qualify."""
    from companion.llm.light_tokenizer import LightTokenizer
    from companion.llm.quantize import load_quantized
    from companion.paths import models_dir

    where = cache or models_dir()
    candidate = lean_candidate(folder, method, where)
    if candidate is None:
        return None
    config, copy = candidate
    tokenizer = LightTokenizer(folder)
    if not tokenizer.chat_template:
        raise ModelError(f"{folder} has no chat template; it is not a chat model")
    return_freed_memory()  # before the weights: the tokenizer's temporaries go back
    try:
        lean = lean_from_cache(config, copy)
    except ModelError:  # a damaged cached copy: the transformers path makes it again
        return None
    if lean is None:
        return None

    def loader() -> Any:  # the transformers model, for whoever asks for it
        return load_quantized(folder, method, cache=where)[0]

    return cls(
        None,
        tokenizer,
        name=name,
        threads=threads,
        reuse_prefix=reuse_prefix,
        lean=lean,
        config=config,
        generation_config=generation_config(folder),
        loader=loader,
    )


def open_transformers(
    cls: Callable[..., LLMT],
    source: str | Path,
    method: Method,
    cache: Path | None,
    *,
    name: str,
    threads: int | None,
    gguf_file: str | None,
    local_files_only: bool,
    device: str,
    reuse_prefix: bool,
) -> LLMT:
    """The model as a transformers model (its quantized copy is built here on first use)."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as _hf_logging
    except ImportError as exc:
        raise ModelError(
            "the local model needs torch and transformers: pip install 'companion[llm]'"
        ) from exc
    torch = import_torch()
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    folder = Path(source) if gguf_file is None else None
    kwargs: dict[str, Any] = {"local_files_only": local_files_only}
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
    hf_logging: Any = _hf_logging  # its functions are untyped
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tokenizer: Any = AutoTokenizer.from_pretrained(str(source), **kwargs)
        if not tokenizer.chat_template and gguf_file is not None:
            tokenizer.chat_template = gguf_chat_template(Path(source) / gguf_file)
        if not tokenizer.chat_template:  # before the weights: a GGUF's take long to read
            raise ModelError(f"{source} has no chat template; it is not a chat model")
        if method != "none" and folder is not None:
            from companion.llm.quantize import load_quantized
            from companion.paths import models_dir

            return_freed_memory()
            model, _ = load_quantized(folder, method, cache=cache or models_dir())
        else:
            model = AutoModelForCausalLM.from_pretrained(str(source), dtype=dtype, **kwargs)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    model.to(device)
    model.eval()
    return cls(model, tokenizer, name=name, threads=threads, reuse_prefix=reuse_prefix)


def gguf_chat_template(path: Path) -> str | None:
    """The chat template in the GGUF file's metadata (``tokenizer.chat_template``), or None.

    transformers does not carry it over into every tokenizer it builds from a
    GGUF. The header is read by the GGUF engine's own parser, whatever the
    architecture: ``gguf.GGUFReader`` would build a numpy view of every token
    and merge first (seconds and 0.5 GB for Qwen2.5's vocabulary).
    """
    import mmap

    from companion.llm.gguf.reader import _parse_header  # the header alone, unvalidated

    try:
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            try:
                metadata = _parse_header(view, path)[0]
            finally:
                view.release()
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read the file ({exc})") from exc
    template = metadata.get("tokenizer.chat_template")
    return template if isinstance(template, str) and template else None


def quantize_method(quantize: str, device: str, folder: Path | None) -> Method:
    """The weights to load: "none", "int8" or "int4" (see :func:`quantize.resolve_method`)."""
    from companion.llm.quantize import resolve_method

    local = folder is not None and folder.is_dir() and any(folder.glob("*.safetensors"))
    method = resolve_method(quantize, device=device.split(":")[0])
    if method != "none" and not local:
        if quantize == "auto":
            return "none"
        raise ModelError(f"{quantize} weights need a local folder of safetensors weights")
    return method


def lean_candidate(folder: Path, method: Method, cache: Path) -> tuple[Any, Path] | None:
    """``(config, cached copy)`` when :func:`lean_from_cache` may work: the kernels
    run, the architecture is one the lean pass knows, and the quantized copy is
    built; else None."""
    from companion.llm.lean import ARCHITECTURES
    from companion.llm.native import kernels
    from companion.llm.quantize import cached_path, weight_files

    try:
        config = light_config(folder)
    except (OSError, ValueError):
        return None
    if getattr(config, "model_type", None) not in ARCHITECTURES or kernels() is None:
        return None
    copy = cached_path(folder, weight_files(folder), method, cache)
    return (config, copy) if copy.is_file() else None


def lean_from_cache(config: Any, copy: Path) -> LeanModel | None:
    """The lean pass straight from the cached quantized ``copy``, without a
    transformers model (see :func:`companion.llm.lean.lean_from_tensors`); None
    when the model does not qualify. A damaged copy raises :class:`ModelError`."""
    from companion.llm.lean import lean_from_tensors
    from companion.llm.quantize import read_quantized

    tensors, kinds = read_quantized(copy)
    return lean_from_tensors(config, tensors, kinds)


def light_config(folder: Path) -> Any:
    """``config.json`` as attributes (what the lean pass reads of a model's config)."""
    import json
    from types import SimpleNamespace

    data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("config.json is not an object")
    return SimpleNamespace(**data)


def generation_config(folder: Path | None) -> Any:
    """The EOS ids of ``generation_config.json`` (all the backend reads of it), or None."""
    import json
    from types import SimpleNamespace

    path = folder / "generation_config.json" if folder is not None else None
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return SimpleNamespace(eos_token_id=data.get("eos_token_id"))


def return_freed_memory() -> None:
    """Ask glibc to give large freed blocks back to the system at once.

    Its default threshold for mapping a block on its own grows with the blocks
    freed, so the temporaries of loading (a tensor read before its fused copy is
    made) stay in the heap and count in the process's memory for good. A fixed
    1 MiB threshold keeps large blocks mapped, and returned when freed.
    """
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
        libc.malloc_trim(0)  # and what the tokenizer's loading left in the heap
    except (OSError, AttributeError):
        pass
