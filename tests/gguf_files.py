"""The shipped GGUF files for the tests: the model cache's, else the user's
cache; SmolLM2's (98 MB) is downloaded into the test model cache when neither
has it, so CI runs these tests rather than skipping them. And a safetensors
folder made from one, for the tests of the transformers path on a user's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from companion.errors import CompanionError
from companion.llm.fetch import fetch_gguf
from companion.llm.registry import load_registry
from companion.paths import models_dir

if TYPE_CHECKING:
    from companion.llm.gguf.backend import GGUFBackend

GGUF_DIRS = [models_dir() / "gguf", Path.home() / ".cache" / "companion" / "models" / "gguf"]
SMOL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_file(name: str) -> Path:
    """Where ``name`` is (the first place that has it; it may not exist)."""
    found = [d / name for d in GGUF_DIRS if (d / name).is_file()]
    return found[0] if found else GGUF_DIRS[0] / name


def smol_gguf() -> Path:
    """SmolLM2's GGUF, downloaded when missing (a missing file means a skip)."""
    path = gguf_file(SMOL_NAME)
    if path.is_file():
        return path
    entry = load_registry().get("smollm2-135m-instruct")
    if entry is None:
        return path
    try:
        fetch_gguf(entry, cache=models_dir(), progress=lambda _line: None)
    except (CompanionError, OSError):
        return path
    return gguf_file(SMOL_NAME)


def safetensors_folder(gguf: Path, dest: Path, *, weights: bool = True) -> Path:
    """``gguf`` as a user's own model folder: its tokenizer (with the chat template)
    and, with ``weights``, its weights dequantized to float32 safetensors, written
    to ``dest``. companion never writes such a copy itself (it runs the GGUF); the
    transformers path quantizes to int8/int4 and runs the lean pass only on a
    folder of safetensors, so its tests make one here, in a temporary folder."""
    from companion.llm.local_open import gguf_chat_template
    from companion.llm.torchenv import import_torch

    torch = import_torch()  # first: it sets OpenMP's wait policy before torch loads
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if not tokenizer.chat_template:  # not every transformers version carries it over
        tokenizer.chat_template = gguf_chat_template(gguf)
    tokenizer.save_pretrained(str(dest))
    if weights:
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:  # transformers 5 will not save a model it read from GGUF
            quantizer.remove_quantization_config(model)
        model.save_pretrained(str(dest))
    return dest


def smol_backend(**kwargs: object) -> GGUFBackend:
    """SmolLM2 on the GGUF engine, 2 threads; a skip when the file is not
    downloaded or the kernels cannot be built here."""
    import pytest

    from companion.errors import ModelError
    from companion.llm.gguf.backend import GGUFBackend

    path = smol_gguf()
    if not path.is_file():
        pytest.skip(f"{path} is not downloaded")
    try:
        return GGUFBackend(path, threads=2, **kwargs)  # type: ignore[arg-type]
    except ModelError as exc:
        if "kernels" in str(exc):
            pytest.skip(str(exc))
        raise


def foreign_gguf(path: Path, *, arch: str = "gemma", template: str | None = None) -> Path:
    """A GGUF of an architecture the GGUF engine does not run: a header, a block
    count, optionally a chat template, and no tensors."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    if template is not None:
        writer.add_chat_template(template)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
