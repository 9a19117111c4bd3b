"""The shipped GGUF files for the GGUF engine's tests: the model cache's, else
the user's cache; SmolLM2's (98 MB) is downloaded into the test model cache
when neither has it, so CI runs these tests rather than skipping them."""

from __future__ import annotations

from pathlib import Path

from companion.errors import CompanionError
from companion.llm.fetch import assemble
from companion.llm.registry import load_registry
from companion.paths import models_dir

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
        assemble(entry, models_dir(), progress=lambda _line: None)
    except (CompanionError, OSError):
        return path
    return gguf_file(SMOL_NAME)
